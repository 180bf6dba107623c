"""Diagonal Fisher information and the EWC penalty (Kirkpatrick et al. 2017) that anchors Selective Amnesia.

Per-example gradients come from torch.func (vmap over grad), so N examples cost a few batched passes instead
of the reference's N backward passes at batch size 1; the numbers are the same.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap


def diagonal_fisher(model: nn.Module, loss_fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...],
                    chunk_size: int = 64) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher F_i = (1/N) sum_n (d l(example_n; theta) / d theta_i)^2.

    loss_fn(forward, *example) is the loss of one example passed as a batch of one, where forward(*args)
    runs the model with the parameters being differentiated. inputs are tensors whose first dimension
    indexes the N examples. Randomness inside the model (a VAE's reparameterisation) is drawn
    independently per example, as in a loop at batch size 1.
    Reference: Heng & Soh 2023, Selective Amnesia, eq. 3; clear-nus/selective-amnesia vae/calculate_fim.py.
    """
    params = {name: p.detach() for name, p in model.named_parameters()}

    def one_example_loss(theta, *example):
        batch_of_one = [t.unsqueeze(0) for t in example]
        return loss_fn(lambda *args: functional_call(model, theta, args), *batch_of_one)

    per_example_grads = vmap(grad(one_example_loss), in_dims=(None,) + (0,) * len(inputs), randomness="different")
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    for chunk in zip(*(t.split(chunk_size) for t in inputs)):
        for name, g in per_example_grads(params, *chunk).items():
            fisher[name] += g.pow(2).sum(0)
    n = len(inputs[0])
    return {name: f / n for name, f in fisher.items()}


def ewc_penalty(model: nn.Module, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """EWC term sum_i F_i (theta_i - theta*_i)^2 over every parameter in fisher (no factor 1/2, as the
    selective-amnesia code; lambda multiplies it outside). Reference: Kirkpatrick et al. 2017, eq. 3;
    clear-nus/selective-amnesia vae/train_forget.py."""
    params = dict(model.named_parameters())
    return sum((fisher[name] * (params[name] - anchor[name]).pow(2)).sum() for name in fisher)
