"""softtargets sweep: grid files, validation before anything runs, the local pool, resume, failure isolation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softtargets.report.build import build_report
from softtargets.sweep.grid import expand_grid, load_grid
from softtargets.sweep.slurm import array_spec

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name: tiny
base:
  training: {{epochs: 1}}
  unlearning: {{epochs: 1}}
  device: cpu
axes:
{axes}
"""


def grid_file(tmp_path, axes: str, name="grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(TINY.format(axes=axes))
    return path


def paths(tmp_path):
    return ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]


def results(tmp_path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/result.json")}


def test_shipped_grids_expand():
    seed_grid = expand_grid(ROOT / "configs/sweeps/seed-grid.yaml")
    assert len(seed_grid.cells) == 2 * 2 * 2 * 2 * 30
    assert len({c.name for c in seed_grid.cells}) == 480
    assert {c.cfg.seed for c in seed_grid.cells} == set(range(30))
    assert {c.cfg.data.dataset for c in seed_grid.cells} == {"mnist", "fashion_mnist"}
    smoke = load_grid(ROOT / "configs/sweeps/smoke.yaml")  # digits: fully validated
    assert len(smoke.cells) == 8 and smoke.out == Path("runs/smoke")
    assert {(c.cfg.unlearning.method, c.cfg.targets.kind) for c in smoke.cells} == {
        ("gradasc", "hard"), ("gradasc", "soft"), ("graddiff", "hard"), ("graddiff", "soft")}


def test_ranges_aliases_dotted_keys_and_method_parameters(tmp_path):
    grid = load_grid(grid_file(tmp_path, "  seed: {start: 3, stop: 9, step: 3}\n  temperature: [1, 2.5]\n"
                                         "  unlearning.alpha: [0.5]\n  training.lr: 0.001\n"))
    assert [(c.cfg.seed, c.cfg.targets.temperature) for c in grid.cells] == [(3, 1.0), (3, 2.5), (6, 1.0),
                                                                             (6, 2.5)]
    assert all(c.cfg.unlearning.params["alpha"] == 0.5 and c.cfg.training.lr == 0.001 for c in grid.cells)
    assert all(c.cfg.training.epochs == 1 for c in grid.cells)


def test_an_axis_of_mappings_sets_several_keys_together(tmp_path):
    grid = load_grid(grid_file(tmp_path, "  arm:\n    - {targets: hard}\n    - {targets: soft, temperature: 2.0}\n"
                                         "    - {targets: smooth, smoothing: 0.2}\n  seed: [0, 1]\n"))
    got = [(c.cfg.targets.kind, c.cfg.targets.temperature, c.cfg.targets.smoothing, c.cfg.seed) for c in grid.cells]
    assert got == [("hard", 1.0, 0.1, 0), ("hard", 1.0, 0.1, 1), ("soft", 2.0, 0.1, 0), ("soft", 2.0, 0.1, 1),
                   ("smooth", 1.0, 0.2, 0), ("smooth", 1.0, 0.2, 1)]
    assert grid.cells[2].values == {"arm": {"targets": "soft", "temperature": 2.0}, "seed": 0}


@pytest.mark.parametrize("content, message", [
    ("axes:\n  arm: [{targets: soft}, hard]\n", "axis 'arm' mixes mappings with plain values"),
    ("axes:\n  arm: [{targts: soft}]\n", "unknown key 'axes.targts'"),
    ("axes:\n  seed: [0]\nsweep: 1\n", "unknown key 'sweep'"),
    ("axes:\n  sed: [0, 1]\n", "unknown key 'axes.sed'"),
    ("axes:\n  training.epoch: [1]\n", "unknown key 'axes.training.epoch'"),
    ("axes:\n  seed: []\n", "axis 'seed' is empty"),
    ("axes:\n  seed: {start: 5, stop: 5}\n", "axis 'seed' is empty"),
    ("axes:\n  seed: [0, 0]\n", "axis 'seed' repeats the value 0"),
    ("base:\n  trainig: {epochs: 1}\naxes:\n  seed: [0]\n", "unknown key 'base.trainig'"),
    ("axes:\n  dataset: [digits, imagenet]\n", "cell 1 (dataset=imagenet): unknown dataset 'imagenet'"),
    ("axes:\n  unlearning.alhpa: [1]\n", "method 'graddiff' has no parameter 'alhpa'"),
    ("axes:\n  forget: ['class:3', 'class:12']\n", "cell 1 (forget=class:12)"),
    ("axes:\n  training.epochs: [1, zero]\n", "'training.epochs' must be int"),
    ("axes: [seed]\n", "'axes' must be a non-empty mapping"),
])
def test_bad_grids_are_rejected_before_anything_runs(cli, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, _, err = cli("sweep", str(path), *paths(tmp_path))
    assert code == 2, err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_bad_grid_is_rejected_before_slurm_submission(cli, tmp_path):
    path = grid_file(tmp_path, "  method: [graddiff, magic]\n")
    code, _, err = cli("sweep", str(path), "--backend", "slurm", *paths(tmp_path))
    assert code == 2 and "cell 1 (method=magic): unknown method 'magic'" in err
    assert not (tmp_path / "runs").exists()


def test_array_spec_compresses_indices():
    assert array_spec([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert array_spec([4]) == "4"


def test_pool_runs_every_cell_shares_models_and_skips_done_cells(cli, tmp_path):
    path = grid_file(tmp_path, "  targets: [hard, soft]\n  seed: [0, 1]\n")
    code, out, err = cli("--quiet", "sweep", str(path), "--workers", "2", *paths(tmp_path))
    assert code == 0, err
    assert "4 completed" in out
    found = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/result.json")]
    assert sorted((r["targets"]["kind"], r["seed"]) for r in found) == [("hard", 0), ("hard", 1), ("soft", 0),
                                                                         ("soft", 1)]
    # hard and soft of a seed share one original and one reference (trained once, then from the cache)
    for seed in (0, 1):
        pair = [r for r in found if r["seed"] == seed]
        assert pair[0]["metrics"]["reference"] == pair[1]["metrics"]["reference"]
    for role in ("original", "reference"):  # cells that trained a model share one Prepared: one training time
        trained = {(r["seed"], r["timings"][f"{role}_train_s"]) for r in found if not r["timings"][f"{role}_cached"]}
        assert sorted(seed for seed, _ in trained) == [0, 1], role
    models = [p for p in (tmp_path / "cache" / "models").glob("*.pt") if "-logits-" not in p.name]
    assert len(models) == 4  # 2 seeds x (original, reference)
    before = results(tmp_path)
    code, out, _ = cli("--quiet", "sweep", str(path), "--workers", "2", *paths(tmp_path))
    assert code == 0 and "4 skipped" in out and results(tmp_path) == before


def test_a_cell_has_the_same_metrics_in_a_sweep_pool_and_in_run(cli, tmp_path):
    """Each cell fixes its CPU thread count (config `threads`), whatever the pool size or the caller's."""
    import torch

    path = grid_file(tmp_path, "  method: [graddiff]\n  targets: [hard, soft]\n  temperature: [2.0]\n  seed: [3]\n")
    code, _, err = cli("--quiet", "sweep", str(path), "--workers", "2", *paths(tmp_path))
    assert code == 0, err
    swept = {r["targets"]["kind"]: r for r in map(json.loads, map(Path.read_text,
                                                                    (tmp_path / "runs").glob("*/result.json")))}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's setting must not matter
    try:
        code, _, err = cli("--quiet", "run", "--mu_algo", "graddiff", "--targets", "soft", "--temperature", "2",
                           "--seed", "3", "--epochs", "1", "--unlearn-epochs", "1", "--device", "cpu",
                           "--out", str(tmp_path / "alone"), "--cache-dir", str(tmp_path / "fresh-cache"))
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    (alone,) = [json.loads(p.read_text()) for p in (tmp_path / "alone").glob("*/result.json")]
    assert alone["name"] == swept["soft"]["name"]
    assert alone["metrics"] == swept["soft"]["metrics"]


def test_a_forget_quality_grid_runs_audits_resumably(cli, tmp_path):
    path = tmp_path / "fq.yaml"
    path.write_text("name: fq\ncommand: forget-quality\nforget_quality: {n_models: 2, retrain_null: false}\n"
                    "base: {training: {epochs: 1}, unlearning: {epochs: 1}, device: cpu}\n"
                    "axes:\n  arm: [{targets: hard}, {targets: soft, temperature: 2.0}]\n")
    code, out, err = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    assert code == 0, err
    found = sorted((tmp_path / "runs").glob("forget-quality-*/result.json"))
    results = [json.loads(p.read_text()) for p in found]
    assert len(results) == 2 and all(r["command"] == "forget-quality" and r["n_models"] == 2 for r in results)
    assert {next(iter(r["kinds"])) for r in results} == {"hard", "soft"} and "null" not in results[0]
    code, out, _ = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    assert code == 0 and "2 skipped" in out
    # audit names do not depend on where files go: the folder moved, with another cache, is still finished
    (tmp_path / "runs").rename(tmp_path / "moved")
    moved = ["--out", str(tmp_path / "moved"), "--cache-dir", str(tmp_path / "elsewhere")]
    code, out, _ = cli("--quiet", "sweep", str(path), *moved)
    assert code == 0 and "2 skipped" in out and not (tmp_path / "elsewhere").exists()
    # an audit a sweep named before (the digest covered out and cache_dir) still counts as finished
    cells = load_grid(path, {"out": str(tmp_path / "moved"), "cache_dir": str(tmp_path / "elsewhere")}).cells
    assert all(c.legacy_name != c.name for c in cells)
    cells[0].folder.rename(cells[0].folder.with_name(cells[0].legacy_name))
    assert cells[0].done and cells[0].folder.name == cells[0].legacy_name
    code, out, _ = cli("--quiet", "sweep", str(path), *moved)
    assert code == 0 and "2 skipped" in out and len(list((tmp_path / "moved").glob("forget-quality-*"))) == 2
    code, out, _ = cli("sweep", "status", str(tmp_path / "moved"))  # and `sweep status` counts it done
    assert code == 0 and "2 done, 0 running, 0 failed, 0 missing" in out, out
    code, out, _ = cli("sweep", "status", str(path), *moved)
    assert code == 0 and "2 done, 0 running, 0 failed, 0 missing" in out, out


@pytest.mark.parametrize("content, message", [
    ("command: forget\naxes:\n  seed: [0]\n", "unknown command 'forget'"),
    ("forget_quality: {n_models: 4}\naxes:\n  seed: [0]\n", "'forget_quality' needs 'command: forget-quality'"),
    ("command: forget-quality\nforget_quality: {n_models: 1}\naxes:\n  seed: [0]\n", "from 2 to 4096, got 1"),
    ("command: forget-quality\nforget_quality: {models: 4}\naxes:\n  seed: [0]\n", "takes n_models"),
])
def test_bad_command_settings_are_rejected(cli, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, _, err = cli("sweep", str(path), "--dry-run", *paths(tmp_path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


FAILING_METHOD = '''
from softtargets.methods.base import Method


class Fragile(Method):
    """Gradient ascent that raises on the forget set when boom is set (to test failure isolation)."""

    name = "fragile"
    summary = "test method"
    targets_use = "none"
    needs = ("forget",)
    driver = "forget"
    defaults = {"boom": 0}

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        if self.params["boom"]:
            raise RuntimeError("fragile method exploded")
        return {"loss": -model(forget_batch.x).logsumexp(1).mean()}
'''


def test_a_failing_cell_is_recorded_and_the_others_finish(cli, tmp_path):
    plugin = tmp_path / "fragile.py"
    plugin.write_text(FAILING_METHOD)
    path = grid_file(tmp_path, f"  method: ['{plugin}:Fragile']\n  unlearning.boom: [1, 0]\n  seed: [0]\n")
    code, out, err = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    assert code == 1
    assert "1 completed, 1 failed" in out and "fragile method exploded" in err
    (failure,) = (tmp_path / "runs" / "_failed").glob("*.json")
    record = json.loads(failure.read_text())
    assert record["index"] == 0 and "RuntimeError: fragile method exploded" in record["error"]
    assert len(results(tmp_path)) == 1 and not list((tmp_path / "runs").glob(".*incomplete*"))
    report = build_report(tmp_path / "runs")
    assert len(report.records) == 1 and report.failures[0]["name"] == failure.stem


@pytest.mark.slow
def test_killed_sweep_resumes_with_only_the_missing_cells(tmp_path):
    path = grid_file(tmp_path, "  targets: [hard, soft]\n  seed: [0, 1, 2]\n")
    cmd = [sys.executable, "-m", "softtargets", "--quiet", "sweep", str(path), *paths(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(results(tmp_path)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = results(tmp_path)
    assert 2 <= len(first) < 6, "the sweep must be killed midway"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{6 - len(first)} completed, {len(first)} skipped" in done.stdout
    second = results(tmp_path)
    assert len(second) == 6 and all(second[name] == mtime for name, mtime in first.items())
    report = build_report(tmp_path / "runs")
    assert len(report.records) == 6
    assert {r["n"] for r in report.summary} == {3}


def children(pid: int) -> dict[int, str]:
    """Live child processes of pid and their command lines, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_kill_9_of_the_sweep_leaves_no_worker_or_resource_tracker_alive(tmp_path):
    """Fault injection: SIGKILL to the sweep's own process only (not its group), while two pool workers compute
    long cells. Every worker and multiprocessing's resource tracker must be gone within seconds."""
    path = tmp_path / "long.yaml"
    path.write_text("name: long\nbase:\n  training: {epochs: 1}\n  unlearning: {epochs: 500}\n  device: cpu\n"
                    "axes:\n  method: [gradasc]\n  seed: [0, 1]\n")
    proc = subprocess.Popen([sys.executable, "-m", "softtargets", "--quiet", "sweep", str(path), "--workers", "2",
                             *paths(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawned: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            spawned = children(proc.pid)
            if sum("spawn_main" in c for c in spawned.values()) == 2 and any("resource_tracker" in c
                                                                            for c in spawned.values()):
                break
            time.sleep(0.2)
        assert proc.poll() is None and len(spawned) == 3, f"the pool never started: {spawned}"
        time.sleep(2)  # the workers are inside their cells now
        assert all(alive(pid) for pid in spawned), "a worker ended before the kill"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(pid) for pid in spawned):
            time.sleep(0.1)
        survivors = {pid: spawned[pid] for pid in spawned if alive(pid)}
        assert not survivors, f"still running 5 s after the sweep was killed: {survivors}"
        assert not results(tmp_path), "no cell may finish after its sweep was killed"
    finally:
        for pid in [proc.pid, *spawned]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_index_runs_one_cell_and_refuses_an_edited_grid(cli, tmp_path):
    path = grid_file(tmp_path, "  targets: [hard, soft]\n")
    grid = load_grid(path, {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")})
    code, out, err = cli("--quiet", "sweep", str(path), "--index", "1", "--grid-hash", grid.fingerprint(),
                         *paths(tmp_path))
    assert code == 0, err
    assert list(results(tmp_path)) == [grid.cells[1].name]
    code, out, _ = cli("--quiet", "sweep", str(path), "--index", "1", *paths(tmp_path))
    assert code == 0 and "skipped" in out
    code, _, err = cli("--quiet", "sweep", str(path), "--index", "1", "--grid-hash", "0" * 12, *paths(tmp_path))
    assert code == 2 and "changed since the sweep was submitted" in err
    code, _, err = cli("--quiet", "sweep", str(path), "--index", "5", *paths(tmp_path))
    assert code == 2 and "outside the grid" in err


def test_study2_grid_gives_every_arm_the_same_tuning_budget_on_seeds_apart_from_the_evaluation(tmp_path):
    """Study 2's fairness as configured: in each of its six cells, fourteen arms, each choosing among 6
    candidate settings on the same 3 tuning seeds, evaluated on seeds the tuning never saw (30; fashion_mnist
    cnn 10)."""
    grid = expand_grid(ROOT / "configs/sweeps/softtargets-study2.yaml", {"out": str(tmp_path / "runs")})
    cells: dict[tuple, list] = {}
    for arm in grid.tuning:
        label = arm.label
        cells.setdefault((label["dataset"], label["architecture"], label["forget"]), []).append(arm)
    assert sorted(cells) == [("digits", "cnn", "class:5"), ("digits", "mlp", "class:5"),
                             ("digits", "mlp", "random:0.1"), ("fashion_mnist", "cnn", "class:5"),
                             ("fashion_mnist", "mlp", "class:5"), ("fashion_mnist", "mlp", "random:0.1")]
    for cell, arms in cells.items():
        methods = [a.label["method"] for a in arms]
        assert {m: methods.count(m) for m in methods} == {"gradasc": 4, "graddiff": 4, "delete": 4, "scrub": 2}, cell
        for arm in arms:
            assert len(arm.candidates) == 6 and arm.seeds == [1000, 1001, 1002], (cell, arm.label)
            assert len({json.dumps(c, sort_keys=True) for c in arm.candidates}) == 6
    evaluation: dict[tuple, set] = {}
    for values in grid.pending:
        evaluation.setdefault((values["dataset"], values["architecture"], values["forget"]), set()).add(values["seed"])
    assert {cell: len(seeds) for cell, seeds in evaluation.items()} == {
        cell: 10 if cell[:2] == ("fashion_mnist", "cnn") else 30 for cell in cells}
    assert all(seeds.isdisjoint({1000, 1001, 1002}) for seeds in evaluation.values())


def test_a_dead_worker_fails_only_the_cells_it_had_not_finished(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    from softtargets.sweep.local import _collect, failure_path

    group = expand_grid(grid_file(tmp_path, "  seed: [0]\n  targets: [hard, soft, smooth]\n"),
                        {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")}).cells
    for cell, status in zip(group, ("completed", "diverged")):  # what the worker finished before it died
        cell.folder.mkdir(parents=True)
        (cell.folder / "result.json").write_text(json.dumps({"status": status}))

    class Died:
        def result(self):
            raise BrokenProcessPool("a process in the pool was terminated abruptly")

    outcomes = _collect(Died(), group)
    assert [o.status for o in outcomes] == ["completed", "diverged", "failed"]
    assert "terminated abruptly" in outcomes[2].error and failure_path(group[2]).is_file()
    assert not failure_path(group[0]).exists() and not failure_path(group[1]).exists()
