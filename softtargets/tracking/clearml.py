"""ClearML tracker: one Task per run, mirroring the local run folder (online, or offline into a session zip).

This module needs only the standard library; `clearml` itself is imported only when a ClearML tracker is asked
for (`--tracker auto|clearml`) and ClearML is configured, so `--tracker none` and unconfigured machines pay nothing.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import math
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.tracking.base import Tracker

log = logging.getLogger(__name__)

ARTIFACT_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml", ".md", ".csv", ".txt")
MODEL_SUFFIXES = (".pt", ".pth")
PROBE_TIMEOUT_S = 3.0
_unreachable: set[str] = set()  # servers already found unreachable in this process: warn once, then skip


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def offline_requested(offline: bool = False) -> bool:
    return offline or _truthy("CLEARML_OFFLINE_MODE")


def configured() -> bool:
    """A clearml.conf (CLEARML_CONFIG_FILE, ~/clearml.conf) or CLEARML_* server variables, or running under
    clearml-agent (CLEARML_TASK_ID) -- the same places the SDK reads."""
    config_file = os.environ.get("CLEARML_CONFIG_FILE") or os.environ.get("TRAINS_CONFIG_FILE")
    files = [Path(config_file).expanduser()] if config_file else [Path("~/clearml.conf").expanduser(),
                                                                    Path("~/trains.conf").expanduser()]
    variables = ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_TASK_ID")
    return any(f.is_file() for f in files) or any(os.environ.get(v) for v in variables)


def wanted(required: bool, offline: bool = False) -> bool:
    """Whether to track with ClearML; with required=True (or offline) a missing SDK or configuration is a
    user error, raised before any work starts."""
    offline = offline_requested(offline)
    if importlib.util.find_spec("clearml") is None:
        if required or offline:
            raise SoftTargetsError("ClearML tracking needs the clearml package: pip install clearml "
                                   "(or use --tracker none)")
        return False
    if not (offline or configured()):
        if required:
            raise SoftTargetsError("ClearML is not configured: run `clearml-init` (writes ~/clearml.conf), set "
                                   "CLEARML_API_HOST and credentials, or use --clearml-offline")
        return False
    return True


def open_clearml(required: bool, name: str = "run", tags: list[str] | tuple = (), project: str = "softtargets",
                 offline: bool = False, log_models: bool = False, task_type: str = "training") -> Tracker:
    """A ClearMLTracker, or the no-op Tracker when ClearML is not wanted or cannot be reached.

    required=True (`--tracker clearml`): a missing SDK or configuration is a user error. An unreachable
    server is never an error: one warning, and the run goes on with local results only.
    """
    offline = offline_requested(offline)
    if not wanted(required, offline):
        return Tracker()
    from clearml import Task

    if offline:
        Task.set_offline(True)
    elif not _reachable(_api_host()):
        return Tracker()
    # Task.close() otherwise waits for a forked reporting subprocess to drain (seconds to minutes, and a
    # hang when the server is gone). Set on the class so it holds whatever the user's clearml.conf says.
    Task._report_subprocess_enabled = False
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the SDK prints; keep our stdout for results
            task = Task.init(project_name=project, task_name=name, task_type=task_type, tags=list(tags),
                             reuse_last_task_id=False, auto_connect_frameworks=False,
                             auto_connect_arg_parser=False, auto_resource_monitoring=False,
                             auto_connect_streams={"stdout": False, "stderr": False, "logging": True})
    except Exception as err:  # a server that answers but refuses us (credentials, version): keep going
        log.warning("ClearML tracking disabled: %s; results are kept locally only", err)
        return Tracker()
    return ClearMLTracker(task, log_models)


def _api_host() -> str:
    from clearml.backend_api import Session

    return Session.get_api_server_host()


def _reachable(host: str) -> bool:
    """Any HTTP answer counts; only a refused, failed or timed-out connection means unreachable."""
    if host in _unreachable:
        return False
    try:
        urllib.request.urlopen(f"{host}/debug.ping", timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError, ValueError) as err:
        _unreachable.add(host)
        reason = getattr(err, "reason", err)
        log.warning("ClearML server %s is unreachable (%s): tracking disabled, results are kept locally only",
                    host, reason)
        return False
    return True


def _guarded(method):
    """A tracker failure must not cost the run: warn once, stop tracking, keep going (local results are kept)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if self.broken and method.__name__ != "close":  # still close: the SDK's exit hooks must not linger
            return None if method.__name__ != "connect" else args[0]
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            self.broken = True
            log.warning("ClearML tracking stopped (%s: %s); results are kept locally only", type(err).__name__, err)
            return None if method.__name__ != "connect" else args[0]

    return call


class ClearMLTracker(Tracker):
    """Sends scalars, single values, images, tables and files to one ClearML Task."""

    broken = False

    def __init__(self, task, log_models: bool = False):
        self.task = task
        self.logger = task.get_logger()
        self.log_models = log_models
        self.where: str | None = None if task.is_offline() else task.get_output_log_web_page()
        self._seen: set[tuple[str, int]] = set()

    @_guarded
    def connect(self, sections: dict[str, dict]) -> dict[str, dict]:
        """Hyperparameter sections; under clearml-agent the Task's (possibly edited) values come back."""
        if self.task.running_locally():
            for name, values in sections.items():
                self.task.connect(dict(values), name=name)
            return sections
        return {name: _restore_none(values, _plain(self.task.connect(dict(values), name=name)))
                for name, values in sections.items()}

    @_guarded
    def scalars(self, series: str, step: int, values: dict[str, float]) -> None:
        """One plot per series (original, reference, unlearn), one curve per value. A (series, step) pair is
        sent once: the curves of a freshly trained model arrive live and again when the run folder replays them."""
        if (series, step) in self._seen:
            return
        self._seen.add((series, step))
        for key, value in values.items():
            if _is_number(value):
                self.logger.report_scalar(title=series, series=key, value=float(value), iteration=step)

    @_guarded
    def log_values(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            if _is_number(value):
                self.logger.report_single_value(key, float(value))

    @_guarded
    def log_image(self, title: str, path: Path) -> None:
        self.logger.report_image(title=title, series=title, iteration=0, local_path=str(path))

    @_guarded
    def log_table(self, title: str, rows: list[dict]) -> None:
        if not rows:
            return
        header = list(dict.fromkeys(k for row in rows for k in row))
        cells = [["" if row.get(k) is None else str(row.get(k)) for k in header] for row in rows]
        self.logger.report_table(title=title, series=title, iteration=0, table_plot=[header, *cells])

    @_guarded
    def log_artifact(self, name: str, path: Path) -> None:
        self.task.upload_artifact(name, artifact_object=Path(path), wait_on_upload=False)

    @_guarded
    def mirror(self, folder: Path) -> None:
        """The run folder's single values (result.json), plots (*.png) and files; weights with log_models."""
        folder = Path(folder)
        result = folder / "result.json"
        if result.is_file():
            self.log_values(result_values(json.loads(result.read_text())))
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix == ".png":
                self.log_image(path.stem, path)
            elif path.suffix in ARTIFACT_SUFFIXES or (self.log_models and path.suffix in MODEL_SUFFIXES):
                self.log_artifact(path.name, path)

    @_guarded
    def close(self, status: str = "completed") -> None:
        """Flush everything (uploads included), then close; a run that did not complete is marked failed."""
        offline_folder = self.task.get_offline_mode_folder() if self.task.is_offline() else None
        if status != "completed":
            self.task.add_tags([status])
        with contextlib.redirect_stdout(sys.stderr):
            self.task.flush(wait_for_uploads=True)
            self.task.close()
        if status != "completed" and offline_folder is None:
            self.task.mark_failed(status_reason=status, force=True)
        if offline_folder is not None:
            self.where = f"{offline_folder}.zip"


def result_values(result: dict) -> dict[str, float]:
    """Numeric leaves of result.json's metrics and timings as 'unlearned/acc_forget' -> value (lists skipped)."""
    values: dict[str, float] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(f"{prefix}/{key}" if prefix else str(key), child)
        elif _is_number(node):
            values[prefix] = float(node)

    for section in ("metrics", "timings"):
        if isinstance(result.get(section), dict):
            walk("" if section == "metrics" else section, result[section])
    return values


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(values) -> dict:
    """The SDK returns proxy dicts; make plain nested dicts."""
    return {k: _plain(v) if isinstance(v, dict) else v for k, v in dict(values).items()}


def _restore_none(local: dict, remote: dict) -> dict:
    """ClearML stores None as ''; a field that was None locally and comes back empty is None again."""
    out = dict(remote)
    for key, value in local.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _restore_none(value, out[key])
        elif value is None and out.get(key) in ("", "None", None):
            out[key] = None
    return out
