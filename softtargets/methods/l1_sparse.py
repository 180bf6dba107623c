import torch

from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


def l1_norm(model: torch.nn.Module) -> torch.Tensor:
    """||theta||_1: the sum of |theta| over all parameters."""
    return sum(p.abs().sum() for p in model.parameters())


class L1Sparse(Method):
    """l1-sparse unlearning (Jia et al. 2023): L = CE(f(x_r), t_r) + gamma_e * ||theta||_1, retain set only,
    with gamma_e = gamma * (1 - e / E) decaying linearly from gamma to 0 over the E epochs (e = 0, 1, ...).

    Reference: Unlearn-Sparse unlearn/FT.py::FT_l1 (no_l1_epochs = 0). gamma multiplies a sum over all
    parameters, so usable values depend on the model size and must be tuned (the paper's value is not known).
    Targets: the retain term only. Hard: one-hot; soft: distillation from the original. The l1 term has none.
    """

    name = "l1_sparse"
    summary = "l1-sparse: CE(f(x_r), t_r) + gamma_e * ||theta||_1, gamma_e decaying linearly to 0"
    targets_use = "retain term CE(f(x_r), t_r); the l1 term has no target"
    defaults = {"gamma": 5.0e-5}
    target_terms = ("retain_ce",)
    bounds = {"gamma": "[0, inf)"}
    needs = ("retain",)
    driver = "retain"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        gamma = self.gamma * (1 - (epoch - 1) / self.ctx.config.epochs)
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        l1 = l1_norm(model)
        return {"loss": retain + gamma * l1, "retain_ce": retain, "l1": l1.detach()}
