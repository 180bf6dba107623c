"""The verified tensor cache under CACHE_DIR: trained models and their logits (training.ModelCache), decoded
datasets (DataCache)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import torch

from softtargets.io import atomic_write

log = logging.getLogger(__name__)


class TensorCache:
    """Tensors (state_dicts, logits, decoded datasets) keyed by everything that determines them, in
    ROOT/FOLDER/<key>.pt with <key>.json beside it: the metadata plus the entry's role, its key and the SHA-256
    of the .pt file. An entry is used only when all of them check out (and, for a model, its tensor names and
    shapes match): a bit flip, files swapped between entries or an older format is retrained with one warning,
    never trusted. Writes go to a unique temporary file renamed into place, so concurrent writers (a SLURM array
    on a shared filesystem) never corrupt an entry; a failed write (full disk, read-only folder) costs a warning,
    never the computed result."""

    folder = "models"

    def __init__(self, root: str | Path | None):
        self.root = Path(root) / self.folder if root else None

    def load(self, key: str, role: str, like: dict | None = None) -> tuple[dict, dict] | None:
        """(tensors, meta) of a verified entry, else None. like: tensors the entry must match in names and
        shapes (a model's state_dict, or meta-device tensors standing for logits)."""
        if self.root is None:
            return None
        weights, meta_file = self.root / f"{key}.pt", self.root / f"{key}.json"
        if not (weights.is_file() and meta_file.is_file()):
            return None
        try:
            meta, raw = json.loads(meta_file.read_text()), weights.read_bytes()
            problem = _entry_problem(meta, key, role, hashlib.sha256(raw).hexdigest())
            tensors = None if problem else torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except Exception as err:  # unreadable or not a tensor file: retrained and overwritten, never trusted
            problem, tensors = f"unreadable ({type(err).__name__}: {err})", None
        if tensors is not None:
            problem = _shape_problem(tensors, like)
        if problem:
            log.warning("cache entry %s failed verification (%s): computing it again", weights, problem)
            return None
        return tensors, {k: v for k, v in meta.items() if k not in ENTRY_FIELDS}

    def save(self, key: str, tensors: dict, meta: dict, role: str) -> None:
        if self.root is None:
            return
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        raw = buffer.getvalue()
        entry = {**meta, "role": role, "key": key, "sha256": hashlib.sha256(raw).hexdigest()}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # weights first, metadata last: an entry counts only when both exist and agree
            atomic_write(self.root / f"{key}.pt", lambda f: f.write(raw))
            atomic_write(self.root / f"{key}.json", lambda f: f.write(json.dumps(entry, indent=1).encode()))
        except OSError as err:
            log.warning("could not write cache entry %s (%s): this run keeps its %s, a later run recomputes it",
                        self.root / f"{key}.pt", err.strerror or err, role)


class DataCache(TensorCache):
    """Decoded folder/csv datasets in CACHE_DIR/data."""

    folder = "data"


ENTRY_FIELDS = ("role", "key", "sha256")


def _entry_problem(meta: dict, key: str, role: str, sha256: str) -> str | None:
    if not isinstance(meta, dict) or "sha256" not in meta:
        return "no checksum: written by an older version"
    if meta.get("key") != key or meta.get("role") != role:
        return f"it holds {meta.get('role')} {meta.get('key')}, not {role} {key}"
    if meta["sha256"] != sha256:
        return "checksum mismatch: the file changed after it was written"
    return None


def _shape_problem(tensors, like: dict | None) -> str | None:
    if not isinstance(tensors, dict):
        return "not a mapping"
    if like is None:
        return None
    if set(tensors) != set(like):
        missing, extra = sorted(set(like) - set(tensors)), sorted(set(tensors) - set(like))
        return f"wrong tensor names (missing {missing[:3]}, unexpected {extra[:3]})"
    for name, t in like.items():
        if not torch.is_tensor(tensors[name]) or tensors[name].shape != t.shape:
            return f"'{name}' is not a tensor of shape {tuple(t.shape)}"
    return None

