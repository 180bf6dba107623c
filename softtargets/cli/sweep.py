"""`softtargets sweep`: every cell of a grid, locally, on SLURM or through a ClearML queue."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from softtargets.cli.common import CacheDir, DeviceOpt, Out, RichHooks, app, console, out_console, user_errors
from softtargets.errors import SoftTargetsError


class Backend(str, Enum):
    local = "local"
    slurm = "slurm"
    clearml = "clearml"


@app.command()
def sweep(
    grid: Annotated[str, typer.Argument(help="Grid file (YAML), e.g. configs/sweeps/smoke.yaml; or `status` "
                                        "followed by a sweep's folder or grid file.")],
    target: Annotated[Optional[str], typer.Argument(help="With `status`: the sweep's folder (OUT) or its grid file.",
                                                    show_default=False)] = None,
    backend: Annotated[Backend, typer.Option("--backend", "-b", help="local (process pool), slurm (job array "
                                             "+ report job) or clearml (queued Tasks), a task per group of cells "
                                             "sharing an original and reference.")] = Backend.local,
    workers: Annotated[int, typer.Option("--workers", "-w", help="local: parallel processes.")] = 1,
    index: Annotated[Optional[int], typer.Option("--index", help="Run only cell I.")] = None,
    task: Annotated[Optional[int], typer.Option("--task", help="Run only array task T: a group of cells sharing "
                                                "their models (what each SLURM array task does).")] = None,
    cells_per_task: Annotated[Optional[int], typer.Option("--cells-per-task", help="slurm, clearml, local pool: "
                                                          "at most N cells per task (default: a whole group of "
                                                          "cells sharing an original and reference).")] = None,
    out: Out = None, cache_dir: CacheDir = None, device: DeviceOpt = None,
    tracker: Annotated[str, typer.Option("--tracker", help="Mirror each run to: none, auto or clearml.")] = "none",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells and which are done; run nothing.")]
    = False,
    partition: Annotated[Optional[str], typer.Option("--partition", help="slurm: partition.")] = None,
    time_limit: Annotated[Optional[str], typer.Option("--time", help="slurm: time limit per array task, e.g. "
                                                      "02:00:00; a task cut off requeues itself.")] = None,
    cpus: Annotated[Optional[int], typer.Option("--cpus", help="slurm: CPUs per array task.")] = None,
    gpus: Annotated[Optional[int], typer.Option("--gpus", help="slurm: GPUs per array task.")] = None,
    max_parallel: Annotated[Optional[int], typer.Option("--max-parallel", help="slurm: at most M array tasks at "
                                                        "once (the array's %M).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="slurm: block until the array and report jobs end.")] = False,
    queue: Annotated[Optional[str], typer.Option("--queue", help="clearml: the queue clearml-agent serves.")] = None,
    project: Annotated[str, typer.Option("--project", help="clearml: project of the tasks.")] = "softtargets",
    template: Annotated[Optional[str], typer.Option("--template", help="clearml: id of a template Task to clone "
                                                    "(default: create one).")] = None,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="local, --dry-run and status: only the cells "
                                                      "whose axis AXIS has VALUE (AXIS=VALUE, as written in the grid; "
                                                      "repeat to narrow), e.g. --only dataset=digits.")] = None,
    grid_hash: Annotated[Optional[str], typer.Option("--grid-hash", hidden=True)] = None,
):
    """Run every cell of a grid: skips cells already done, records failures and goes on.

    `softtargets sweep status OUT` (or the grid file) shows each cell done, running, failed (with its reason) or
    missing, and the SLURM states of a submitted sweep. Exit codes: 0 every cell done (or submitted), 1 a cell
    failed or diverged (or a tuned arm had no candidate to choose), 2 bad input, 3 disk or quota full, 128+N
    stopped by signal N (an array task requeues itself when SLURM cut it off)."""
    with user_errors():
        from softtargets.sweep import grid as grids
        from softtargets.tracking.base import TRACKER_KINDS

        overrides = {"out": out, "cache_dir": cache_dir, "device": device.value if device else None}
        if grid == "status" or target is not None:
            if grid != "status" or target is None:
                raise SoftTargetsError(f"unexpected argument '{target}': give one grid file, or `softtargets "
                                       "sweep status OUT` (OUT: a sweep's folder or its grid file)"
                                       if grid != "status" else "status needs the sweep's folder or its grid file: "
                                       "softtargets sweep status runs/NAME")
            from softtargets.sweep.status import sweep_status

            show_status(sweep_status(target, overrides, parse_filters(only)))
            return
        if tracker not in TRACKER_KINDS:
            raise SoftTargetsError(f"unknown tracker '{tracker}': choose one of {', '.join(TRACKER_KINDS)}")
        from softtargets.sweep.local import check_cells_per_task, check_workers

        check_workers(workers)
        check_cells_per_task(cells_per_task)
        if index is not None or task is not None:  # an array task: expanded and validated on submission already
            if index is not None and task is not None:
                raise SoftTargetsError("give --index (one cell) or --task (one array task), not both")
            loaded = grids.expand_grid(grid, overrides)
            cells = None
            if grid_hash and loaded.fingerprint() != grid_hash:
                import os

                from softtargets.sweep.status import submitted_cells

                # a tuned grid gains cells as arms finish tuning: the task's own cells, by run name, still hold
                cells = submitted_cells(loaded, os.environ.get("SLURM_ARRAY_JOB_ID"), task) if task is not None \
                    else None
                if cells is None:
                    raise SoftTargetsError(f"{grid} changed since the sweep was submitted: resubmit it")
            run_array_task(loaded, index, task, cells_per_task, tracker, cells)
            return
        filters = parse_filters(only)
        if filters and backend is not Backend.local and not dry_run:
            raise SoftTargetsError("--only runs part of a grid locally; array tasks and queued cells are indexed by "
                                   "the whole grid: drop --only or use --backend local")
        whole = grids.load_grid(grid, overrides)
        write_tuning(whole)
        loaded = whole.where(filters)
        if dry_run:
            show_cells(loaded, cells_per_task)
            return
        from softtargets.sweep.status import record_sweep

        if backend is Backend.local:
            from softtargets.sweep.local import sweep_local

            def load():  # again, as a tuned grid's arms finish tuning: their evaluation cells join the pool
                whole = grids.load_grid(grid, overrides)
                write_tuning(whole)
                record_sweep(whole, "local")
                return whole.where(filters)

            record_sweep(whole, "local")
            loaded, outcomes = sweep_local(loaded, load, workers, RichHooks(), tracker, cells_per_task)
            show_sweep(loaded, outcomes)
            return
        passed = [a for k, v in (("--out", out), ("--cache-dir", cache_dir), ("--device", overrides["device"]))
                  if v is not None for a in (k, v)]
        passed += ["--tracker", tracker] if tracker != "none" else []
        if backend is Backend.slurm:
            from softtargets.sweep import slurm

            options = slurm.SlurmOptions(partition, time_limit, cpus, gpus, max_parallel, cells_per_task)
            sub = slurm.submit(loaded, grid, options, passed)
            if sub is None:
                out_console.print(f"all {len(loaded.cells)} cells of {loaded.name} are done: softtargets report "
                                  f"{loaded.out}")
                show_unchosen(loaded.unchosen_arms())
                if loaded.unchosen:
                    raise typer.Exit(1)
                return
            record_sweep(loaded, "slurm", sub, cells_per_task)
            out_console.print(f"submitted array job {sub.array_job} ({len(sub.indices)} tasks for {sub.cells} of "
                              f"{len(loaded.cells)} cells) and report job {sub.report_job}; logs in {sub.logs}; "
                              f"progress: softtargets sweep status {loaded.out}", soft_wrap=True)
            show_unchosen(loaded.unchosen_arms())
            if wait:
                slurm.wait([sub.array_job, sub.report_job])
                from softtargets.sweep.status import grid_status

                status = grid_status(loaded, slurm=False)
                counts = status.counts()
                out_console.print(f"{counts['done']} of {len(status.cells)} cells done; report: "
                                  f"{loaded.out / 'report'}", highlight=False, soft_wrap=True)
                if counts["done"] < len(status.cells):
                    console.print(f"{counts['failed']} failed, {counts['missing']} missing: softtargets sweep status "
                                  f"{loaded.out}", highlight=False, soft_wrap=True)
                if counts["done"] < len(status.cells) or loaded.unchosen:
                    raise typer.Exit(1)
            return
        from softtargets.sweep import clearml_queue

        if not queue:
            raise SoftTargetsError("--backend clearml needs --queue NAME (the queue your clearml-agent serves)")
        queued = clearml_queue.enqueue(loaded, queue, project, template, cells_per_task)
        record_sweep(loaded, "clearml")
        out_console.print(f"enqueued {len(queued.tasks)} tasks for {queued.cells} of {len(loaded.cells)} cells in "
                          f"queue '{queue}' (template {queued.template})")
        show_unchosen(loaded.unchosen_arms())


def parse_filters(only: list[str] | None) -> dict[str, str]:
    filters = {}
    for item in only or []:
        axis, sep, value = item.partition("=")
        if not sep or not axis.strip():
            raise SoftTargetsError(f"--only {item!r} must look like AXIS=VALUE, e.g. --only dataset=digits")
        filters[axis.strip()] = value.strip()
    return filters


def write_tuning(grid) -> None:
    """OUT/tuning.csv: the candidates of every arm whose tuning cells have all finished (rewritten as more do)."""
    rows = grid.tuning_rows()
    if rows:
        from softtargets.report.aggregate import write_csv
        from softtargets.tuning import TUNING_CSV

        write_csv(grid.out / TUNING_CSV, rows)


def run_array_task(grid, index: int | None, task: int | None, cells_per_task: int | None, tracker: str,
                   cells: list | None = None) -> None:
    """What one SLURM array task does: its cells (given, or found by number), stopping cleanly (and requeueing) on
    SIGUSR1/SIGTERM."""
    import signal

    from softtargets.sweep.local import task_cells
    from softtargets.sweep.slurm import run_task

    def report(o) -> None:
        out_console.print(f"cell {o.index}: {o.status} {o.name} {o.error or ''}".rstrip(), highlight=False,
                          soft_wrap=True)

    end = run_task(cells or task_cells(grid, index, task, cells_per_task), RichHooks(), tracker, report)
    if end.signum is not None:
        where = f"in cell {end.cell.index} ({end.cell.name}), whose unfinished folder was removed" if end.cell else \
            "between cells"
        then = "the task is requeued and goes on with the cells not done" if end.requeued else end.note
        extra = f"; {end.note}" if end.requeued and end.note else ""
        console.print(f"stopped by {signal.Signals(end.signum).name} {where}; {end.completed} cells finished in "
                      f"this run; {then}{extra}", highlight=False, soft_wrap=True)
        raise typer.Exit(128 + end.signum)
    if any(o.status not in ("completed", "skipped", "running") for o in end.outcomes):
        raise typer.Exit(1)


def show_cells(grid, cells_per_task: int | None = None) -> None:
    from softtargets.sweep.local import array_tasks

    tasks = array_tasks(grid, cells_per_task)
    task_of = {cell.index: t for t, cells in enumerate(tasks) for cell in cells}
    table = Table(title=f"{grid.name}: {len(grid.cells)} cells -> {grid.out}", title_style="bold")
    for col in ("#", "task", "cell", "run folder", "done"):
        table.add_column(col)
    for cell in grid.cells:
        table.add_row(str(cell.index), str(task_of[cell.index]), cell.describe(), cell.name,
                      "yes" if cell.done else "")
    out_console.print(table)
    if grid.pending:
        out_console.print(f"{len(grid.pending)} evaluation cells wait for their arm's tuning cells (their settings "
                          "are chosen from them)")
    show_unchosen(grid.unchosen_arms())
    out_console.print(f"{len(tasks)} array tasks (cells sharing an original and reference"
                      f"{f', at most {cells_per_task} per task' if cells_per_task else ''}): sbatch "
                      f"--array=0-{len(tasks) - 1} slurmjob.sh {grid.path}"
                      f"{f' --cells-per-task {cells_per_task}' if cells_per_task else ''}", soft_wrap=True,
                      highlight=False)


def show_status(statuses) -> None:
    """Per sweep: a summary line, the SLURM task states, and every cell that is not done."""
    for status in statuses:
        counts = status.counts()
        out_console.print(f"{status.name}: {len(status.cells)} cells in {status.out}: "
                          + ", ".join(f"{counts[s]} {s}" for s in ("done", "running", "failed", "missing"))
                          + (f"; {status.waiting} more evaluation cells once their arms' tuning has finished"
                             if status.waiting else ""), highlight=False, soft_wrap=True)
        show_unchosen(status.unchosen)
        for job, states in status.jobs.items():
            out_console.print(f"  array job {job}: " + (", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                                                        or "no longer known to squeue or sacct"),
                              highlight=False, soft_wrap=True)
        pending = [c for c in status.cells if c.state != "done"]
        if not pending:
            continue
        table = Table(show_edge=False)
        for col in ("#", "state", *(["slurm"] if status.jobs else [])):
            table.add_column(col, no_wrap=True)
        table.add_column("cell")
        table.add_column("detail")
        for c in pending:
            table.add_row(str(c.index), c.state, *([c.slurm] if status.jobs else []), c.values, c.detail)
        out_console.print(table)


def show_sweep(grid, outcomes) -> None:
    from collections import Counter

    counts = Counter(o.status for o in outcomes)
    out_console.print(f"{grid.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                      + f"; run folders in {grid.out}", soft_wrap=True)
    for o in outcomes:
        if o.status == "failed":
            console.print(f"[bold red]failed:[/] cell {o.index} {o.name}: {o.error}", highlight=False, soft_wrap=True)
        elif o.status == "running":
            console.print(f"left to another process: cell {o.index} {o.name} ({o.error})", highlight=False,
                          soft_wrap=True)
    if grid.pending:
        console.print(f"[bold yellow]{len(grid.pending)} evaluation cells not run:[/] some tuning cells did not finish "
                      "(see the failures above); run the sweep again", highlight=False, soft_wrap=True)
    show_unchosen(grid.unchosen_arms())
    out_console.print(f"report: softtargets report {grid.out}", soft_wrap=True)
    if counts["failed"] or counts["diverged"] or grid.pending or grid.unchosen:
        raise typer.Exit(1)


def show_unchosen(lines: list[str]) -> None:
    """The arms that finished tuning without a candidate they may choose: their evaluation cells are not run."""
    for line in lines:
        console.print(f"[bold red]no choice:[/] {line}", highlight=False, soft_wrap=True)
