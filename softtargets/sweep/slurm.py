"""SLURM backend: one job array (a task per missing cell, `%M` throttle) plus a report job (afterany).

Each task runs slurmjob.sh -> `softtargets sweep GRID --index $SLURM_ARRAY_TASK_ID`, writing only its own
run folder on the shared filesystem; the shared model cache is safe for concurrent writers.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.sweep.grid import Grid


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time: str | None = None  # e.g. 02:00:00
    cpus: int | None = None  # per task
    gpus: int | None = None  # per task
    max_parallel: int | None = None  # the array's %M throttle


@dataclass(frozen=True)
class Submission:
    array_job: str
    report_job: str
    indices: list[int]
    logs: Path


def array_spec(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (sbatch --array syntax)."""
    parts, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ",".join(parts)


def job_script() -> Path:
    """slurmjob.sh: the repository's top-level one in a checkout, else the copy inside the package."""
    for candidate in (Path(__file__).resolve().parents[2] / "slurmjob.sh", Path(__file__).with_name("slurmjob.sh")):
        if candidate.is_file():
            return candidate
    raise SoftTargetsError("slurmjob.sh is missing from the installation: reinstall softtargets")


def _resources(options: SlurmOptions) -> list[str]:
    args = []
    if options.partition:
        args.append(f"--partition={options.partition}")
    if options.time:
        args.append(f"--time={options.time}")
    if options.cpus:
        args.append(f"--cpus-per-task={options.cpus}")
    if options.gpus:
        args.append(f"--gres=gpu:{options.gpus}")
    return args


def _sbatch(args: list[str]) -> str:
    if shutil.which("sbatch") is None:
        raise SoftTargetsError("sbatch not found: run on a SLURM login node, or use --backend local")
    proc = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise SoftTargetsError(f"sbatch refused the job: {reason}")
    return proc.stdout.strip().split(";")[0]


def submit(grid: Grid, grid_arg: str, options: SlurmOptions, sweep_args: list[str]) -> Submission | None:
    """Submit the missing cells (None when every cell is done). sweep_args are passed to every task so it
    resolves the same cells (--out, --cache-dir, --device, --tracker)."""
    indices = [c.index for c in grid.cells if not c.done]
    if not indices:
        return None
    if options.max_parallel is not None and options.max_parallel < 1:
        raise SoftTargetsError("--max-parallel must be >= 1")
    logs = grid.out / "_slurm"
    logs.mkdir(parents=True, exist_ok=True)
    spec = array_spec(indices) + (f"%{options.max_parallel}" if options.max_parallel else "")
    common = [f"--chdir={os.getcwd()}", f"--export=ALL,SOFTTARGETS_PYTHON={sys.executable}", *_resources(options)]
    array_job = _sbatch([f"--job-name=st-{grid.name}", f"--array={spec}", f"--output={logs}/%A_%a.out", *common,
                         str(job_script()), grid_arg, *sweep_args, "--grid-hash", grid.fingerprint()])
    report = shlex.join([sys.executable, "-m", "softtargets", "--quiet", "report", str(grid.out)])
    report_job = _sbatch([f"--job-name=st-{grid.name}-report", f"--dependency=afterany:{array_job}",
                          f"--output={logs}/report-%j.out", *common, f"--wrap={report}"])
    return Submission(array_job, report_job, indices, logs)


def wait(job_ids: list[str], timeout: float = 3600, poll: float = 2.0) -> None:
    """Block until none of the jobs is queued or running any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(job_ids)], capture_output=True, text=True)
        if proc.returncode == 0 and not proc.stdout.strip():
            return
        if proc.returncode != 0 and "Invalid job id" in proc.stderr:  # already purged from the queue
            return
        time.sleep(poll)
    raise SoftTargetsError(f"SLURM jobs {', '.join(job_ids)} still running after {timeout:.0f} s: check squeue")
