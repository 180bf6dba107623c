"""System test: a real single-node SLURM cluster on localhost (Debian slurm-wlm + munge, started by the
project's scripts/slurm-local.sh), the smoke grid submitted through --backend slurm, every cell and the
report checked."""

import json
import os
import shutil
import socket
import subprocess
import sys
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


@pytest.fixture
def slurm(tmp_path):
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("SLURM is not installed and cannot be (needs root and apt-get: apt-get install slurm-wlm "
                        "munge)")
        install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
        if install.returncode != 0:
            pytest.skip(f"apt-get could not install slurm-wlm and munge: {install.stderr.strip()[-200:]}")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster runs its daemons as root")
    env = {**os.environ, "SLURM_LOCAL_DIR": str(tmp_path / "slurm"), "SLURM_LOCAL_CTLD_PORT": str(free_port()),
           "SLURM_LOCAL_SLURMD_PORT": str(free_port())}
    start = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
    try:
        if start.returncode != 0:
            pytest.fail(f"local SLURM did not start: {start.stdout[-500:]} {start.stderr[-500:]}")
        yield {**env, "SLURM_CONF": str(tmp_path / "slurm" / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


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
    # one log per array task, each task ran exactly its own cell
    task_logs = [p for p in (tmp_path / "runs" / "_slurm").glob("*_*.out")]
    assert len(task_logs) == len(cells)
    report = tmp_path / "runs" / "report"
    assert (report / "report.html").is_file(), logs
    assert f"{len(cells)} runs, {len(cells)} completed" in (report / "report.md").read_text()
    # resubmitting a finished sweep submits nothing
    again = subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "sweep", str(grid), "--backend", "slurm",
                            *paths], env=slurm, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode == 0 and "are done" in again.stdout
