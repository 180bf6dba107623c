"""--backend clearml against a local HTTP stand-in for the ClearML API (tests/clearml_server.py), with the
real clearml SDK: a template is created, cloned per cell with the cell's parameters, and enqueued."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from softtargets.config import load_config
from softtargets.sweep.clearml_queue import cell_parameters, config_from_parameters, configs_from_parameters
from softtargets.sweep.grid import load_grid

pytest.importorskip("clearml")
pytest.importorskip("jwt")
from clearml_server import FakeClearML  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class QueueServer(FakeClearML):
    """Adds what cloning and enqueueing need: tasks.clone, queues.get_by_id/get_all, tasks.enqueue."""

    def __init__(self, queue_name: str):
        super().__init__()
        self.queue = {"id": uuid.uuid4().hex, "name": queue_name}
        self.entries: list[str] = []

    def answer(self, endpoint, body):
        if endpoint == "tasks.clone":
            tid = uuid.uuid4().hex
            source = json.loads(json.dumps(self.tasks[body["task"]]))
            self.tasks[tid] = {**source, "id": tid, "name": body.get("new_task_name"), "status": "created",
                               "parent": body.get("new_task_parent"), "hyperparams": {}}
            return {"id": tid}
        if endpoint == "queues.get_by_id":
            return {"queue": self.queue if body.get("queue") == self.queue["id"] else None}
        if endpoint == "queues.get_all":
            return {"queues": [self.queue] if re.fullmatch(body.get("name") or "", self.queue["name"]) else []}
        if endpoint == "tasks.enqueue":
            assert body["queue"] == self.queue["id"]
            self.tasks[body["task"]]["status"] = "queued"
            self.entries.append(body["task"])
            return {"queued": 1, "updated": 1, "fields": {"status": "queued"}}
        return super().answer(endpoint, body)


def sdk_env(server):
    return {**os.environ, "CLEARML_API_HOST": server.api, "CLEARML_WEB_HOST": server.api,
            "CLEARML_FILES_HOST": server.files, "CLEARML_API_ACCESS_KEY": "key", "CLEARML_API_SECRET_KEY": "secret",
            "CLEARML_CONFIG_FILE": "/nonexistent/clearml.conf", "PYTHONPATH": str(ROOT / "tests")}


def sweep(env, *args):
    return subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "sweep",
                           str(ROOT / "configs/sweeps/smoke.yaml"), "--backend", "clearml", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def hyperparams(task) -> dict:
    return {s: {k: v["value"] for k, v in keys.items()} for s, keys in task["hyperparams"].items()}


def test_each_group_of_cells_sharing_models_is_one_enqueued_task(tmp_path):
    with QueueServer("cpu-queue") as server:
        proc = sweep(sdk_env(server), "--queue", "cpu-queue", "--out", str(tmp_path / "runs"))
        assert proc.returncode == 0, proc.stderr
        assert "enqueued 2 tasks for 8 of 8 cells" in proc.stdout
        assert len(server.bodies("tasks.create")) == 1  # the template
        assert len(server.bodies("tasks.clone")) == 2
        queued = [server.tasks[t] for t in server.entries]
        assert len(queued) == 2 and all(t["status"] == "queued" for t in queued)
        # every clone carries its cells' configurations: one seed's 4 cells, which rebuild exactly those cells
        grid = load_grid(ROOT / "configs/sweeps/smoke.yaml", {"out": str(tmp_path / "runs")})
        for task, seed in zip(queued, (0, 1)):
            assert task["name"] == f"smoke task {seed}: 4 cells, seed {seed}"
            configs = configs_from_parameters(hyperparams(task))
            assert configs == [c.cfg for c in grid.cells if c.cfg.seed == seed]


def test_cells_per_task_1_enqueues_each_cell_with_its_own_parameters(tmp_path):
    with QueueServer("cpu-queue") as server:
        proc = sweep(sdk_env(server), "--queue", "cpu-queue", "--cells-per-task", "1", "--out", str(tmp_path / "runs"))
        assert proc.returncode == 0, proc.stderr
        assert "enqueued 8 tasks for 8 of 8 cells" in proc.stdout
        queued = [server.tasks[t] for t in server.entries]
        names = {t["name"] for t in queued}
        assert len(names) == 8 and all(n.startswith("digits-mlp-") for n in names)
        for task in queued:  # one cell: the plain layout, as a task made by hand or by an older version
            cfg = config_from_parameters(hyperparams(task))
            assert f"-{cfg.unlearning.method}-{cfg.targets.kind}-seed{cfg.seed}-" in task["name"]
            assert cfg.out == str(tmp_path / "runs") and cfg.training.epochs == 2


def test_unknown_queue_fails_with_one_line(tmp_path):
    with QueueServer("cpu-queue") as server:
        proc = sweep(sdk_env(server), "--queue", "gpu-queue", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2
    assert 'queue named "gpu-queue"' in proc.stderr and "Traceback" not in proc.stderr


def test_parameters_round_trip_through_text():
    cfg = load_config(overrides={"unlearning.method": "graddiff", "unlearning.params.alpha": 0.5, "seed": 7,
                                 "targets.kind": "soft", "targets.temperature": 2.0, "unlearning.clip_grad": 1.0})
    as_text = {}
    for key, value in cell_parameters(cfg).items():  # ClearML hands values back as strings
        section, name = key.split("/")
        as_text.setdefault(section, {})[name] = str(value)
    assert config_from_parameters(as_text) == cfg


def test_a_task_of_several_cells_round_trips_and_runs_them_sharing_models(tmp_path):
    """What the agent does with a task's parameters (clearml_entry.run_parameters), here without an agent."""
    from softtargets.sweep.clearml_entry import run_parameters
    from softtargets.sweep.clearml_queue import task_parameters
    from softtargets.sweep.grid import Cell

    base = {"training.epochs": 1, "unlearning.epochs": 1, "device": "cpu", "out": str(tmp_path / "runs"),
            "cache_dir": str(tmp_path / "cache")}
    cells = [Cell(i, {}, load_config(overrides={**base, "targets.kind": kind})) for i, kind in enumerate(("hard",
                                                                                                           "smooth"))]
    as_text = {}
    for key, value in task_parameters(cells).items():
        section, name = key.split("/", 1)
        as_text.setdefault(section, {})[name] = str(value)
    assert sorted(as_text)[:2] == ["cell0.data", "cell0.run"]
    code, written = run_parameters(as_text)
    assert code == 0 and len(written) == 2
    results = [json.loads(p.read_text()) for p in written]
    assert [r["targets"]["kind"] for r in results] == ["hard", "smooth"]
    assert results[0]["timings"]["original_train_s"] == results[1]["timings"]["original_train_s"]  # trained once
    before = [p.stat().st_mtime_ns for p in written]
    assert run_parameters(as_text) == (0, [])  # a task run again (an agent restarted): both cells done, skipped
    assert [p.stat().st_mtime_ns for p in written] == before
