from softtargets.methods.base import Method
from softtargets.targets import kl_div


class Delete(Method):
    """DELETE, "Decoupled Distillation to Erase" (Zhou et al., CVPR 2025): descent on forget batches only,
    L = KL(t_f || softmax(f(x_f))), batch-averaged. One term, no retain data.

    Reference: shaaaaron/DELETE method/delete.py::delete (@1dfe8cc): the frozen original in eval mode (line 57)
    gives the target, its true-class logit set to -1e10 (62) before the softmax (69), that is the original's
    distribution with the label removed and renormalised (targets.mask_label); the loss is
    KLDivLoss(reduction="batchmean") of the student's log_softmax against it (30, 68, 70); SGD momentum 0.9, no
    weight decay (33). Defaults (configs/unlearn/delete.yaml) from its CIFAR-10 run: scripts.sh lr 1e-3 (overriding
    config/cifar10_resnet18.yaml's 1e-4), 20 epochs and batch 128 (that config). PRU (ACML 2024,
    DATA-Transpose/PRU unlearn_methods/embedding_shift.py) uses the same masked target with switches to its argmax
    and to random labels.
    Targets: the one term. masked (the default, DELETE's; T = 1 there) is the soft relabelling; masked_pseudo (the
    original's runner-up class, PRU's hard switch), random (labels drawn per batch, SalUn RL's hard relabelling)
    and uniform compare other relabellings on this one code path. KL(q || p) = -log(1 - p_y) + KL(q || p over
    k != y) for masked q; a one-hot q' on y' != y keeps the first term and collapses the second to
    -log p(y' | not y). hard and pseudo are refused: descending on them would teach the label to forget.
    """

    name = "delete"
    summary = "DELETE: KL(t_f || f(x_f)) on forget batches only, t_f = the original's masked distribution"
    targets_use = "forget term KL(t_f || f(x_f)); default masked (also masked_pseudo, random, uniform)"
    target_terms = ("forget_kl",)
    kl_targets = ("forget",)
    refused_kinds = {kind: "descending on it would teach the label the model must forget; use masked (DELETE), "
                           "masked_pseudo, random or uniform" for kind in ("hard", "pseudo")}
    needs = ("forget",)
    driver = "forget"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        kl = kl_div(model(forget_batch.x), forget_batch.t)
        return {"loss": kl, "forget_kl": kl}
