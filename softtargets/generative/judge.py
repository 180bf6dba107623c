"""The judge: a classifier trained on the real data that audits what the CVAE generates for each label."""

from __future__ import annotations

import torch
import torch.nn as nn

from softtargets.config import TrainConfig
from softtargets.data.batches import DeviceData, SplitData
from softtargets.hooks import Hooks
from softtargets.inference import predict_logits
from softtargets.training.fit import ModelCache, train_or_load


def train_or_load_judge(data: DeviceData, recipe: TrainConfig, seed: int, cache: ModelCache,
                        hooks: Hooks) -> tuple[nn.Module, dict]:
    """The judge trained on every real train image (or loaded from the model cache), in eval mode."""
    everything = SplitData(data, data.train_x, data.train_y)
    parts = {"dataset": data.bundle.name, "data": data.bundle.fingerprint()}
    judge, info = train_or_load("judge", everything, recipe, seed, cache, parts, hooks)
    return judge.eval().requires_grad_(False), info


def judge_probabilities(judge: nn.Module, data: DeviceData, images: torch.Tensor) -> torch.Tensor:
    """Judge class probabilities [N, C] for generated images given as flattened pixels in [0, 1]; they are
    normalised exactly as the real images the judge was trained on."""
    as_uint8_scale = images.reshape(-1, *data.bundle.input_shape) * 255
    return predict_logits(judge, data, as_uint8_scale).softmax(1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy H(p) = -sum_k p_k ln p_k per row (natural log; 0 ln 0 = 0)."""
    return -torch.special.xlogy(probs, probs).sum(1)


def judge_metrics(probs: torch.Tensor, labels: torch.Tensor, forget: list[int]) -> dict:
    """The judge's view of generations conditioned on labels (Heng & Soh 2023, Selective Amnesia, sec. 5.1;
    clear-nus/selective-amnesia vae/evaluate_with_classifier.py; seed 004's table).

    For the generations of each class k, with p = judge probabilities:
    - per_class_acc[k]: fraction whose argmax is k (the judge still recognises k);
    - per_class_entropy[k]: mean H(p) (nats; ln C = no idea, 0 = certain);
    - per_class_prob[k]: mean p_k (the paper's "average probability of the forgotten class").
    forget_acc / forget_entropy / forget_prob average those over the forgotten classes; remember_acc and
    remember_entropy over the remembered ones. Chance accuracy is 1/C.
    """
    num_classes = probs.shape[1]
    remember = [k for k in range(num_classes) if k not in forget]
    correct = (probs.argmax(1) == labels).float()
    own_prob = probs.gather(1, labels[:, None]).squeeze(1)
    per_class = {name: [values[labels == k].mean().item() for k in range(num_classes)]
                 for name, values in (("acc", correct), ("entropy", entropy(probs)), ("prob", own_prob))}

    def mean_over(classes: list[int], name: str) -> float:
        return sum(per_class[name][k] for k in classes) / len(classes)

    return {
        "forget_acc": mean_over(forget, "acc"),
        "forget_entropy": mean_over(forget, "entropy"),
        "forget_prob": mean_over(forget, "prob"),
        "remember_acc": mean_over(remember, "acc"),
        "remember_entropy": mean_over(remember, "entropy"),
        **{f"per_class_{name}": values for name, values in per_class.items()},
    }
