import torch
from torch.func import functional_call

from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


def midpoint_state(model: torch.nn.Module, start: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """theta_mid = (theta_pre + theta) / 2 over parameters and float buffers; differentiable in theta."""
    current = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: (v + start[k]) / 2 if v.is_floating_point() and k in start else v for k, v in current.items()}


class ModeConnectivity(Method):
    """Mode-connectivity regularisation (Siddiqui et al. 2025):
    L = CE(f(x_r), t_r) + alpha * max(-CE(f_mid(x_r + x_f), t_r + t_f), -gamma),
    with f_mid the model at theta_mid = (theta_pre + theta) / 2 (parameters and float buffers). It fine-tunes
    on D_r while raising the loss at the midpoint of the linear path from the pretrained weights, capped at
    gamma, to break linear mode connectivity to the original.

    Reference: shoaibahmed/vision_relearning vision_unlearner.py (alpha = 0.001, gamma = 50, torch.func
    functional_call). One epoch passes over D_r, forget batches cycled.
    Targets: the retain term uses t_r; the midpoint term uses t_r and t_f of the concatenated batch (hard:
    the reference's labels; soft: the original's distributions).
    """

    name = "mode_connectivity"
    summary = "mode connectivity: CE(f(x_r), t_r) + alpha * max(-CE(f_mid(x_r+x_f), t), -gamma)"
    targets_use = "retain term CE(f(x_r), t_r) and midpoint term CE(f_mid(x_r + x_f), t_r + t_f)"
    defaults = {"alpha": 0.001, "gamma": 50.0}
    target_terms = ("retain_ce", "midpoint_ce")
    driver = "retain"

    def setup(self, ctx):
        super().setup(ctx)
        self.start = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        x = torch.cat([retain_batch.x, forget_batch.x])
        t = torch.cat([retain_batch.t, forget_batch.t])
        mid = soft_cross_entropy(functional_call(model, midpoint_state(model, self.start), (x,)), t)
        loss = retain + self.alpha * torch.clamp(-mid, min=-self.gamma)
        return {"loss": loss, "retain_ce": retain, "midpoint_ce": mid}
