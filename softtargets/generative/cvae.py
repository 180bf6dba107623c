"""The one-hot conditional VAE of clear-nus/selective-amnesia (vae/model.py), sized from the data.

Encoder [x_dim + C -> 512 -> 256 -> (mu, log sigma^2)], decoder [z_dim + C -> 256 -> 512 -> x_dim, sigmoid].
Images are pixels in [0, 1], flattened; labels enter as vectors (one-hot, or any mixture of one-hots).
"""

from __future__ import annotations

import math
from itertools import chain, count

import torch
import torch.nn as nn
import torch.nn.functional as F

from softtargets.data.batches import index_batches
from softtargets.hooks import Hooks
from softtargets.training.fit import check_finite, make_optimizer


class OneHotCVAE(nn.Module):
    def __init__(self, x_dim: int, num_classes: int, h_dim1: int = 512, h_dim2: int = 256, z_dim: int = 8):
        super().__init__()
        self.x_dim, self.num_classes, self.z_dim = x_dim, num_classes, z_dim
        self.encoder_net = nn.Sequential(nn.Linear(x_dim + num_classes, h_dim1), nn.ReLU(),
                                         nn.Linear(h_dim1, h_dim2), nn.ReLU())
        self.to_mu = nn.Linear(h_dim2, z_dim)
        self.to_log_var = nn.Linear(h_dim2, z_dim)
        self.decoder_net = nn.Sequential(nn.Linear(z_dim + num_classes, h_dim2), nn.ReLU(),
                                         nn.Linear(h_dim2, h_dim1), nn.ReLU(), nn.Linear(h_dim1, x_dim))

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder_net(torch.cat([x.flatten(1), c], dim=1))
        return self.to_mu(h), self.to_log_var(h)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image (Bernoulli means in [0, 1]), flattened."""
        return torch.sigmoid(self.decoder_net(torch.cat([z, c], dim=1)))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encode(x, c)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)  # reparameterisation
        return self.decode(z, c), mu, log_var

    @torch.no_grad()
    def generate(self, c: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images for conditioning vectors c [B, C], from z ~ N(0, I) unless given."""
        if z is None:
            z = torch.randn(len(c), self.z_dim, device=c.device)
        return self.decode(z, c)


def cvae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """l(x, c; theta) = BCE summed over pixels + KL(N(mu, sigma^2) || N(0, I)), summed over the batch
    (selective-amnesia vae/model.py `loss_function`; the sum, not the mean, sets the scale lambda works at)."""
    bce = F.binary_cross_entropy(recon, x.flatten(1), reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return bce + kl


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def pixels(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, C, H, W] -> flattened float pixels in [0, 1] (what BCE needs)."""
    return x_uint8.flatten(1).float().div_(255)


def x_dim_of(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


def negative_elbo(model, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """cvae_loss of a model (or any forward callable returning recon, mu, log_var) on images x, labels c."""
    recon, mu, log_var = model(x, c)
    return cvae_loss(recon, x, mu, log_var)


def fit_cvae(model: OneHotCVAE, x: torch.Tensor, labels: torch.Tensor, steps: int, batch_size: int, lr: float,
             seed: int, hooks: Hooks, log_every: int = 100) -> list[dict]:
    """Train on pixels x [N, D] in [0, 1] with Adam for a number of steps over reshuffled passes (the seed's
    `cycle(train_loader)`); returns the mean per-image loss of every log_every steps."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model.parameters(), "adam", lr)
    batches = chain.from_iterable(index_batches(len(x), batch_size, generator) for _ in count())
    history, total, images = [], torch.zeros((), device=x.device), 0
    model.train()
    with hooks.progress("train cvae", steps) as advance:
        for step, idx in zip(range(1, steps + 1), batches):
            idx = idx.to(x.device)
            loss = negative_elbo(model, x[idx], one_hot(labels[idx], model.num_classes))
            check_finite(loss, f"CVAE training step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, images = total + loss.detach(), images + len(idx)
            if step % log_every == 0 or step == steps:
                history.append({"step": step, "loss": total.item() / images})
                hooks.scalars("cvae", step, {"loss": history[-1]["loss"]})
                total, images = torch.zeros((), device=x.device), 0
            advance(1)
    return history
