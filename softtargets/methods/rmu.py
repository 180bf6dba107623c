import torch
import torch.nn.functional as F

from softtargets.inference import EVAL_BATCH
from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


@torch.no_grad()
def mean_feature_norm(model: torch.nn.Module, split, limit: int = 4096) -> float:
    """E ||h(x)||_2 of the penultimate features over (up to `limit` of) a split, eval mode."""
    norms = [model.features(b.x).flatten(1).norm(dim=1) for b in split.batches(EVAL_BATCH)]
    return torch.cat(norms)[:limit].mean().item()


class RMU(Method):
    """Representation misdirection (RMU, Li et al. 2024) adapted to classifiers:
    L = mse(h(x_f), c * u) + alpha * mse(h(x_r), h_orig(x_r)) + beta * CE(f(x_r), t_r),
    where h is the penultimate feature vector (model.features), mse averages over the batch and the d
    features (the reference's (1/d)||.||^2), u is a fixed random direction (rand(d), unit norm, seeded) and
    c = kappa * E||h_orig(x_r)||_2 scales it to the activations.

    Reference: WMDP rmu/unlearn.py and open-unlearning rmu.py (c and alpha vary: 6.5/1200, 20/100, 2/1);
    the vision adaptation follows methods-metrics.md section 5 (no public vision reference exists). The head
    receives gradient only from the beta term.
    Targets: the representation terms have no target term. beta * CE(f(x_r), t_r) is softtargets' addition
    (methods-metrics.md: "soft targets enter only through the retain term"): hard = labels, soft =
    distillation from the original; beta = 0 gives plain RMU, identical for hard and soft.
    """

    name = "rmu"
    summary = "RMU: steer features of x_f to c*u, keep features of x_r at the original's, + beta*CE(f(x_r), t_r)"
    targets_use = "retain term beta * CE(f(x_r), t_r); the feature terms have no target"
    defaults = {"alpha": 1.0, "kappa": 2.0, "beta": 1.0}
    target_terms = ("retain_ce",)
    driver = "forget"

    def setup(self, ctx):
        super().setup(ctx)
        if not hasattr(ctx.model, "features"):
            from softtargets.errors import SoftTargetsError

            raise SoftTargetsError("rmu needs a model with .features (penultimate features) and .head")
        with torch.no_grad():
            dim = ctx.original.features(ctx.retain.batch(torch.arange(1)).x).flatten(1).shape[1]
        u = torch.rand(dim, generator=torch.Generator().manual_seed(ctx.seed))
        self.control = (u / u.norm()).to(ctx.device) * self.kappa * mean_feature_norm(ctx.original, ctx.retain)

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        forget_h = model.features(forget_batch.x).flatten(1)
        forget = F.mse_loss(forget_h, self.control.expand_as(forget_h))
        retain_h = model.features(retain_batch.x).flatten(1)
        with torch.no_grad():
            original_h = self.ctx.original.features(retain_batch.x).flatten(1)
        retain = F.mse_loss(retain_h, original_h)
        ce = soft_cross_entropy(model.head(retain_h), retain_batch.t)
        loss = forget + self.alpha * retain + self.beta * ce
        return {"loss": loss, "forget_mse": forget.detach(), "retain_mse": retain.detach(), "retain_ce": ce}
