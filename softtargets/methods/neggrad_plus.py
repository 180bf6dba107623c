import torch

from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


def squared_distance(model: torch.nn.Module, start: list[torch.Tensor]) -> torch.Tensor:
    """||theta - theta_start||^2 over all parameters."""
    return sum(((p - p0) ** 2).sum() for p, p0 in zip(model.parameters(), start))


class NegGradPlus(Method):
    """NegGrad+ (Kurmanji et al. 2023): L = alpha * [CE(f(x_r), t_r) + (lam/2) ||theta - theta_start||^2]
    - (1 - alpha) * CE(f(x_f), t_f).

    Reference: SCRUB small_scale_unlearning.ipynb (run_neggrad_epoch) and repdistiller train_negrad; MLS-Bench
    `negative_gradient`. One epoch passes over the retain set, forget batches are cycled. The model runs in
    eval mode as in the notebook, so BatchNorm statistics stay frozen. lam = the notebook's args.weight_decay
    (0.1), applied as a pull toward the start weights; the optimizer is SGD without momentum or weight decay
    (configs/unlearn/neggrad_plus.yaml cites the lines).
    Targets: the retain term and the forget term. Hard: one-hot labels. Soft: distillation from the original
    on D_r, and a push away from the original's whole distribution on D_f.
    """

    name = "neggrad_plus"
    summary = "NegGrad+: alpha*[CE(f(x_r),t_r) + lam/2*|theta-theta0|^2] - (1-alpha)*CE(f(x_f),t_f), eval mode"
    targets_use = "retain term CE(f(x_r), t_r) and forget term CE(f(x_f), t_f)"
    defaults = {"alpha": 0.95, "lam": 0.1}
    target_terms = ("retain_ce", "forget_ce")
    driver = "retain"
    train_mode = False

    def setup(self, ctx):
        super().setup(ctx)
        self.start = [p.detach().clone() for p in ctx.model.parameters()]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        forget = soft_cross_entropy(model(forget_batch.x), forget_batch.t)
        pull = squared_distance(model, self.start)
        loss = self.alpha * (retain + self.lam / 2 * pull) - (1 - self.alpha) * forget
        return {"loss": loss, "retain_ce": retain, "forget_ce": forget}
