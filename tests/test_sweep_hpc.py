"""Sweeps at scale (issue 25): array tasks that hold whole groups of cells (each original and reference trained
once), cells claimed before they start (two sweeps of one grid run each cell once), clean stops on SIGUSR1/SIGTERM
with requeueing, `sweep status`, and a full disk."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from softtargets import locks
from softtargets.hooks import Hooks
from softtargets.sweep import claims, slurm
from softtargets.sweep.grid import load_grid
from softtargets.sweep.local import array_tasks, failure, pool_jobs, run_cells, task_cells
from softtargets.sweep.status import sweep_status

GRID = """
name: hpc
base:
  training: {{epochs: 1}}
  unlearning: {{epochs: {epochs}}}
  device: cpu
axes:
  method: [{methods}]
  targets: [hard, soft]
  seed: [{seeds}]
"""
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def grid_file(tmp_path, epochs=1, seeds="0, 1", methods="gradasc, graddiff") -> Path:
    path = tmp_path / "hpc.yaml"
    path.write_text(GRID.format(epochs=epochs, seeds=seeds, methods=methods))
    return path


def paths(tmp_path):
    return ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]


def loaded(tmp_path, path):
    return load_grid(path, {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")})


def results(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*/result.json"))]


def trainings(found: list[dict], role: str) -> Counter:
    """How often each seed's model was trained: the cells that trained it (cached false) share one Prepared, so
    one training is one distinct training time."""
    return Counter(r["seed"] for r in {(r["seed"], r["timings"][f"{role}_train_s"]): r for r in found
                                       if not r["timings"][f"{role}_cached"]}.values())


def no_leftovers(tmp_path) -> None:
    runs = tmp_path / "runs"
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".")], "a hidden work folder was left"
    assert not list((runs / "_claims").glob("*.lock")), "a claim was left"


def test_array_tasks_are_groups_sharing_models_split_evenly(tmp_path):
    grid = loaded(tmp_path, grid_file(tmp_path))
    for per_task, sizes in ((None, [4, 4]), (3, [2, 2, 2, 2]), (4, [4, 4]), (1, [1] * 8)):
        tasks = array_tasks(grid, per_task)
        assert [len(t) for t in tasks] == sizes
        assert sorted(c.index for t in tasks for c in t) == list(range(8))  # every cell in exactly one task
        assert all(len({c.cfg.seed for c in t}) == 1 for t in tasks)  # a task never mixes preparations
    assert [c.index for c in task_cells(grid, task=1)] == [1, 3, 5, 7]
    assert [c.index for c in task_cells(grid, index=5)] == [5]


def test_pool_jobs_split_groups_as_tasks_do_and_start_on_every_group_first(tmp_path):
    grid = loaded(tmp_path, grid_file(tmp_path))
    groups = array_tasks(grid)  # seed 0's four cells, then seed 1's
    for per_task, sizes, seeds in ((None, [4, 4], [0, 1]), (3, [2, 2, 2, 2], [0, 1, 0, 1]),
                                   (1, [1] * 8, [0, 1] * 4)):
        jobs = pool_jobs(groups, per_task)
        assert [len(j) for j in jobs] == sizes and [j[0].cfg.seed for j in jobs] == seeds
        assert sorted(c.index for j in jobs for c in j) == list(range(8))
        assert all(len({c.cfg.seed for c in j}) == 1 for j in jobs)
    assert pool_jobs([], 2) == []


def test_a_group_split_over_the_local_pool_trains_its_models_once(cli, tmp_path):
    path = grid_file(tmp_path, seeds="0")
    code, out, err = cli("--quiet", "sweep", str(path), "--workers", "2", "--cells-per-task", "2", *paths(tmp_path))
    assert code == 0 and "4 completed" in out, err
    found = results(tmp_path)
    assert trainings(found, "original") == {0: 1} and trainings(found, "reference") == {0: 1}
    # two jobs, two preparations: the one that trained the models, and the one that loaded them from the cache
    assert sorted(r["timings"]["original_cached"] for r in found) == [False, False, True, True]
    no_leftovers(tmp_path)


def test_a_task_trains_its_models_once_for_all_its_cells(cli, tmp_path):
    path = grid_file(tmp_path)
    code, out, err = cli("--quiet", "sweep", str(path), "--task", "0", *paths(tmp_path))
    assert code == 0, err
    assert out.count(": completed ") == 4
    found = results(tmp_path)
    assert len(found) == 4 and {r["seed"] for r in found} == {0}
    assert trainings(found, "original") == {0: 1} and trainings(found, "reference") == {0: 1}
    no_leftovers(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--task", "2"], "--task 2 is outside the grid"),
    (["--task", "0", "--index", "0"], "not both"),
    (["--cells-per-task", "0", "--dry-run"], "--cells-per-task must be >= 1"),
    (["--backend", "slurm", "--time", "2h"], "--time '2h' is not a SLURM time limit"),
])
def test_bad_task_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    code, _, err = cli("sweep", str(grid_file(tmp_path)), *args, *paths(tmp_path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_slurm_time_limits():
    assert [slurm.time_seconds(v) for v in ("1", "1:30", "02:00:00", "1-2", "1-0:0:5", "0", "UNLIMITED")] == [
        60, 90, 7200, 93600, 86405, None, None]
    assert [slurm.warning_seconds(v) for v in (None, "1", "02:00:00")] == [120, 30, 120]


def test_a_claimed_cell_is_left_to_its_holder_and_a_dead_claim_is_taken_over(cli, tmp_path):
    path = grid_file(tmp_path, seeds="0")
    grid = loaded(tmp_path, path)
    claims.claim_path(grid.cells[0]).parent.mkdir(parents=True)
    held = locks.FileLock(claims.claim_path(grid.cells[0]), "running cell 0")
    assert held.try_acquire() == locks.HELD  # another sweep is running cell 0
    code, out, err = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    assert code == 0, err
    assert "3 completed, 1 running" in out and f"cell 0 {grid.cells[0].name} (claimed by host" in err
    assert not grid.cells[0].done
    code, out, err = cli("sweep", "status", str(tmp_path / "runs"))
    assert code == 0 and "hpc: 4 cells in" in out and "3 done, 1 running, 0 failed, 0 missing" in out
    (status,) = sweep_status(str(tmp_path / "runs"))
    assert [(c.index, c.state) for c in status.cells] == [(0, "running"), (1, "done"), (2, "done"), (3, "done")]
    assert status.cells[0].detail.startswith(f"host {locks.HOST} pid {os.getpid()} since ")
    held.release()
    # the claim of a process killed with -9 is free again: the next sweep runs the cell
    owner = subprocess.Popen([sys.executable, "-c", HOLD, str(claims.claim_path(grid.cells[0]))],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        owner.kill()
        owner.wait()
        code, out, err = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    finally:
        owner.kill()
        owner.wait()
    assert code == 0 and "1 completed, 3 skipped" in out, err
    no_leftovers(tmp_path)
    code, out, _ = cli("sweep", "status", str(path), *paths(tmp_path))
    assert "4 done, 0 running, 0 failed, 0 missing" in out


class SignalAt(Hooks):
    """Sends signum to this process at the n-th step of the first loop named `series` (a cell's unlearning)."""

    def __init__(self, signum: int, series: str = "unlearn", n: int = 3):
        self.signum, self.series, self.n = signum, series, n

    def progress(self, description: str, total: int):
        from contextlib import contextmanager

        @contextmanager
        def bar():
            steps = [0]

            def advance(k=1, **info):
                steps[0] += k
                if description.startswith(self.series) and steps[0] == self.n:
                    os.kill(os.getpid(), self.signum)

            yield advance

        return bar()


def test_a_task_cut_off_abandons_its_cell_requeues_and_gives_up_on_a_cell_that_never_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    requeued = []
    monkeypatch.setattr(slurm, "requeue", lambda: requeued.append(1))
    grid = loaded(tmp_path, grid_file(tmp_path, epochs=3, seeds="0"))
    cells = task_cells(grid, task=0)
    end = slurm.run_task(cells, SignalAt(signal.SIGUSR1))  # trains the models, then is cut off in cell 0
    assert end.signum == signal.SIGUSR1 and end.cell is cells[0] and end.requeued and end.completed == 0
    assert not (tmp_path / "runs" / cells[0].name).exists()
    no_leftovers(tmp_path)
    assert not (tmp_path / "runs" / "_claims" / f"{cells[0].name}.cutoffs").exists()  # it trained: progress
    for attempt in range(1, claims.CUTOFF_LIMIT + 1):  # models cached now: cut off without any progress
        end = slurm.run_task(cells, SignalAt(signal.SIGUSR1))
        assert end.cell is cells[0] and end.requeued
    assert "recorded as failed" in end.note and len(requeued) == 1 + claims.CUTOFF_LIMIT
    record = failure(cells[0])
    assert record["job"] == "77_0" and "cut off by the time limit 3 times" in record["error"]
    (status,) = sweep_status(str(grid.path), {"out": str(tmp_path / "runs")})  # by grid file: no sweep record
    assert [c.state for c in status.cells] == ["failed", "missing", "missing", "missing"] and not status.jobs
    assert status.cells[0].detail.startswith("TimeoutError: cut off by the time limit 3 times in a row")
    # the requeued task skips the cell it gave up on, and runs the others
    end = slurm.run_task(cells)
    assert [o.status for o in end.outcomes] == ["failed", "completed", "completed", "completed"]
    no_leftovers(tmp_path)
    # a new submission (another job) tries the failed cell again
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "78")
    assert [o.status for o in run_cells(cells, job=slurm.job_tag())] == ["completed", "skipped", "skipped",
                                                                         "skipped"]
    assert failure(cells[0]) is None


def test_sigterm_outside_a_time_limit_stops_without_requeueing(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "requeue", lambda: pytest.fail("a cancelled task must not requeue itself"))
    grid = loaded(tmp_path, grid_file(tmp_path, epochs=3, seeds="0"))
    end = slurm.run_task(task_cells(grid, task=0), SignalAt(signal.SIGTERM))
    assert end.signum == signal.SIGTERM and not end.requeued and "not requeued" in end.note
    assert not (tmp_path / "runs" / "_claims" / f"{grid.cells[0].name}.cutoffs").exists()
    no_leftovers(tmp_path)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.slow
def test_a_signalled_task_process_exits_cleanly_and_the_rerun_finishes_each_cell_once(tmp_path):
    path = grid_file(tmp_path, epochs=60, seeds="0", methods="graddiff")
    cmd = [sys.executable, "-m", "softtargets", "--quiet", "sweep", str(path), "--task", "0", *paths(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(runs.glob("*/result.json"))) == 1 and list(runs.glob(".*incomplete*")):
            break  # one cell finished, the second in progress
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM in cell" in err and "1 cells finished in this run" in err
    no_leftovers(tmp_path)
    first = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}
    assert len(first) == 1
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": completed ") == 1 and again.stdout.count(": skipped ") == 1
    assert all(p.stat().st_mtime_ns == first[p.parent.name] for p in runs.glob("*/result.json")
               if p.parent.name in first)


@pytest.mark.slow
def test_two_sweeps_of_one_grid_into_one_folder_run_each_cell_once(tmp_path):
    path = grid_file(tmp_path, epochs=60)
    cmd = [sys.executable, "-m", "softtargets", "--quiet", "sweep", str(path), *paths(tmp_path)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs" / "_claims").glob("*.lock")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((tmp_path / "runs" / "_claims").glob("*.lock")), "the first sweep claimed nothing in 2 minutes"
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    completed = [int(out.split(" completed")[0].rsplit(" ", 1)[-1]) if " completed" in out else 0
                 for out, _ in outs]
    assert sum(completed) == 8, outs  # every cell completed by exactly one of the two sweeps
    assert min(completed) >= 1, outs  # and both sweeps ran cells: they worked side by side
    found = results(tmp_path)
    assert len(found) == 8
    assert trainings(found, "original") == {0: 1, 1: 1} and trainings(found, "reference") == {0: 1, 1: 1}
    no_leftovers(tmp_path)


TUNED = """
name: tuned
base: {training: {epochs: 1}, unlearning: {epochs: 1}, device: cpu}
tune: {seeds: [100], params: {unlearn_lr: [1.0e-4, 1.0e-3]}}
axes:
  seed: [0]
  arm: [{targets: hard}, {targets: smooth, smoothing: 0.2}]
"""


def test_a_tuned_grid_s_tasks_run_their_cells_after_an_arm_finished_tuning(cli, tmp_path, monkeypatch):
    """A tuned grid gains evaluation cells as arms finish tuning, so its fingerprint changes while its tuning
    tasks run: a task still finds the cells it was submitted with, by run name, in the sweep record."""
    from softtargets.sweep.grid import expand_grid
    from softtargets.sweep.status import record_sweep

    path = tmp_path / "tuned.yaml"
    path.write_text(TUNED)
    grid = expand_grid(path, {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")})
    assert len(grid.cells) == 4 and all(c.tuning for c in grid.cells)
    tasks = array_tasks(grid, 2)
    assert [[c.cfg.targets.kind for c in t] for t in tasks] == [["hard", "hard"], ["smooth", "smooth"]]
    record_sweep(grid, "slurm", slurm.Submission("55", "56", [0, 1], tmp_path / "runs" / "_slurm"), 2)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "55")
    task = ["--quiet", "sweep", str(path), "--cells-per-task", "2", "--grid-hash", grid.fingerprint(), *paths(tmp_path)]
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    code, out, err = cli(*task, "--task", "0")
    assert code == 0 and out.count(": completed ") == 2, err
    now = expand_grid(path, {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")})
    assert len(now.cells) == 5 and now.fingerprint() != grid.fingerprint()  # the hard arm's evaluation cell
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    code, out, err = cli(*task, "--task", "1")
    assert code == 0 and out.count(": completed ") == 2 and "smooth" in out, err
    (status,) = sweep_status(str(tmp_path / "runs"))  # the tuning cells' folders are under runs/tuning
    assert [c.state for c in status.cells] == ["done"] * 4
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "99")  # a job the record does not know: the grid check holds
    code, _, err = cli(*task, "--task", "1")
    assert code == 2 and "changed since the sweep was submitted" in err


def test_the_audits_of_one_seed_are_separate_tasks(tmp_path):
    """Audits share no preparation in the process (their models come from the cache): a forget-quality grid of
    one seed is one array task per audit, not a single task holding them all."""
    path = tmp_path / "fq.yaml"
    path.write_text("name: fq\ncommand: forget-quality\nforget_quality: {n_models: 2}\nbase: {seed: 0}\n"
                    "axes:\n  method: [gradasc, graddiff]\n  targets: [hard, soft]\n")
    grid = loaded(tmp_path, path)
    assert {c.cfg.seed for c in grid.cells} == {0}
    assert [[c.index for c in t] for t in array_tasks(grid)] == [[0], [1], [2], [3]]
    runs = loaded(tmp_path, grid_file(tmp_path))  # run cells still share their seed's preparation
    assert [len(t) for t in array_tasks(runs)] == [4, 4]


SHIFTING = """
name: shifting
base: {data: {forget: "class:3"}, training: {epochs: 1}, unlearning: {epochs: 1}, device: cpu}
tune: {seeds: [100], params: {unlearn_lr: [1.0e-4, 1.0e-3]}}
axes:
  seed: [0]
  arm:
    - {method: gradasc, targets: hard}
    - {method: graddiff, targets: hard, tune: {unlearn_lr: [1.0e+30, 1.0e-3]}}
"""


@pytest.mark.slow  # four small digits runs
def test_a_local_sweep_reports_a_divergence_although_a_later_pass_moves_its_cell_index(cli, tmp_path):
    """graddiff's tuning is done (its lr 1e30 scored best), gradasc's is not: the first pass runs gradasc's tuning
    and graddiff's evaluation, which diverges; the second pass adds gradasc's evaluation cell in front of
    graddiff's, so graddiff's cell index moves. The divergence must still be in the summary and the exit code."""
    from softtargets.sweep.grid import expand_grid

    path = tmp_path / "shifting.yaml"
    path.write_text(SHIFTING)
    overrides = {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")}
    for cell in expand_grid(path, overrides).cells:
        if cell.cfg.unlearning.method == "graddiff":  # a finished tuning, as the sweep would leave it
            cell.folder.mkdir(parents=True)
            js = 0.1 if cell.cfg.unlearning.lr == 1e30 else 0.3
            (cell.folder / "result.json").write_text(json.dumps({"status": "completed", "metrics": {
                "unlearned": {"js_forget_to_reference": js}, "reference": {}}}))
    first = {c.name: c.index for c in expand_grid(path, overrides).cells if not c.tuning}
    code, out, err = cli("--quiet", "sweep", str(path), *paths(tmp_path))
    later = {c.name: c.index for c in expand_grid(path, overrides).cells if not c.tuning}
    (moved,) = first
    assert later[moved] != first[moved] and len(later) == 2  # the index of graddiff's evaluation cell moved
    assert code == 1 and "1 diverged" in out, (out, err)
