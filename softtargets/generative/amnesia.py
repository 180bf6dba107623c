"""Selective Amnesia (Heng & Soh 2023) for a conditional VAE: forget labels, keep generating the others.

Each step draws a batch for the forgotten labels from a surrogate distribution q(x|c_f), a batch of the
remembered labels replayed by a frozen copy of the original CVAE, and adds the EWC penalty:

    L = l(x_f, c_f) + gamma * l(x_r, c_r) + lambda * sum_i F_i (theta_i - theta*_i)^2

Reference: clear-nus/selective-amnesia vae/train_forget.py (one forgotten label; several are drawn uniformly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from softtargets.generative.config import ForgetConfig
from softtargets.generative.cvae import OneHotCVAE, negative_elbo, one_hot
from softtargets.generative.fisher import ewc_penalty
from softtargets.hooks import Hooks
from softtargets.training.fit import Diverged, check_finite, make_optimizer


def soft_label(remember: list[int], num_classes: int, n: int, concentration: float | None,
               device: torch.device) -> torch.Tensor:
    """Conditioning vectors [n, C] spread over the remembered classes: the uniform mixture, or Dirichlet(alpha)
    draws when a concentration alpha is given. The forgotten classes get probability 0."""
    if concentration is None:
        weights = torch.full((n, len(remember)), 1 / len(remember), device=device)
    else:
        alpha = torch.full((len(remember),), float(concentration), device=device)
        weights = torch.distributions.Dirichlet(alpha).sample((n,))
    q = torch.zeros(n, num_classes, device=device)
    q[:, remember] = weights
    return q


def surrogate_images(kind: str, frozen: OneHotCVAE, n: int, remember: list[int], concentration: float | None,
                     device: torch.device) -> torch.Tensor:
    """What the forgotten labels are trained to produce: 'noise' = U[0,1] pixels (the seed); 'soft-label' = the
    frozen model's generations for a soft label over the remembered classes (the soft-target extension)."""
    if kind == "noise":
        return torch.rand(n, frozen.x_dim, device=device)
    return frozen.generate(soft_label(remember, frozen.num_classes, n, concentration, device))


@dataclass
class AmnesiaOutcome:
    history: list[dict]
    steps: int
    status: str = "completed"
    stopped: str | None = None


def selective_amnesia(model: OneHotCVAE, frozen: OneHotCVAE, fisher: dict[str, torch.Tensor],
                      forget: list[int], cfg: ForgetConfig, hooks: Hooks) -> AmnesiaOutcome:
    """Run cfg.steps Selective Amnesia steps on model in place; frozen is the untouched original (theta*).
    A non-finite loss stops the run with status 'diverged'."""
    device = next(model.parameters()).device
    classes = model.num_classes
    remember = [k for k in range(classes) if k not in forget]
    forget_t, remember_t = torch.tensor(forget, device=device), torch.tensor(remember, device=device)
    anchor = {name: p.detach() for name, p in frozen.named_parameters()}
    optimizer = make_optimizer(model.parameters(), "adam", cfg.lr)
    history, sums, since, n = [], {}, 0, cfg.batch_size
    model.train()
    with hooks.progress("selective amnesia", cfg.steps) as advance:
        for step in range(1, cfg.steps + 1):
            c_f = one_hot(forget_t[torch.randint(len(forget), (n,), device=device)], classes)
            c_r = one_hot(remember_t[torch.randint(len(remember), (n,), device=device)], classes)
            x_f = surrogate_images(cfg.surrogate, frozen, n, remember, cfg.soft_concentration, device)
            x_r = frozen.generate(c_r)  # generative replay of the remembered labels
            terms = {"forget_loss": negative_elbo(model, x_f, c_f), "replay_loss": negative_elbo(model, x_r, c_r),
                     "ewc": ewc_penalty(model, fisher, anchor)}
            loss = terms["forget_loss"] + cfg.gamma * terms["replay_loss"] + cfg.lam * terms["ewc"]
            try:
                check_finite(loss, f"selective amnesia step {step}")
            except Diverged as err:
                return AmnesiaOutcome(history, step - 1, "diverged", str(err))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in {"loss": loss, **terms}.items():
                sums[key] = sums.get(key, 0.0) + value.detach()
            since += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                history.append(_log_row(step, sums, since, n, hooks))
                sums, since = {}, 0
            advance(1)
    return AmnesiaOutcome(history, cfg.steps)


def _log_row(step: int, sums: dict, steps: int, batch_size: int, hooks: Hooks) -> dict:
    """Means over the logged steps: the total loss per batch, the ELBO terms per image, the EWC sum as is."""
    per_image = ("forget_loss", "replay_loss")
    row = {key: value.item() / steps / (batch_size if key in per_image else 1) for key, value in sums.items()}
    hooks.scalars("amnesia", step, row)
    return {"step": step, **row}
