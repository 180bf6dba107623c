"""The Tracker interface. The local run folder is the source of truth; a tracker mirrors it.

Every command that writes a run folder does (open_tracker: softtargets/tracking/__init__.py):

    tracker = open_tracker(kind, name=..., tags=[...], project="softtargets", offline=False)
    sections = tracker.connect({"data": {...}, "training": {...}, ...})  # under clearml-agent: edited params
    ... pass tracker as (part of) the Hooks, so per-epoch scalars reach it ...
    tracker.mirror(run_folder)          # single values from result.json, PNG plots, artifacts
    tracker.close("completed")

The base class tracks nothing and costs nothing (no ClearML import) -- it is what `--tracker none` gives.
"""

from __future__ import annotations

from pathlib import Path

from softtargets.hooks import Hooks

TRACKER_KINDS = ("auto", "clearml", "none")


class Tracker(Hooks):
    """No-op tracker; subclasses send to a server. Inherits scalars(series, step, values) from Hooks."""

    where: str | None = None  # after close(): the run's web page or offline session zip, for the user

    def connect(self, sections: dict[str, dict]) -> dict[str, dict]:
        """Register hyperparameter sections; returns them (possibly edited by a tracker-side clone)."""
        return sections

    def log_values(self, values: dict[str, float]) -> None:
        """Final single-number metrics."""

    def log_image(self, title: str, path: Path) -> None:
        pass

    def log_table(self, title: str, rows: list[dict]) -> None:
        pass

    def log_artifact(self, name: str, path: Path) -> None:
        pass

    def mirror(self, folder: Path) -> None:
        """Send a finished run folder's contents (values, plots, files)."""

    def close(self, status: str = "completed") -> None:
        pass


def task_identity(cfg) -> dict:
    """name and tags of a run's tracker Task: dataset, architecture, method, targets, seed."""
    method = cfg.unlearning.method.rpartition(":")[2]
    tags = [cfg.data.dataset, cfg.training.architecture, method, cfg.targets.kind, f"seed{cfg.seed}"]
    return {"name": "-".join(tags), "tags": tags}


def connect_config(tracker: Tracker, cfg, section_names=None, rebuild=None):
    """Connect cfg as hyperparameter sections (its section_names, plus run = the top-level keys) and rebuild
    it with rebuild(values, source) from what comes back: under clearml-agent, the values edited in a cloned
    Task. Defaults: the RunConfig sections (data, training, unlearning, targets) and config_from_dict."""
    from softtargets.config import SECTIONS, config_from_dict

    section_names = section_names or SECTIONS
    values = cfg.to_dict()
    sections = {name: values[name] for name in section_names}
    sections["run"] = {k: v for k, v in values.items() if k not in section_names}
    back = tracker.connect(sections)
    if back is sections:
        return cfg
    return (rebuild or config_from_dict)({**{k: v for k, v in back.items() if k != "run"}, **back.get("run", {})},
                                         "the ClearML task's parameters")
