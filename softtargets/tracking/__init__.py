"""Trackers mirror the local run folder (always written, the source of truth): base.py is the interface and the
tracker of `--tracker none`, clearml.py the ClearML one (it imports the ClearML SDK only when it opens a Task)."""

from __future__ import annotations

from softtargets.errors import SoftTargetsError
from softtargets.tracking.base import TRACKER_KINDS, Tracker
from softtargets.tracking.clearml import open_clearml


def open_tracker(kind: str = "none", **options) -> Tracker:
    """'none' -> Tracker(); 'clearml' -> ClearML (error if unavailable); 'auto' -> ClearML when configured."""
    if kind not in TRACKER_KINDS:
        raise SoftTargetsError(f"unknown tracker '{kind}': choose one of {', '.join(TRACKER_KINDS)}")
    if kind == "none":
        return Tracker()
    return open_clearml(required=kind == "clearml", **options)
