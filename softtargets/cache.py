"""The verified tensor cache under CACHE_DIR: trained models and their logits (training.ModelCache), decoded
datasets (DataCache); per-entry locks so that concurrent processes compute a missing entry once."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from softtargets import locks
from softtargets.io import atomic_write
from softtargets.stopping import protected

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # folders already warned about (no working file locks), once per process


class TensorCache:
    """Tensors (state_dicts, logits, decoded datasets) keyed by everything that determines them, in
    ROOT/FOLDER/<key>.pt with <key>.json beside it: the metadata plus the entry's role, its key and the SHA-256
    of the .pt file. An entry is used only when all of them check out (and, for a model, its tensor names and
    shapes match): a bit flip, files swapped between entries or an older format is retrained with one warning,
    never trusted. Writes go to a unique temporary file renamed into place, so concurrent writers (a SLURM array
    on a shared filesystem) never corrupt an entry; a failed write (full disk, read-only folder) costs a warning,
    never the computed result, and leaves no part of the entry behind.

    lock(key) lets one process compute a missing entry while the others wait for it (softtargets.locks)."""

    folder = "models"
    writes = 0  # entries this process wrote, all caches together (a preempted sweep task counts them as progress)

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
        weights = self.root / f"{key}.pt"
        try:
            with protected():  # a stop signal waits until the entry is complete or gone
                self.root.mkdir(parents=True, exist_ok=True)
                # weights first, metadata last: an entry counts only when both exist and agree
                atomic_write(weights, lambda f: f.write(raw))
                try:
                    atomic_write(self.root / f"{key}.json", lambda f: f.write(json.dumps(entry, indent=1).encode()))
                except OSError:
                    weights.unlink(missing_ok=True)  # no weights without their metadata (e.g. the disk filled)
                    raise
            TensorCache.writes += 1
        except OSError as err:
            log.warning("could not write cache entry %s (%s): this run keeps its %s, a later run recomputes it",
                        weights, err.strerror or err, role)

    def busy(self, key: str) -> bool:
        """Whether another live process holds entry key's lock now (is computing it): a caller with other work can
        do that first and come back for this entry."""
        if self.root is None or not (self.root / f"{key}.lock").exists():
            return False
        lock = locks.FileLock(self.root / f"{key}.lock", "checking whether the entry is being computed")
        state = lock.try_acquire()
        lock.release()
        return state == locks.BUSY

    @contextmanager
    def lock(self, key: str, purpose: str) -> Iterator[bool]:
        """Hold the lock of entry key while computing it; yields whether another process held it first (then the
        entry may exist now: load it again). Waits as long as the holder lives; goes on without the lock where
        the folder has no working locks, cannot be written, or the holder is gone but its lock remains."""
        if self.root is None:
            yield False
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the lock file cannot be made either: acquire() answers UNAVAILABLE
        lock = locks.FileLock(self.root / f"{key}.lock", purpose)
        waited = []

        def waiting(owner: dict) -> None:
            waited.append(owner)
            log.info("waiting for %s: cache entry %s", locks.describe(owner), key)

        state = lock.acquire(waiting)
        if state == locks.UNSUPPORTED and str(self.root) not in _WARNED:
            _WARNED.add(str(self.root))
            log.warning("file locks do not work in %s: processes that need the same missing model at once each "
                        "train it (the results are identical; see docs/hpc.md)", self.root)
        elif state == locks.STALE_OWNER:
            log.warning("the lock of cache entry %s is held by %s, which looks dead: computing it without the lock",
                        key, locks.describe(lock.owner()))
        try:
            yield bool(waited)
        finally:
            lock.release()


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

