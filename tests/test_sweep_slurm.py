"""System tests: a real single-node SLURM cluster on localhost (Debian slurm-wlm + munge, started by the
project's scripts/slurm-local.sh). The smoke grid through --backend slurm (every cell and the report checked); groups
split over tasks that run at once still train each model once, and `sweep status` follows the sweep; tasks cut off
by a short time limit requeue themselves and the sweep completes with every cell once; scancel stops tasks cleanly
and a resubmission finishes the rest (issue 25)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from softtargets.sweep.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """One local cluster for the module. Requeued jobs wait cred_expire seconds before they start again (SLURM's
    default 120; 10 here to keep the requeue tests short)."""
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("SLURM is not installed and cannot be (needs root and apt-get: apt-get install slurm-wlm "
                        "munge)")
        install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
        if install.returncode != 0:
            pytest.skip(f"apt-get could not install slurm-wlm and munge: {install.stderr.strip()[-200:]}")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster runs its daemons as root")
    root = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_DIR": str(root), "SLURM_LOCAL_CTLD_PORT": str(free_port()),
           "SLURM_LOCAL_SLURMD_PORT": str(free_port()), "SLURM_LOCAL_CRED_EXPIRE": "10"}
    start = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
    try:
        if start.returncode != 0:
            pytest.fail(f"local SLURM did not start: {start.stdout[-500:]} {start.stderr[-500:]}")
        yield {**env, "SLURM_CONF": str(root / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


def softtargets(env, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", "softtargets", "--quiet", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def task_logs(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "_slurm").glob("*_*.out")))


def completions(logs: str) -> Counter:
    """How often each cell index was completed, over every run of every task."""
    return Counter(int(i) for i in re.findall(r"^cell (\d+): completed ", logs, re.MULTILINE))


def trainings(out: Path, role: str) -> Counter:
    """How often each seed's model was trained: the cells that trained it share one Prepared, so one training is
    one distinct training time among the cells that did not load it from the cache."""
    found = [json.loads(p.read_text()) for p in out.glob("*/result.json")]
    return Counter(seed for seed, _ in {(r["seed"], r["timings"][f"{role}_train_s"]) for r in found
                                        if not r["timings"][f"{role}_cached"]})


def no_leftovers(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "a hidden work folder was left"
    assert not list((out / "_claims").glob("*.lock")), "a claim was left"


SLEEPY = '''
import time

import torch.nn.functional as F

from softtargets.methods.base import Method


class Sleepy(Method):
    """Fine-tuning on the forget set that sleeps `pause` seconds per step: a cell as long on any CPU, idle meanwhile."""

    name = "sleepy"
    summary = "test method"
    targets_use = "none"
    needs = ("forget",)
    driver = "forget"
    defaults = {"pause": 0.1}

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        time.sleep(self.params["pause"])
        return {"loss": F.cross_entropy(model(forget_batch.x), forget_batch.y)}
'''


def grid_file(tmp_path, epochs: int, seeds: str, targets: str = "hard, soft") -> Path:
    """Cells of the Sleepy method: about epochs x 5 steps x 0.1 s each (digits' forget set is 5 batches)."""
    plugin = tmp_path / "sleepy.py"
    plugin.write_text(SLEEPY)
    path = tmp_path / "grid.yaml"
    path.write_text(f"name: hpc\nbase:\n  training: {{epochs: 1}}\n  unlearning: {{epochs: {epochs}}}\n  device: cpu\n"
                    f"axes:\n  method: ['{plugin}:Sleepy']\n  unlearning.lr: [1.0e-4, 1.0e-3]\n"
                    f"  targets: [{targets}]\n  seed: [{seeds}]\n")
    return path


def test_smoke_grid_through_a_slurm_job_array(slurm, tmp_path):
    grid = ROOT / "configs" / "sweeps" / "smoke.yaml"
    paths = ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "sweep", str(grid), "--backend", "slurm",
                           "--cpus", "1", "--max-parallel", "2", "--time", "00:20:00", "--wait", *paths],
                          env=slurm, capture_output=True, text=True, timeout=900, cwd=ROOT)
    logs = "\n".join(p.read_text()[-300:] for p in sorted((tmp_path / "runs" / "_slurm").glob("*.out")))
    assert proc.returncode == 0, proc.stderr + logs
    assert "submitted array job" in proc.stdout
    cells = load_grid(grid, {"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")}).cells
    for cell in cells:
        result = json.loads((cell.folder / "result.json").read_text())
        assert result["status"] == "completed" and result["seed"] == cell.cfg.seed, logs
    # one array task per seed (the cells sharing an original and reference), each model trained once
    assert len(list((tmp_path / "runs" / "_slurm").glob("*_*.out"))) == 2
    assert completions(task_logs(tmp_path / "runs")) == {cell.index: 1 for cell in cells}
    assert trainings(tmp_path / "runs", "original") == {0: 1, 1: 1} == trainings(tmp_path / "runs", "reference")
    report = tmp_path / "runs" / "report"
    assert (report / "report.html").is_file(), logs
    assert f"{len(cells)} runs, {len(cells)} completed" in (report / "report.md").read_text()
    # resubmitting a finished sweep submits nothing
    again = subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "sweep", str(grid), "--backend", "slurm",
                            *paths], env=slurm, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode == 0 and "are done" in again.stdout


def test_groups_split_over_tasks_at_once_train_each_model_once_and_status_follows(slurm, tmp_path):
    """The issue's case: one seed's cells in two tasks that start together (two slots). One task trains each
    model, the other waits for it and loads it; `sweep status` shows running cells and SLURM states meanwhile."""
    out = tmp_path / "runs"
    grid = grid_file(tmp_path, epochs=6, seeds="0")
    sub = softtargets(slurm, "sweep", str(grid), "--backend", "slurm", "--cpus", "1", "--max-parallel", "2",
                      "--cells-per-task", "2", "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert sub.returncode == 0 and "(2 tasks for 4 of 4 cells)" in sub.stdout, sub.stderr
    job = re.search(r"array job (\d+)", sub.stdout)[1]
    seen, deadline = set(), time.monotonic() + 600
    while time.monotonic() < deadline:
        status = softtargets(slurm, "sweep", "status", str(out))
        assert status.returncode == 0, status.stderr
        seen |= set(re.findall(r"(running|missing|done)\s.*?task \d: (RUNNING|PENDING)", status.stdout))
        if "4 done" in status.stdout and f"array job {job}: 2 COMPLETED\n" in status.stdout:
            break
        time.sleep(1)
    assert ("running", "RUNNING") in seen, seen
    assert "hpc: 4 cells in" in status.stdout and "4 done, 0 running, 0 failed, 0 missing" in status.stdout
    logs = task_logs(out)
    assert completions(logs) == {0: 1, 1: 1, 2: 1, 3: 1}, logs
    assert trainings(out, "original") == {0: 1} and trainings(out, "reference") == {0: 1}, logs
    no_leftovers(out)


def test_tasks_cut_off_by_a_time_limit_requeue_and_complete_every_cell_once(slurm, tmp_path):
    """A 1-minute limit, the warning 30 s before it (SLURM sends it up to half a minute early; the task asks squeue
    for the time really left): a task runs its cells until 10 s before the limit, abandons the cell in progress,
    requeues itself and goes on from the cells not done. The 10 cells sleep 6 s each, so the task is cut off at
    least once on any machine."""
    out = tmp_path / "runs"
    grid = grid_file(tmp_path, epochs=12, seeds="0", targets="hard, soft, smooth, uniform, pseudo")
    proc = softtargets(slurm, "sweep", str(grid), "--backend", "slurm", "--cpus", "1", "--time", "1", "--wait",
                       "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    logs = task_logs(out)
    assert proc.returncode == 0 and "10 of 10 cells done" in proc.stdout, proc.stderr + logs
    # the warning (SIGUSR1), or where SLURM sent it before softtargets was listening, the SIGTERM at the limit
    assert re.search(r"stopped by SIG(USR1|TERM) in cell", logs) and "the task is requeued" in logs, logs
    assert "(run 1)" in logs, logs  # the same array task, started again by SLURM
    assert completions(logs) == {i: 1 for i in range(10)}, logs
    assert len(list(out.glob("*/result.json"))) == 10
    no_leftovers(out)
    status = softtargets(slurm, "sweep", "status", str(grid), "--out", str(out))
    assert "hpc: 10 cells in" in status.stdout and "10 done, 0 running, 0 failed, 0 missing" in status.stdout
    assert (out / "report" / "report.md").is_file()


def test_scancel_stops_tasks_cleanly_and_a_resubmission_completes(slurm, tmp_path):
    out = tmp_path / "runs"
    grid = grid_file(tmp_path, epochs=10, seeds="0")
    args = ["sweep", str(grid), "--backend", "slurm", "--cpus", "1", "--out", str(out), "--cache-dir",
            str(tmp_path / "cache")]
    sub = softtargets(slurm, *args)
    assert sub.returncode == 0, sub.stderr
    job = re.search(r"array job (\d+)", sub.stdout)[1]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (list(out.glob("*/result.json")) and list(out.glob(".*incomplete*"))):
        time.sleep(0.1)  # one cell done, the next one in progress
    subprocess.run(["scancel", job], env=slurm, check=True)
    while time.monotonic() < deadline and "RUNNING" in subprocess.run(
            ["squeue", "-h", "-j", job, "--states=all", "-o", "%T"], env=slurm, capture_output=True, text=True).stdout:
        time.sleep(0.5)
    time.sleep(2)  # the task's process ends after its job step
    logs = task_logs(out)
    assert "stopped by SIGTERM in cell" in logs and "cancelled: not requeued" in logs, logs
    no_leftovers(out)
    status = softtargets(slurm, "sweep", "status", str(out))
    assert re.search(r"\d done, 0 running, 0 failed, [1-3] missing", status.stdout), status.stdout
    assert f"array job {job}: 1 CANCELLED" in status.stdout and "task 0: CANCELLED" in status.stdout, status.stdout
    done = completions(logs)
    again = softtargets(slurm, *args, "--wait")
    assert again.returncode == 0 and "(1 tasks for " in again.stdout, again.stderr
    assert completions(task_logs(out)) == {i: 1 for i in range(4)}, task_logs(out)
    assert set(done) < set(range(4))
    no_leftovers(out)
