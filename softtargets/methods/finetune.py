from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


class Finetune(Method):
    """Retain fine-tuning (FT), the NeurIPS 2023 challenge baseline: L = CE(f(x_r), t_r), retain set only.

    Relies on catastrophic forgetting of the forget set. One epoch is one pass over the retain set.
    Reference: unlearning-challenge starting kit; Unlearn-Sparse unlearn/FT.py; MLS-Bench retain_finetune.
    Targets: the retain term. Hard: one-hot (plain fine-tuning). Soft: distillation from the original on
    the retain set. Smooth: label smoothing.
    """

    name = "finetune"
    summary = "retain fine-tuning: minimise CE(f(x_r), t_r)"
    targets_use = "retain term CE(f(x_r), t_r)"
    target_terms = ("retain_ce",)
    needs = ("retain",)
    driver = "retain"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        return {"loss": retain, "retain_ce": retain}
