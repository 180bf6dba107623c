"""SLURM backend: one job array (a task per group of cells sharing an original and reference, `%M` throttle) plus a
report job (afterany), and what an array task does when SLURM cuts it off.

Each task runs slurmjob.sh -> `softtargets sweep GRID --task $SLURM_ARRAY_TASK_ID`: its cells one after another,
training (or loading) their models once, writing only its own run folders on the shared filesystem. Tasks are
submitted with --requeue, --open-mode=append and --signal=B:USR1@N: about N seconds before the time limit SLURM
sends SIGUSR1; the task asks squeue how much time is really left (the warning may come a minute early), goes on
until MARGIN_S before the limit, then abandons the cell in progress (softtargets.stopping) and requeues itself; the
requeued task skips the cells already done. SIGTERM ends the task at once in the same way; it requeues itself only
when SLURM, not a person, cut it off (the time limit or preemption), so `scancel` still stops a sweep.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.sweep.grid import Cell, Grid

WARNING_S = 120  # SIGUSR1 this long before the time limit (SLURM may send it up to a minute earlier)
MARGIN_S = 10  # after the warning, cells go on until this long before the limit: time to abandon and requeue
TIME_FORMATS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time: str | None = None  # e.g. 02:00:00
    cpus: int | None = None  # per task
    gpus: int | None = None  # per task
    max_parallel: int | None = None  # the array's %M throttle
    cells_per_task: int | None = None  # split groups larger than this (None: one task per group)


@dataclass(frozen=True)
class Submission:
    array_job: str
    report_job: str
    indices: list[int]  # the array task ids submitted
    logs: Path
    cells: int = 0  # cells not yet done in those tasks


def time_seconds(value: str) -> int | None:
    """A SLURM --time value in seconds (None: no limit, as 0, UNLIMITED or INFINITE); anything else is one line
    naming the formats."""
    if value.strip().lower() in ("unlimited", "infinite"):
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not match:
        raise SoftTargetsError(f"--time {value!r} is not a SLURM time limit: use {TIME_FORMATS}")
    days, a, b, c = (int(x) if x is not None else None for x in match.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    else:  # MM, MM:SS or HH:MM:SS
        seconds = a * 3600 + b * 60 + c if c is not None else a * 60 + (b or 0)
    return seconds or None  # 0: no limit, as in sbatch


def warning_seconds(time_limit: str | None) -> int:
    """How long before the time limit a task is warned: WARNING_S, at most half of a short limit."""
    seconds = time_seconds(time_limit) if time_limit else None
    return WARNING_S if seconds is None else max(1, min(WARNING_S, seconds // 2))


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
    """Submit the array tasks that have cells not yet done (None when every cell is done). sweep_args are passed to
    every task so it resolves the same cells (--out, --cache-dir, --device, --tracker; --cells-per-task is added
    here)."""
    from softtargets.sweep.local import array_tasks, check_cells_per_task

    if options.max_parallel is not None and options.max_parallel < 1:
        raise SoftTargetsError("--max-parallel must be >= 1")
    check_cells_per_task(options.cells_per_task)
    warning = warning_seconds(options.time)  # checks --time before anything is submitted
    tasks = array_tasks(grid, options.cells_per_task)
    indices = [t for t, cells in enumerate(tasks) if any(not c.done for c in cells)]
    if not indices:
        return None
    logs = grid.out / "_slurm"
    logs.mkdir(parents=True, exist_ok=True)
    spec = array_spec(indices) + (f"%{options.max_parallel}" if options.max_parallel else "")
    common = [f"--chdir={os.getcwd()}", f"--export=ALL,SOFTTARGETS_PYTHON={sys.executable}", *_resources(options)]
    per_task = ["--cells-per-task", str(options.cells_per_task)] if options.cells_per_task else []
    array_job = _sbatch([f"--job-name=st-{grid.name}", f"--array={spec}", f"--output={logs}/%A_%a.out",
                         "--open-mode=append", "--requeue", f"--signal=B:USR1@{warning}", *common,
                         str(job_script()), grid_arg, *sweep_args, *per_task, "--grid-hash", grid.fingerprint()])
    report = shlex.join([sys.executable, "-m", "softtargets", "--quiet", "report", str(grid.out)])
    report_job = _sbatch([f"--job-name=st-{grid.name}-report", f"--dependency=afterany:{array_job}",
                          f"--output={logs}/report-%j.out", *common, f"--wrap={report}"])
    missing = sum(not c.done for t in indices for c in tasks[t])
    return Submission(array_job, report_job, indices, logs, missing)


def job_tag() -> str | None:
    """This SLURM job: ARRAYJOB_TASK for an array task (the same across its requeues), else the job id, None
    outside SLURM."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def _slurm(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None


def cut_off_by_slurm(signum: int) -> bool:
    """Whether the stop signal means SLURM cut the task off (requeue it) rather than a person cancelled it:
    SIGUSR1 is the time-limit warning; a SIGTERM counts when squeue gives the time limit or preemption as the
    reason (after scancel it gives none)."""
    if signum == signal.SIGUSR1:
        return True
    tag = job_tag()
    proc = _slurm("squeue", "-h", "-j", tag, "-o", "%T|%r") if tag else None
    if proc is None or proc.returncode != 0:
        return False
    state, _, reason = proc.stdout.strip().partition("|")
    return "PREEMPT" in state.upper() or any(word in reason for word in ("TimeLimit", "Preempt"))


def requeue() -> str | None:
    """Requeue this array task (scontrol requeue); returns None on success, else why not."""
    tag = job_tag()
    if tag is None:
        return "not running under SLURM"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # SLURM ends the current run of the task right away
    proc = _slurm("scontrol", "requeue", tag)
    if proc is None:
        return "scontrol is not available"
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"scontrol exited with {proc.returncode}")


def job_states(job: str) -> dict[str, str]:
    """Array task id -> SLURM state (PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, ...) for a job still
    known to squeue, else to sacct (where accounting is enabled); {} when neither knows it."""
    proc = _slurm("squeue", "-h", "-r", "-j", job, "--states=all", "-o", "%K|%T")
    states = {}
    if proc is not None and proc.returncode == 0:
        for line in proc.stdout.splitlines():
            task, _, state = line.strip().partition("|")
            if task and state:
                states[task] = state
    if states:
        return states
    proc = _slurm("sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State")
    if proc is not None and proc.returncode == 0:
        for line in proc.stdout.splitlines():
            jobid, _, state = line.strip().partition("|")
            if "_" in jobid and state:
                states[jobid.split("_", 1)[1]] = state.split()[0]
    return states


def time_left() -> float | None:
    """Seconds until this job's time limit (squeue %L), None where unknown or unlimited."""
    tag = job_tag()
    proc = _slurm("squeue", "-h", "-j", tag, "-o", "%L") if tag else None
    if proc is None or proc.returncode != 0:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", proc.stdout.strip())
    if not match:  # UNLIMITED, NOT_SET, INVALID
        return None
    days, hours, minutes, seconds = (int(x or 0) for x in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def grace() -> float | None:
    """After the time-limit warning, how long to go on working: the time left less MARGIN_S."""
    left = time_left()
    return None if left is None else left - MARGIN_S


@dataclass
class TaskEnd:
    """How an array task ended: its cells' outcomes, or the signal that stopped it and what was done about it."""

    outcomes: list = field(default_factory=list)
    signum: int | None = None  # the stop signal, None when every cell was run
    cell: Cell | None = None  # the cell abandoned by the stop
    completed: int = 0  # cells finished in this run before the stop
    requeued: bool = False
    note: str = ""  # why it was not requeued, or what happened to the abandoned cell


def run_task(cells: list[Cell], hooks=None, tracker: str = "none", report=None) -> TaskEnd:
    """Run an array task's cells (report(outcome) as each ends). SIGUSR1, the time-limit warning, lets the cells go
    on until MARGIN_S before the limit; then, or on SIGTERM, the cell in progress is abandoned and, when SLURM cut the
    task off, the task is requeued. A cell cut off CUTOFF_LIMIT times in a row with nothing finished or trained
    meanwhile is recorded as failed (it does not fit the time limit) instead of being tried forever."""
    from softtargets.cache import TensorCache
    from softtargets.stopping import Stopped, stop_on
    from softtargets.sweep.claims import CUTOFF_LIMIT, clear_cutoffs, count_cutoff
    from softtargets.sweep.local import record_failure, run_cells

    written = TensorCache.writes
    try:
        with stop_on(grace=grace):
            return TaskEnd(run_cells(cells, hooks, tracker, job_tag(), report))
    except Stopped as stop:
        end = TaskEnd(stop.outcomes, stop.signum, stop.cell, stop.completed)
    if not cut_off_by_slurm(end.signum):
        end.note = "cancelled: not requeued"
        return end
    if end.cell is not None:
        if end.completed or TensorCache.writes > written:
            clear_cutoffs(end.cell)
        elif count_cutoff(end.cell) >= CUTOFF_LIMIT:
            clear_cutoffs(end.cell)
            message = (f"cut off by the time limit {CUTOFF_LIMIT} times in a row before it finished: give the "
                       "tasks a longer --time")
            record_failure(end.cell, TimeoutError(message), job_tag())
            end.note = f"cell {end.cell.index} recorded as failed ({message})"
    problem = requeue()
    end.requeued = problem is None
    end.note = "; ".join(filter(None, [end.note, f"not requeued: {problem}" if problem else ""]))
    return end


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
