"""PNG plots of a Selective Amnesia run: generations per class, the label-interpolation morph (seed 004's
analysis) and a 2-D embedding of encoder outputs, each before (original) and after (amnesia)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

import softtargets.report.plots  # noqa: F401  (selects the Agg backend once for the package)
import matplotlib.pyplot as plt  # noqa: E402


def _tile(images: torch.Tensor, rows: int, image_shape: tuple[int, ...]) -> np.ndarray:
    """[rows * cols, D] pixels -> one [rows * H, cols * W] greyscale (or RGB) mosaic."""
    channels, height, width = image_shape
    grid = images.reshape(rows, -1, channels, height, width).permute(0, 3, 1, 4, 2)
    grid = grid.reshape(rows * height, -1, channels).cpu().numpy()
    return grid[..., 0] if channels == 1 else grid


def _panels(path: Path, mosaics: dict[str, np.ndarray], title: str, ylabels: list[str] | None = None,
            xlabel: str | None = None) -> Path:
    height, width = next(iter(mosaics.values())).shape[:2]
    fig, axes = plt.subplots(1, len(mosaics), figsize=(4 * len(mosaics), 4 * height / width + 1), squeeze=False)
    for ax, (name, mosaic) in zip(axes[0], mosaics.items()):
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        if ylabels:
            step = mosaic.shape[0] / len(ylabels)
            ax.set_yticks((np.arange(len(ylabels)) + 0.5) * step, ylabels)
        else:
            ax.set_yticks([])
        if xlabel:
            ax.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def generation_grid(path: Path, generations: dict[str, torch.Tensor], image_shape: tuple[int, ...],
                    classes: list[str], forget: list[int]) -> Path:
    """One row per class (the same latents in every panel); forgotten classes are marked with *."""
    labels = [f"{name}*" if k in forget else name for k, name in enumerate(classes)]
    mosaics = {name: _tile(images, len(classes), image_shape) for name, images in generations.items()}
    return _panels(path, mosaics, "generations per class (* forgotten)", labels)


def morph_grid(path: Path, morphs: dict[str, torch.Tensor], image_shape: tuple[int, ...], pairs: list[str]) -> Path:
    """Rows of label-and-latent interpolations between two classes, one row per pair, left to right."""
    mosaics = {name: _tile(images, len(pairs), image_shape) for name, images in morphs.items()}
    return _panels(path, mosaics, "label interpolation: c and z from one class to another", pairs,
                   "interpolation weight 0 -> 1")


def embedding_plot(path: Path, encodings: dict[str, torch.Tensor], labels: torch.Tensor, classes: list[str],
                   forget: list[int]) -> Path:
    """Encoder means of the real test images projected to 2-D with PCA, one panel per model."""
    fig, axes = plt.subplots(1, len(encodings), figsize=(5 * len(encodings), 4.4), squeeze=False)
    y = labels.cpu().numpy()
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for ax, (name, mu) in zip(axes[0], encodings.items()):
        points = PCA(n_components=2, random_state=0).fit_transform(mu.cpu().numpy())
        for k, label in enumerate(classes):
            mine = y == k
            ax.scatter(points[mine, 0], points[mine, 1], s=6, color=cmap(k % cmap.N),
                       marker="x" if k in forget else "o", label=f"{label}*" if k in forget else label)
        ax.set_title(f"{name}: encoder mean (PCA)")
    axes[0][-1].legend(fontsize=7, markerscale=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
