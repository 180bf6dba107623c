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
    grid: Annotated[str, typer.Argument(help="Grid file (YAML), e.g. configs/sweeps/smoke.yaml.")],
    backend: Annotated[Backend, typer.Option("--backend", "-b", help="local (process pool), slurm (job array "
                                             "+ report job) or clearml (one queued Task per cell).")] = Backend.local,
    workers: Annotated[int, typer.Option("--workers", "-w", help="local: parallel processes.")] = 1,
    index: Annotated[Optional[int], typer.Option("--index", help="Run only cell I (what each SLURM array task "
                                                 "does).")] = None,
    out: Out = None, cache_dir: CacheDir = None, device: DeviceOpt = None,
    tracker: Annotated[str, typer.Option("--tracker", help="Mirror each run to: none, auto or clearml.")] = "none",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells and which are done; run nothing.")]
    = False,
    partition: Annotated[Optional[str], typer.Option("--partition", help="slurm: partition.")] = None,
    time_limit: Annotated[Optional[str], typer.Option("--time", help="slurm: time limit per cell, e.g. 02:00:00.")]
    = None,
    cpus: Annotated[Optional[int], typer.Option("--cpus", help="slurm: CPUs per cell.")] = None,
    gpus: Annotated[Optional[int], typer.Option("--gpus", help="slurm: GPUs per cell.")] = None,
    max_parallel: Annotated[Optional[int], typer.Option("--max-parallel", help="slurm: at most M cells at once "
                                                        "(the array's %M).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="slurm: block until the array and report jobs end.")] = False,
    queue: Annotated[Optional[str], typer.Option("--queue", help="clearml: the queue clearml-agent serves.")] = None,
    project: Annotated[str, typer.Option("--project", help="clearml: project of the tasks.")] = "softtargets",
    template: Annotated[Optional[str], typer.Option("--template", help="clearml: id of a template Task to clone "
                                                    "(default: create one).")] = None,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="local and --dry-run: only the cells whose axis "
                                                      "AXIS has VALUE (AXIS=VALUE, as written in the grid; repeat to "
                                                      "narrow), e.g. --only dataset=digits.")] = None,
    grid_hash: Annotated[Optional[str], typer.Option("--grid-hash", hidden=True)] = None,
):
    """Run every cell of a grid: skips cells already done, records failures and goes on."""
    with user_errors():
        from softtargets.sweep import grid as grids
        from softtargets.tracking.base import TRACKER_KINDS

        if tracker not in TRACKER_KINDS:
            raise SoftTargetsError(f"unknown tracker '{tracker}': choose one of {', '.join(TRACKER_KINDS)}")
        from softtargets.sweep.local import check_workers

        check_workers(workers)
        overrides = {"out": out, "cache_dir": cache_dir, "device": device.value if device else None}
        if index is not None:  # an array task: expanded and validated on submission already
            loaded = grids.expand_grid(grid, overrides)
            if grid_hash and loaded.fingerprint() != grid_hash:
                raise SoftTargetsError(f"{grid} changed since the sweep was submitted: resubmit it")
            from softtargets.sweep.local import run_index

            outcome = run_index(loaded, index, RichHooks(), tracker)
            out_console.print(f"cell {index}: {outcome.status} {outcome.name} {outcome.error or ''}".rstrip())
            raise typer.Exit(0 if outcome.status in ("completed", "skipped") else 1)
        filters = parse_filters(only)
        if filters and backend is not Backend.local and not dry_run:
            raise SoftTargetsError("--only runs part of a grid locally; array tasks and queued cells are indexed by "
                                   "the whole grid: drop --only or use --backend local")
        loaded = grids.load_grid(grid, overrides)
        write_tuning(loaded)
        loaded = loaded.where(filters)
        if dry_run:
            show_cells(loaded)
            return
        if backend is Backend.local:
            from softtargets.sweep.local import run_local

            outcomes = {}
            while True:  # a tuned grid: each pass runs what is ready; arms whose tuning finished add their cells
                outcomes.update({o.index: o for o in run_local(loaded, workers, RichHooks(), tracker)
                                 if o.status != "skipped" or o.index not in outcomes})
                waiting = len(loaded.pending)
                if not waiting:
                    break
                loaded = grids.load_grid(grid, overrides).where(filters)
                write_tuning(loaded)
                if len(loaded.pending) == waiting:
                    break
            show_sweep(loaded, sorted(outcomes.values(), key=lambda o: o.index))
            return
        passed = [a for k, v in (("--out", out), ("--cache-dir", cache_dir), ("--device", overrides["device"]))
                  if v is not None for a in (k, v)]
        passed += ["--tracker", tracker] if tracker != "none" else []
        if backend is Backend.slurm:
            from softtargets.sweep import slurm

            options = slurm.SlurmOptions(partition, time_limit, cpus, gpus, max_parallel)
            sub = slurm.submit(loaded, grid, options, passed)
            if sub is None:
                out_console.print(f"all {len(loaded.cells)} cells of {loaded.name} are done: softtargets report "
                                  f"{loaded.out}")
                return
            out_console.print(f"submitted array job {sub.array_job} ({len(sub.indices)} of {len(loaded.cells)} "
                              f"cells) and report job {sub.report_job}; logs in {sub.logs}")
            if wait:
                slurm.wait([sub.array_job, sub.report_job])
                out_console.print(f"done: {loaded.out / 'report'}")
            return
        from softtargets.sweep import clearml_queue

        if not queue:
            raise SoftTargetsError("--backend clearml needs --queue NAME (the queue your clearml-agent serves)")
        queued = clearml_queue.enqueue(loaded, queue, project, template)
        out_console.print(f"enqueued {len(queued.tasks)} of {len(loaded.cells)} cells in queue '{queue}' "
                          f"(template {queued.template})")


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


def show_cells(grid) -> None:
    table = Table(title=f"{grid.name}: {len(grid.cells)} cells -> {grid.out}", title_style="bold")
    for col in ("#", "cell", "run folder", "done"):
        table.add_column(col)
    for cell in grid.cells:
        table.add_row(str(cell.index), cell.describe(), cell.name, "yes" if cell.done else "")
    out_console.print(table)
    if grid.pending:
        out_console.print(f"{len(grid.pending)} evaluation cells wait for their arm's tuning cells (their settings "
                          "are chosen from them)")


def show_sweep(grid, outcomes) -> None:
    from collections import Counter

    counts = Counter(o.status for o in outcomes)
    out_console.print(f"{grid.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                      + f"; run folders in {grid.out}", soft_wrap=True)
    for o in outcomes:
        if o.status == "failed":
            console.print(f"[bold red]failed:[/] cell {o.index} {o.name}: {o.error}", highlight=False, soft_wrap=True)
    if grid.pending:
        console.print(f"[bold yellow]{len(grid.pending)} evaluation cells not run:[/] some tuning cells did not finish "
                      "(see the failures above); run the sweep again", highlight=False, soft_wrap=True)
    out_console.print(f"report: softtargets report {grid.out}", soft_wrap=True)
    if counts["failed"] or counts["diverged"] or grid.pending:
        raise typer.Exit(1)
