import torch
import torch.nn.functional as F

from softtargets.methods.base import Method, Phase
from softtargets.targets import mask_label, soft_cross_entropy


def relabel_targets(y: torch.Tensor, t: torch.Tensor, generator: torch.Generator, labels: bool) -> torch.Tensor:
    """Random-label targets for forget examples.

    labels=True (hard or pseudo targets, one-hot rows): onehot(y') with y' ~ U{0..C-1} drawn per batch, as in
    Unlearn-Saliency RL.py (y' may equal y there); a pseudo row that names a wrong class keeps that class.
    labels=False (soft, smooth, uniform): the complementary distribution, t with the true class zeroed and
    renormalised (for soft targets, the "complementary teacher"); where the original put every bit of mass on
    the true class (the others underflowed to 0), uniform over the C - 1 wrong classes, never the true class.
    """
    num_classes = t.shape[1]
    y_random = torch.randint(num_classes, y.shape, generator=generator).to(y.device)  # drawn for every kind alike
    if labels:
        rest = t * (1 - F.one_hot(y, num_classes).to(t.dtype))
        mass = rest.sum(dim=1, keepdim=True)
        return torch.where(mass > 0, rest / mass, F.one_hot(y_random, num_classes).to(t.dtype))
    return mask_label(t, y)


class RandomLabel(Method):
    """Random labels (RL): per epoch a pass over D_f minimising CE(f(x_f), q_f), then a pass over D_r
    minimising CE(f(x_r), t_r).

    Reference: Unlearn-Saliency Classification/unlearn/RL.py (the CIFAR-10 variant: forget pass, then retain
    pass). q_f is the random-label target of relabel_targets(): hard (and pseudo) targets give onehot(y') with
    y' uniform (redrawn each batch); soft targets give the original's distribution with the true class removed
    (Fan et al.'s soft variants, methods-metrics.md section 1), smooth/uniform give uniform over the wrong
    classes. Random labels come from their own seeded generator, so hard and soft runs see the same batches.
    Targets: the forget term (through q_f) and the retain term CE(f(x_r), t_r).
    """

    name = "random_label"
    summary = "random labels: CE(f(x_f), random/complementary q_f) pass, then CE(f(x_r), t_r) pass"
    targets_use = "forget term via q_f = onehot(random y') if hard, else t_f without the true class; retain CE(t_r)"
    target_terms = ("forget_ce", "retain_ce")
    driver = "forget"

    def setup(self, ctx):
        super().setup(ctx)
        self.label_generator = torch.Generator().manual_seed(ctx.seed + 1)

    def phases(self, epoch):
        return [Phase("forget", "forget", ("forget",)), Phase("retain", "retain", ("retain",))]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        if self.phase == "forget":
            q = relabel_targets(forget_batch.y, forget_batch.t, self.label_generator,
                                labels=self.ctx.targets.kind in ("hard", "pseudo"))
            forget = soft_cross_entropy(model(forget_batch.x), q)
            return {"loss": forget, "forget_ce": forget}
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        return {"loss": retain, "retain_ce": retain}
