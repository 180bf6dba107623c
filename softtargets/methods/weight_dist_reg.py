import torch

from softtargets.methods.base import Method
from softtargets.methods.neggrad_plus import squared_distance
from softtargets.targets import soft_cross_entropy


def rms_distance(model: torch.nn.Module, start: list[torch.Tensor]) -> torch.Tensor:
    """sqrt(mean over all parameter entries of (theta - theta_start)^2 + 1e-8)."""
    return torch.sqrt(squared_distance(model, start) / sum(p.numel() for p in start) + 1e-8)


class WeightDistReg(Method):
    """Weight-distance regularisation (Siddiqui et al. 2025): L = CE(f(x_r), t_r) - alpha * RMS(theta - theta_pre),
    which fine-tunes on the retain set while pushing the weights away from the pretrained ones.

    Reference: shoaibahmed/vision_relearning vision_unlearner.py (alpha = 1; RMS = sqrt(mean(.^2) + 1e-8)).
    Targets: the retain term uses t_r; the distance term has none.
    """

    name = "weight_dist_reg"
    summary = "weight-distance regularisation: CE(f(x_r), t_r) - alpha * RMS(theta - theta_pre)"
    targets_use = "retain term CE(f(x_r), t_r); the distance term has no target"
    defaults = {"alpha": 1.0}
    target_terms = ("retain_ce",)
    needs = ("retain",)
    driver = "retain"

    def setup(self, ctx):
        super().setup(ctx)
        self.start = [p.detach().clone() for p in ctx.model.parameters()]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        distance = rms_distance(model, self.start)
        return {"loss": retain - self.alpha * distance, "retain_ce": retain, "rms": distance.detach()}
