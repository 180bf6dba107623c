"""How `run` and `compare` use a tracker: open it, connect the config, run, mirror the folder, close.

`tracking` is the CLI's choice as a dict: kind (auto|clearml|none), project, offline, log_models.
"""

from __future__ import annotations

import os
from pathlib import Path

from softtargets.config import RunConfig
from softtargets.hooks import HookList, Hooks
from softtargets.tracking import open_tracker
from softtargets.tracking.base import Tracker, connect_config, task_identity

NO_TRACKING = {"kind": "none"}


def _open(tracking: dict | None, name: str, tags: list[str], task_type: str = "training") -> Tracker:
    options = dict(tracking or NO_TRACKING)
    kind = options.pop("kind", "none")
    if kind == "none":
        return Tracker()
    return open_tracker(kind, name=name, tags=tags, task_type=task_type, **options)


def run_tracked(cfg: RunConfig, hooks: Hooks | None = None, prepared=None, out: str | Path | None = None,
                tracking: dict | None = None, extra_tags: tuple[str, ...] = (), extras: tuple = ()) -> dict:
    """run_experiment (with its extras, e.g. --lmc) mirrored to a tracker Task. Under clearml-agent the Task's edited parameters become cfg.
    result['tracker'] says where the Task is (web page or offline zip), None when untracked."""
    from softtargets.experiment import run_experiment

    identity = task_identity(cfg)
    tracker = _open(tracking, identity["name"], identity["tags"] + list(extra_tags))
    try:
        cfg = connect_config(tracker, cfg)
        result = run_experiment(cfg, HookList(hooks or Hooks(), tracker), prepared, out, extras)
    except BaseException:
        tracker.close("failed")
        raise
    tracker.mirror(Path(result["path"]))
    tracker.close(result["status"])
    return {**result, "tracker": tracker.where}


def under_agent() -> bool:
    """clearml-agent runs a Task's process with CLEARML_TASK_ID set: that process has exactly one Task."""
    return bool(os.environ.get("CLEARML_TASK_ID"))


def track_comparison(cfg: RunConfig, summary: dict, rows: list[list[str]], header: list[str],
                     links: dict[str, list], tracking: dict | None) -> str | None:
    """One Task for a comparison: its config, the paired table, a table linking the runs' Tasks, its files."""
    method = cfg.unlearning.method.rpartition(":")[2]
    hard, soft = summary["kinds"]
    tags = [cfg.data.dataset, cfg.training.architecture, method, f"{hard}-vs-{soft}", "compare"]
    tracker = _open(tracking, Path(summary["path"]).name, tags, task_type="custom")
    values = cfg.to_dict()
    tracker.connect({**{k: v for k, v in values.items() if isinstance(v, dict)},
                     "compare": {"seeds": ",".join(map(str, summary["seeds"])), "soft_kind": soft}})
    tracker.log_table(f"{hard} vs {soft}", [dict(zip(header, cells)) for cells in rows])
    run_rows = [{"targets": kind, "seed": seed, "status": status, "task": link or ""}
                for kind in summary["kinds"]
                for seed, status, link in zip(summary["seeds"], summary["status"][kind], links[kind])]
    tracker.log_table("runs", run_rows)
    tracker.mirror(Path(summary["path"]))
    tracker.close("completed")
    return tracker.where
