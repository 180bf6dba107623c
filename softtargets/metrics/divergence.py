"""Output-space divergences between two models on the same inputs."""

from __future__ import annotations

import torch


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> float:
    """Mean over examples of JS(p, q) = 0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, natural log.

    Ranges over [0, ln 2]. Used as in Bad Teacher's ZRF (Chundawat et al. 2023, bad-teaching-unlearning
    metrics.py), here between the unlearned model and the retrained reference.
    """
    p, q = torch.softmax(logits_p.double(), 1), torch.softmax(logits_q.double(), 1)
    m = (p + q) / 2

    def kl(a, b):
        return torch.where(a > 0, a * (a.log() - b.log()), torch.zeros_like(a)).sum(1)

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).mean().item()
