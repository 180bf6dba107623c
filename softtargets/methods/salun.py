import torch

from softtargets.methods.random_label import RandomLabel
from softtargets.targets import soft_cross_entropy


def saliency_mask(model, split, batch_size: int, ratio: float) -> list[torch.Tensor]:
    """m_i = 1 for the top `ratio` fraction of |sum over forget batches of grad(-CE(f(x_f), t_f))|, at the
    current weights in eval mode (Unlearn-Saliency generate_mask.py)."""
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for batch in split.batches(batch_size):
        (-soft_cross_entropy(model(batch.x), batch.t)).backward()  # grads accumulate over batches
    saliency = [p.grad.abs() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    flat = torch.cat([s.flatten() for s in saliency])
    keep = max(1, round(ratio * flat.numel()))
    threshold = torch.topk(flat, keep, sorted=False).values.min()
    return [(s >= threshold).to(s.dtype) for s in saliency]


class SalUn(RandomLabel):
    """SalUn (Fan et al. 2024): random-label unlearning restricted to the most forget-salient weights.

    Mask (once, at theta_0, eval mode): m = top-`ratio` fraction of |sum_batches grad(-CE(f(x_f), t_f))|.
    Steps: RandomLabel's forget pass (CE(f(x_f), q_f)) and retain pass (CE(f(x_r), t_r)); gradients are
    multiplied by m, and after every step the masked-out weights are reset to theta_0 and their optimizer
    state (momentum, Adam moments) is zeroed.
    Reference: Unlearn-Saliency Classification/generate_mask.py (default mask with_0.5) and unlearn/RL.py.
    Targets: the saliency gradient uses t_f (hard: -CE on the labels as in the reference; soft: the
    original's distribution), the forget term uses q_f (see random_label), the retain term t_r.
    """

    name = "salun"
    summary = "SalUn: random labels on the top-ratio forget-salient weights only (others stay at theta_0)"
    targets_use = "saliency gradient of CE(f(x_f), t_f); forget term via q_f (as random_label); retain CE(t_r)"
    defaults = {"ratio": 0.5}
    bounds = {"ratio": "(0, 1]"}

    def setup(self, ctx):
        super().setup(ctx)
        self.mask = saliency_mask(ctx.model, ctx.forget, ctx.config.batch_size, self.ratio)
        self.start = [p.detach().clone() for p in ctx.model.parameters()]

    def after_backward(self, model):
        for p, m in zip(model.parameters(), self.mask):
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def after_step(self, model, optimizer):
        for p, m, p0 in zip(model.parameters(), self.mask, self.start):
            p.copy_(torch.where(m.bool(), p, p0))
            for value in optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.mul_(m)
