"""Memorisation scores (metrics/memorisation.py): read from the paper's files or estimated with our own models,
and the high_mem / low_mem forget specs that use them."""

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from softtargets.config import TrainConfig, load_config
from softtargets.data.batches import DeviceData
from softtargets.data.datasets import load_dataset
from softtargets.errors import SoftTargetsError
from softtargets.experiment import split_for
from softtargets.metrics import memorisation


def test_estimate_finds_mislabelled_images_and_is_cached(tmp_path):
    """Images with a wrong label are learned only when seen: held-out models give their (wrong) label almost
    no probability, so they score near 1; typical images score near 0."""
    bundle = load_dataset("digits")
    flipped = torch.arange(0, len(bundle.train_y), 48)[:30]
    labels = bundle.train_y.clone()
    labels[flipped] = (labels[flipped] + 1) % 10
    bundle = dataclasses.replace(bundle, train_y=labels, _fingerprint=None)
    data = DeviceData(bundle, torch.device("cpu"))
    recipe = TrainConfig(epochs=5)
    scores = memorisation.estimate(data, recipe, str(tmp_path / "cache"))
    assert scores.shape == (len(labels),) and 0 <= scores.min() and scores.max() <= 1
    is_flipped = np.zeros(len(labels), bool)
    is_flipped[flipped.numpy()] = True
    assert roc_auc_score(is_flipped, scores) > 0.95  # the ranking is what selection uses
    assert is_flipped[np.argsort(-scores)[:30]].sum() >= 24  # high_mem's first 30 are mostly the flipped ones
    assert scores[is_flipped].mean() > scores[~is_flipped].mean() + 0.15
    assert len(list((tmp_path / "cache" / "models").glob("*.pt"))) == 2 * memorisation.PAIRS
    memorisation._estimates.clear()  # a new process: the models come from the cache, the numbers are the same
    assert np.array_equal(memorisation.estimate(data, recipe, str(tmp_path / "cache")), scores)


def test_scores_files_as_the_paper_reads_them(tmp_path):
    np.savez(tmp_path / "cifar10-cscores-orig-order.npz", scores=np.array([0.9, 0.2, 0.6]), labels=np.arange(3))
    assert memorisation.read_scores(tmp_path / "cifar10-cscores-orig-order.npz") == pytest.approx([0.1, 0.8, 0.4])
    np.savez(tmp_path / "feldman.npz", tr_mem=np.array([0.3, 0.1]))
    assert memorisation.read_scores(tmp_path / "feldman.npz").tolist() == [0.3, 0.1]
    np.save(tmp_path / "mine.npy", np.array([1, 2, 3]))
    assert memorisation.read_scores(tmp_path / "mine.npy").tolist() == [1.0, 2.0, 3.0]
    np.savez(tmp_path / "other.npz", values=np.ones(2))
    with pytest.raises(SoftTargetsError, match=r"no 'scores' or 'tr_mem' array \(found values\)"):
        memorisation.read_scores(tmp_path / "other.npz")
    with pytest.raises(SoftTargetsError, match="give a .npy of per-image scores"):
        memorisation.read_scores(tmp_path / "scores.txt")


def test_high_mem_forget_spec_with_a_scores_file(tmp_path):
    bundle = load_dataset("digits")
    scores = np.linspace(0, 1, len(bundle.train_y))  # the later an image, the more memorised
    np.save(tmp_path / "mem.npy", scores)
    cfg = load_config(overrides={"data.forget": "class:0:0.1:high_mem", "data.memorisation": str(tmp_path / "mem.npy")})
    split = split_for(cfg, bundle)
    class0 = torch.nonzero(bundle.train_y == 0).flatten()
    assert split.forget_idx.tolist() == class0[-14:].tolist()  # round(0.1 x 142) = 14, the last ones
    np.save(tmp_path / "short.npy", scores[:10])
    short = load_config(overrides={"data.forget": "class:0:0.1:high_mem", "data.memorisation": str(tmp_path /
                                                                                                  "short.npy")})
    with pytest.raises(SoftTargetsError, match="10 memorisation scores but the train set has 1437 images"):
        split_for(short, bundle)
