"""The command line: parses, validates, calls the library, renders with rich. No science here.

Exit codes: 0 success, 1 a run diverged or failed, 2 bad input (one line on stderr, no traceback
unless --debug).
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from softtargets.errors import SoftTargetsError
from softtargets.hooks import Hooks

app = typer.Typer(
    name="softtargets",
    help="Hard vs soft targets in machine unlearning: train, unlearn, measure against a retrained reference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out_console = Console()
STATE = {"debug": False, "quiet": False}


class RichHooks(Hooks):
    """Progress bars on stderr for every training and unlearning loop."""

    def __init__(self):
        self.progress_bar = Progress(TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                                     disable=STATE["quiet"])

    @contextmanager
    def progress(self, description: str, total: int):
        with self.progress_bar:
            task = self.progress_bar.add_task(description, total=total)
            try:
                yield lambda n=1, **info: self.progress_bar.advance(task, n)
            finally:
                self.progress_bar.remove_task(task)


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """SoftTargetsError -> one line and exit 2 (traceback only with --debug)."""
    try:
        yield
    except SoftTargetsError as err:
        if STATE["debug"]:
            raise
        fail(str(err))
    except KeyboardInterrupt:
        console.print("interrupted: no incomplete run folder was kept")
        raise typer.Exit(130)


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    STATE.update(debug=debug, quiet=quiet)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


# Options shared by run and compare (Typer has no option groups; these aliases keep them identical).
Dataset = Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset (see `softtargets list datasets`).")]
Method = Annotated[Optional[str], typer.Option(
    "--mu_algo", "--mu-algo", "--method", "-m",
    help="Unlearning method (see `softtargets list methods`), or package.module:Class / file.py:Class.")]
Architecture = Annotated[Optional[str], typer.Option("--architecture", "--arch", "-a", help="Model architecture.")]
Targets = Annotated[Optional[str], typer.Option("--targets", "-t", help="Target kind for the forget (and retain) "
                                                "losses: hard, soft, smooth, uniform.")]
RetainTargets = Annotated[Optional[str], typer.Option("--retain-targets", help="Target kind for the retain losses "
                                                      "(default: same as --targets).")]
Temperature = Annotated[Optional[float], typer.Option("--temperature", "-T", help="Soft-target temperature T.")]
Smoothing = Annotated[Optional[float], typer.Option("--smoothing", help="Label-smoothing epsilon for 'smooth'.")]
Forget = Annotated[Optional[str], typer.Option(
    "--forget", "-f", help="Forget spec: class:K[,K], class:K:F, random:F, file:PATH (indices or image paths), "
                           "dataset (a CSV's f1_split rows) (default random:0.1).")]
ConfigFile = Annotated[Optional[str], typer.Option("--config", "-c", help="YAML config file (sections data, "
                                                   "training, unlearning, targets; keys seed, device, out).")]
Out = Annotated[Optional[str], typer.Option("--out", "-o", help="Output folder for run folders (default runs/).")]
DeviceOpt = Annotated[Optional[Device], typer.Option("--device", help="auto, cpu or cuda.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Training epochs of original and reference.")]
UnlearnEpochs = Annotated[Optional[int], typer.Option("--unlearn-epochs", "--unlearn_epochs",
                                                      help="Unlearning epochs.")]
UnlearnLr = Annotated[Optional[float], typer.Option("--unlearn-lr", help="Unlearning learning rate.")]
Params = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Method parameter KEY=VALUE (repeat).")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", help="Model cache folder (default "
                                                 ".cache/softtargets).")]
DataRoot = Annotated[Optional[str], typer.Option("--data-root", help="Dataset folder (default data/).")]
ProtocolOpt = Annotated[Optional[str], typer.Option("--protocol", help="Preset reproducing a seed's setup: "
                                                    "softtargets, mlsbench, challenge (or a protocol .yaml); "
                                                    "--config and flags override it.")]
TrackerOpt = Annotated[str, typer.Option("--tracker", help="Mirror runs to ClearML: auto (when a clearml.conf or "
                                         "CLEARML_* variables exist), clearml, or none.")]
ClearmlOffline = Annotated[bool, typer.Option("--clearml-offline", help="Record a ClearML offline session zip "
                                              "(also CLEARML_OFFLINE_MODE=1); its path is printed.")]
ProjectOpt = Annotated[str, typer.Option("--project", help="ClearML project of the Tasks.")]
LogModels = Annotated[bool, typer.Option("--log-models", help="Also upload model weights (model.pt) to ClearML.")]


def tracking_options(tracker: str, offline: bool, project: str, log_models: bool) -> dict:
    from softtargets.tracking.base import TRACKER_KINDS

    if tracker not in TRACKER_KINDS:
        raise SoftTargetsError(f"unknown --tracker '{tracker}': choose one of {', '.join(TRACKER_KINDS)}")
    if tracker == "clearml" or (offline and tracker == "auto"):
        from softtargets.tracking.clearml import wanted

        wanted(required=True, offline=offline)  # a missing SDK or configuration fails before any work
    return {"kind": tracker, "offline": offline, "project": project, "log_models": log_models}


def show_tracker(where: str | None) -> None:
    if where and where.endswith(".zip"):
        console.print(f"ClearML offline session: {where} (upload later with "
                      f"python -c \"from clearml import Task; Task.import_offline_session('{where}')\")",
                      highlight=False, soft_wrap=True)
    elif where:
        console.print(f"ClearML task: {where}", highlight=False, soft_wrap=True)


def build_config(config: str | None, *, dataset=None, method=None, architecture=None, targets=None,
                 retain_targets=None, temperature=None, smoothing=None, forget=None, seed=None, out=None,
                 device=None, epochs=None, unlearn_epochs=None, unlearn_lr=None, params=None, cache_dir=None,
                 data_root=None, softtargets_flag=False, protocol=None):
    from softtargets.config import load_config

    if softtargets_flag and targets not in (None, "soft"):
        raise SoftTargetsError(f"--softtargets conflicts with --targets {targets}: give only one")
    overrides = {
        "data.dataset": dataset, "data.forget": forget, "data.root": data_root,
        "training.architecture": architecture, "training.epochs": epochs,
        "unlearning.method": method, "unlearning.epochs": unlearn_epochs, "unlearning.lr": unlearn_lr,
        "targets.kind": "soft" if softtargets_flag else targets, "targets.retain_kind": retain_targets,
        "targets.temperature": temperature, "targets.smoothing": smoothing,
        "seed": seed, "out": out, "device": device.value if isinstance(device, Enum) else device,
        "cache_dir": cache_dir, "protocol": protocol,
    }
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SoftTargetsError(f"--param '{item}' must look like KEY=VALUE, e.g. --param alpha=0.5")
        overrides[f"unlearning.params.{key.strip()}"] = _parse_value(value.strip())
    return load_config(config, overrides)


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text) if text else text


def metrics_table(result: dict) -> Table:
    from softtargets.evaluation import HEADLINE

    table = Table(title=f"{result['name']}  [{result['status']}]", title_style="bold")
    for col in ("metric", "original", "reference", "unlearned", "better"):
        table.add_column(col, justify="left" if col in ("metric", "better") else "right")
    metrics = result["metrics"]
    for key, (_, better) in HEADLINE.items():
        values = [metrics[r].get(key) for r in ("original", "reference", "unlearned")]
        if all(v is None for v in values):
            continue
        table.add_row(key, *("–" if v is None else f"{v:.4f}" for v in values), better)
    return table


@app.command()
def run(
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    softtargets_flag: Annotated[bool, typer.Option("--softtargets", help="Use soft targets (= --targets soft), "
                                                   "the original tool's flag.")] = False,
    targets: Targets = None, retain_targets: RetainTargets = None, temperature: Temperature = None,
    smoothing: Smoothing = None, forget: Forget = None,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", help="Seed of split, initialisation and batch order.")]
    = None,
    config: ConfigFile = None, out: Out = None, device: DeviceOpt = None, epochs: Epochs = None,
    unlearn_epochs: UnlearnEpochs = None, unlearn_lr: UnlearnLr = None, param: Params = None,
    cache_dir: CacheDir = None, data_root: DataRoot = None, protocol: ProtocolOpt = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
    log_models: LogModels = False,
    lmc: Annotated[bool, typer.Option("--lmc", help="Also linear mode connectivity: original->unlearned and "
                                      "original->reference, 21 points (lmc.json, lmc.png).")] = False,
):
    """Run one unlearning experiment and measure it against the retrained reference."""
    with user_errors():
        from softtargets.tracking.runs import run_tracked
        from softtargets.audit import lmc_extra

        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                           unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir,
                           data_root=data_root, softtargets_flag=softtargets_flag, protocol=protocol)
        tracking = tracking_options(tracker, clearml_offline, project, log_models)
        result = run_tracked(cfg, RichHooks(), tracking=tracking, extras=(lmc_extra,) if lmc else ())
    out_console.print(metrics_table(result))
    if result.get("lmc"):
        out_console.print(lmc_table(result["lmc"]))
    if result.get("protocol"):
        out_console.print(protocol_table(result["protocol"]))
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))
    if result["status"] != "completed":
        console.print(f"[bold yellow]warning:[/] unlearning {result['status']}: {result['unlearning']['stopped']}")
        raise typer.Exit(1)


def parse_seeds(text: str) -> list[int]:
    """'5' -> [0..4]; '0,3,7' -> [0, 3, 7]."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise SoftTargetsError(f"--seeds '{text}' must be a count (5) or a list (0,3,7)") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SoftTargetsError(f"--seeds '{text}' must give at least one distinct non-negative seed")
    return seeds


@app.command()
def compare(
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Number of seeds (0..N-1) or a list like 0,3,7.")] = "5",
    soft_kind: Annotated[str, typer.Option("--soft-kind", help="The kind compared with hard: soft, smooth or "
                                           "uniform.")] = "soft",
    retain_targets: RetainTargets = None, temperature: Temperature = None, smoothing: Smoothing = None,
    forget: Forget = None, config: ConfigFile = None, out: Out = None, device: DeviceOpt = None,
    epochs: Epochs = None, unlearn_epochs: UnlearnEpochs = None, unlearn_lr: UnlearnLr = None, param: Params = None,
    cache_dir: CacheDir = None, data_root: DataRoot = None, protocol: ProtocolOpt = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
    log_models: LogModels = False,
):
    """The main job: the same method with hard and with soft targets on the same seeds, paired statistics."""
    with user_errors():
        from softtargets.compare import compare as run_compare

        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, out=out, device=device, epochs=epochs, unlearn_epochs=unlearn_epochs,
                           unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir, data_root=data_root,
                           protocol=protocol)
        tracking = tracking_options(tracker, clearml_offline, project, log_models)
        summary = run_compare(cfg, parse_seeds(seeds), soft_kind, RichHooks(), tracking=tracking)
    show_comparison(summary)
    show_tracker(summary.get("tracker"))
    diverged = sum(s != "completed" for kind in summary["status"].values() for s in kind)
    if diverged:
        console.print(f"[bold yellow]warning:[/] {diverged} run(s) diverged; see comparison.md")
        raise typer.Exit(1)


def show_comparison(summary: dict) -> None:
    from softtargets.compare import format_rows, headers

    hard, soft = summary["kinds"]
    table = Table(title=f"{summary['method']} on {summary['dataset']}/{summary['architecture']}: {hard} vs {soft}, "
                        f"{len(summary['seeds'])} seeds", title_style="bold")
    for i, col in enumerate(headers(summary)):
        table.add_column(col.replace(" [95% CI]", " ± 95%"), justify="left" if i in (0, 6) else "right",
                         no_wrap=i == 0)
    for cells in format_rows(summary, compact=True):
        table.add_row(*cells)
    # a paired table is unreadable wrapped into 80 columns (pipes and CI logs default to 80): keep rows whole
    Console(width=max(out_console.width, 125)).print(table)
    out_console.print(f"written: {summary['path']}/comparison.md")


class Topic(str, Enum):
    all = "all"
    datasets = "datasets"
    architectures = "architectures"
    methods = "methods"
    targets = "targets"
    protocols = "protocols"


@app.command("list")
def list_things(topic: Annotated[Topic, typer.Argument(help="What to list.")] = Topic.all):
    """List datasets, architectures, methods (with where they use targets) and target kinds."""
    from softtargets.data.datasets import DATASETS
    from softtargets.methods import registry
    from softtargets.models import ARCHITECTURES
    from softtargets.protocols import available, load_protocol
    from softtargets.targets import TARGET_KINDS

    sections = {
        "datasets": [(d.name, d.description) for d in DATASETS.values()]
        + [("folder:PATH", "your images: PATH/<class>/*.png (or PATH/train/<class>, PATH/test/<class>)"),
           ("csv:PATH", "the original tool's index: index;Path;Class_Label;train_split;f1_split")],
        "architectures": [(a.name, a.description) for a in ARCHITECTURES.values()],
        "methods": [(m.name, m.summary, m.targets_use) for m in registry().values()],
        "targets": list(TARGET_KINDS.items()),
        "protocols": [(name, load_protocol(name).description) for name in available()],
    }
    for name, rows in sections.items():
        if topic.value not in ("all", name):
            continue
        table = Table(title=name, title_style="bold", show_lines=False)
        table.add_column("name", style="cyan")
        table.add_column("description")
        if name == "methods":
            table.add_column("targets enter")
        for row in rows:
            table.add_row(*row)
        out_console.print(table)


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
    grid_hash: Annotated[Optional[str], typer.Option("--grid-hash", hidden=True)] = None,
):
    """Run every cell of a grid: skips cells already done, records failures and goes on."""
    with user_errors():
        from softtargets.sweep import grid as grids
        from softtargets.tracking.base import TRACKER_KINDS

        if tracker not in TRACKER_KINDS:
            raise SoftTargetsError(f"unknown tracker '{tracker}': choose one of {', '.join(TRACKER_KINDS)}")
        if workers < 1:
            raise SoftTargetsError("--workers must be >= 1")
        overrides = {"out": out, "cache_dir": cache_dir, "device": device.value if device else None}
        if index is not None:  # an array task: expanded and validated on submission already
            loaded = grids.expand_grid(grid, overrides)
            if grid_hash and loaded.fingerprint() != grid_hash:
                raise SoftTargetsError(f"{grid} changed since the sweep was submitted: resubmit it")
            from softtargets.sweep.local import run_index

            outcome = run_index(loaded, index, RichHooks(), tracker)
            out_console.print(f"cell {index}: {outcome.status} {outcome.name} {outcome.error or ''}".rstrip())
            raise typer.Exit(0 if outcome.status in ("completed", "skipped") else 1)
        loaded = grids.load_grid(grid, overrides)
        if dry_run:
            show_cells(loaded)
            return
        if backend is Backend.local:
            from softtargets.sweep.local import run_local

            show_sweep(loaded, run_local(loaded, workers, RichHooks(), tracker))
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


def show_cells(grid) -> None:
    table = Table(title=f"{grid.name}: {len(grid.cells)} cells -> {grid.out}", title_style="bold")
    for col in ("#", "cell", "run folder", "done"):
        table.add_column(col)
    for cell in grid.cells:
        table.add_row(str(cell.index), cell.describe(), cell.name, "yes" if cell.done else "")
    out_console.print(table)


def show_sweep(grid, outcomes) -> None:
    from collections import Counter

    counts = Counter(o.status for o in outcomes)
    out_console.print(f"{grid.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                      + f"; run folders in {grid.out}", soft_wrap=True)
    for o in outcomes:
        if o.status == "failed":
            console.print(f"[bold red]failed:[/] cell {o.index} {o.name}: {o.error}", highlight=False, soft_wrap=True)
    out_console.print(f"report: softtargets report {grid.out}", soft_wrap=True)
    if counts["failed"] or counts["diverged"]:
        raise typer.Exit(1)


def protocol_table(report: dict) -> Table:
    """A protocol's metrics under its own names (e.g. MLS-Bench's retain_acc, unlearn_score)."""
    table = Table(title=f"protocol {report['name']}", title_style="bold")
    for col in ("metric", "softtargets metric", "original", "reference", "unlearned"):
        table.add_column(col, justify="left" if "metric" in col else "right")
    for mine, theirs in report["report"].items():
        values = [report[role].get(mine) for role in ("original", "reference", "unlearned")]
        table.add_row(mine, theirs, *("–" if v is None else f"{v:.4f}" for v in values))
    return table


class ReportFormat(str, Enum):
    md = "md"
    csv = "csv"
    json = "json"


@app.command()
def report(
    runs_dir: Annotated[str, typer.Argument(help="Folder of run folders (a sweep's --out, or any parent).")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Report folder (default RUNS_DIR/report).")]
    = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="md: print a summary; csv/json: print the raw "
                                              "table instead.")] = ReportFormat.md,
):
    """Aggregate run folders: statistics per (dataset, architecture, method), paired hard-vs-soft tests,
    plots; writes report.md and a self-contained report.html."""
    with user_errors():
        from softtargets.report.build import SUMMARY_FIELDS, build_report, table_csv, table_json

        built = build_report(runs_dir, out)
    if fmt is ReportFormat.csv:
        sys.stdout.write(table_csv(built.summary, SUMMARY_FIELDS))
    elif fmt is ReportFormat.json:
        sys.stdout.write(table_json(built))
    else:
        show_report(built)
    console.print(f"written: {built.path}/report.md and report.html")


def show_report(built) -> None:
    from softtargets.compare import _fmt, _mean_pm, _p
    from softtargets.report.render import group_title, overview

    out_console.print(overview(built))
    for group in built.groups:
        rows = [r for r in built.paired if (r["dataset"], r["architecture"], r["method"], r["setting"]) == group]
        table = Table(title=group_title(group), title_style="bold")
        for col in ("metric", "comparison", "diff ± 95%", "n", "Holm p", "r", "better"):
            table.add_column(col, justify="left" if col in ("metric", "comparison", "better") else "right",
                             no_wrap=col in ("metric", "comparison", "diff ± 95%"))
        for r in rows:
            table.add_row(r["metric"], r["comparison"], _mean_pm(r), str(r["n"]), _p(r["p_holm"]),
                          _fmt(r["rank_biserial"], 2), r["better"])
        if rows:
            out_console.print(table)
    for failure in built.failures:
        console.print(f"[bold red]failed cell:[/] {failure.get('name')}: {failure.get('error')}", highlight=False,
                      soft_wrap=True)


# ---- audits: forget-quality, relearn, lmc (softtargets/audit.py)

Seed = Annotated[Optional[int], typer.Option("--seed", "-s", help="Seed of split, initialisation and batch order.")]
RunDir = Annotated[Optional[str], typer.Option("--run", help="A run folder written by `softtargets run` "
                                               "(uses its config.yaml and model.pt).")]


def audit_tracking(tracker: str, offline: bool, project: str) -> dict:
    return tracking_options(tracker, offline, project, log_models=False)


def parse_ints(text: str, option: str) -> list[int]:
    """'0,1,5' -> [0, 1, 5]; a negative or non-integer entry is named with the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SoftTargetsError(f"{option} '{text}' must be comma-separated integers, e.g. 0,1,5,10") from None
    if not values or min(values) < 0:
        raise SoftTargetsError(f"{option} '{text}' must list integers >= 0, e.g. 0,1,5,10")
    return sorted(set(values))


def fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


@app.command("forget-quality")
def forget_quality_command(
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    softtargets_flag: Annotated[bool, typer.Option("--softtargets", help="Use soft targets (= --targets soft).")]
    = False,
    targets: Targets = None, retain_targets: RetainTargets = None, temperature: Temperature = None,
    smoothing: Smoothing = None, forget: Forget = None, seed: Seed = None, config: ConfigFile = None,
    out: Out = None, device: DeviceOpt = None, epochs: Epochs = None, unlearn_epochs: UnlearnEpochs = None,
    unlearn_lr: UnlearnLr = None, param: Params = None, cache_dir: CacheDir = None, data_root: DataRoot = None,
    n_models: Annotated[int, typer.Option("--n-models", "-n", help="Unlearned models (unlearning seeds) and "
                                          "retrained references (training seeds); the challenge used 512.")] = 32,
    compare_targets: Annotated[bool, typer.Option("--compare-targets", help="Hard and --soft-kind targets side by "
                                                  "side, on the same references and seeds.")] = False,
    soft_kind: Annotated[str, typer.Option("--soft-kind", help="With --compare-targets: soft, smooth or "
                                           "uniform.")] = "soft",
    null: Annotated[bool, typer.Option("--null/--no-null", help="Also score N more references against the N "
                                       "references: what exact retraining gets at this N.")] = True,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """The NeurIPS 2023 unlearning challenge score: per-example epsilon between N unlearned models and N
    retrained references, bucketed into F, times the retain and test accuracy ratios."""
    with user_errors():
        from softtargets.audit import forget_quality

        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                           unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir,
                           data_root=data_root, softtargets_flag=softtargets_flag)
        kinds = ("hard", soft_kind) if compare_targets else None
        result = forget_quality(cfg, n_models, kinds, null, RichHooks(),
                                audit_tracking(tracker, clearml_offline, project))
    table = Table(title=f"forgetting quality, {result['method']} on {result['dataset']}, N = {n_models}",
                  title_style="bold")
    for col in ("population", "F", "F 95% CI", "score", "RA_u/RA_r", "TA_u/TA_r", "median eps", "at cap"):
        table.add_column(col, justify="left" if col == "population" else "right")
    rows = [(k, v) for k, v in result["kinds"].items()] + ([("retrain (null)", result["null"])]
                                                            if "null" in result else [])
    for name, v in rows:
        table.add_row(name, fmt(v["F"]), f"[{fmt(v['F_ci95'][0])}, {fmt(v['F_ci95'][1])}]", fmt(v.get("score")),
                      fmt(v.get("ra_ratio")), fmt(v.get("ta_ratio")), fmt(v["epsilon_median"], 2),
                      f"{v['share_at_cap']:.0%}")
    out_console.print(table)
    if "difference" in result:
        d = result["difference"]
        out_console.print(f"F {d['of']}: {d['F']:+.4f} [{d['F_ci95'][0]:+.4f}, {d['F_ci95'][1]:+.4f}] "
                          "(paired bootstrap over forget examples)")
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))


@app.command()
def relearn(
    run_dir: RunDir = None,
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    softtargets_flag: Annotated[bool, typer.Option("--softtargets", help="Use soft targets (= --targets soft).")]
    = False,
    targets: Targets = None, retain_targets: RetainTargets = None, temperature: Temperature = None,
    smoothing: Smoothing = None, forget: Forget = None, seed: Seed = None, config: ConfigFile = None,
    out: Out = None, device: DeviceOpt = None, epochs: Epochs = None, unlearn_epochs: UnlearnEpochs = None,
    unlearn_lr: UnlearnLr = None, param: Params = None, cache_dir: CacheDir = None, data_root: DataRoot = None,
    relearn_type: Annotated[str, typer.Option("--type", help="Relearn sets, comma-separated: retain, only_forget, "
                                              "test (each plus k forget examples).")] = "retain,only_forget,test",
    k: Annotated[str, typer.Option("--k", help="Forget examples added to the relearn set, a grid.")]
    = "0,1,5,10,50,100",
    steps: Annotated[int, typer.Option("--relearn-steps", help="Fine-tuning steps of the attack.")] = 300,
    lr: Annotated[float, typer.Option("--relearn-lr", help="Adam learning rate of the attack (cosine to 0.1 lr).")]
    = 1e-5,
    batch_size: Annotated[int, typer.Option("--relearn-batch-size", help="Attack batch size.")] = 128,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between held-out forget evaluations.")]
    = 10,
    recover_fraction: Annotated[float, typer.Option("--recover-fraction", help="Recovered = held-out forget "
                                                    "accuracy >= this x the original model's.")] = 0.9,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """The relearning attack (Siddiqui et al. 2025): fine-tune the unlearned model and the retrained reference
    on a relearn set and watch held-out forget accuracy come back (or not)."""
    with user_errors():
        from softtargets.audit import relearn as run_relearn
        from softtargets.metrics.relearn import RelearnSettings

        settings = RelearnSettings(steps, lr, batch_size, eval_every, recover_fraction)
        types = tuple(t.strip() for t in relearn_type.split(",") if t.strip())
        ks = tuple(parse_ints(k, "--k"))
        tracking = audit_tracking(tracker, clearml_offline, project)
        if run_dir is not None:
            result = run_relearn(run_dir=run_dir, types=types, ks=ks, settings=settings, hooks=RichHooks(),
                                 tracking=tracking, out=out)
        else:
            cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                               retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                               forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                               unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param,
                               cache_dir=cache_dir, data_root=data_root, softtargets_flag=softtargets_flag)
            result = run_relearn(cfg, types=types, ks=ks, settings=settings, hooks=RichHooks(), tracking=tracking)
    table = Table(title=f"relearning attack on {result['method']} ({result['targets']} targets): held-out forget "
                        f"accuracy, recovered at {result['recover_target']:.3f}", title_style="bold")
    for col in ("relearn set", "k", "AUC unlearned", "AUC reference", "end unlearned", "end reference",
                "steps to recover (u / r)"):
        table.add_column(col, justify="left" if col == "relearn set" else "right")
    summary = result["summary"]
    for t, row in summary["unlearned"].items():
        for kk, u in row.items():
            r = summary["reference"][t][kk]
            steps_cell = " / ".join("never" if s is None else str(s)
                                    for s in (u["steps_to_recover"], r["steps_to_recover"]))
            table.add_row(t, kk, fmt(u["auc"]), fmt(r["auc"]), fmt(u["end"]), fmt(r["end"]), steps_cell)
    out_console.print(table)
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))


def lmc_table(barriers: dict) -> Table:
    table = Table(title="linear mode connectivity: accuracy barrier (0 = no dip)", title_style="bold")
    for col in ("path", "retain", "forget", "test"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, b in barriers.items():
        table.add_row(name, *(fmt(b[f"barrier_{s}"]) for s in ("retain", "forget", "test")))
    return table


@app.command()
def lmc(
    run_dir: Annotated[str, typer.Option("--run", help="A run folder written by `softtargets run`.")],
    out: Out = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """Linear mode connectivity of a saved run: original->unlearned and original->reference, 21 points."""
    with user_errors():
        from softtargets.audit import lmc as run_lmc

        result = run_lmc(run_dir, RichHooks(), audit_tracking(tracker, clearml_offline, project), out)
    out_console.print(lmc_table(result["lmc"]))
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))


AMNESIA_ROWS = {  # metric: (label, which way is better)
    "forget_acc": ("forgotten classes: judge accuracy", "lower (chance = 1/C)"),
    "forget_entropy": ("forgotten classes: judge entropy", "higher (max ln C)"),
    "forget_prob": ("forgotten classes: judge p(c_f)", "lower"),
    "remember_acc": ("remembered classes: judge accuracy", "higher"),
    "remember_entropy": ("remembered classes: judge entropy", "lower"),
}


def amnesia_table(result: dict) -> Table:
    table = Table(title=f"{result['name']}  [{result['status']}]", title_style="bold")
    for col in ("metric", "original", "amnesia", "better"):
        table.add_column(col, justify="right" if col in ("original", "amnesia") else "left")
    metrics = result["metrics"]
    for key, (label, better) in AMNESIA_ROWS.items():
        values = [metrics[role].get(key) for role in ("original", "amnesia")]
        table.add_row(label, *("–" if v is None else f"{v:.4f}" for v in values), better)
    return table


@app.command()
def amnesia(
    dataset: Dataset = None,
    forget: Annotated[Optional[str], typer.Option("--forget", "-f", help="Labels the CVAE must stop generating: "
                                                  "0 or 0,1 (default 0).")] = None,
    surrogate: Annotated[Optional[str], typer.Option("--surrogate", help="What the forgotten labels learn to "
                                                     "produce: noise (the seed) or soft-label (the frozen model's "
                                                     "generation for a mixture of the remembered labels).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", help="Seed of initialisation, sampling and batch "
                                                "order.")] = None,
    lam: Annotated[Optional[float], typer.Option("--lambda", "--lam", help="Weight of the EWC penalty "
                                                 "(default 100).")] = None,
    gamma: Annotated[Optional[float], typer.Option("--gamma", help="Weight of the generative replay term "
                                                   "(default 1).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Selective Amnesia steps.")] = None,
    cvae_steps: Annotated[Optional[int], typer.Option("--cvae-steps", help="CVAE training steps.")] = None,
    fisher_samples: Annotated[Optional[int], typer.Option("--fisher-samples", help="Generated samples the "
                                                          "diagonal Fisher is estimated on.")] = None,
    soft_concentration: Annotated[Optional[float], typer.Option(
        "--soft-concentration", help="soft-label: Dirichlet(alpha) mixtures instead of the uniform one.")] = None,
    samples_per_class: Annotated[Optional[int], typer.Option("--samples-per-class", help="Generations per class "
                                                             "the judge evaluates (default 1000).")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="YAML config file (sections data, cvae, "
                                                  "forgetting, judge; keys seed, device, out, cache_dir, "
                                                  "samples_per_class), e.g. configs/amnesia/full.yaml.")] = None,
    out: Out = None, device: DeviceOpt = None, cache_dir: CacheDir = None, data_root: DataRoot = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """Selective Amnesia: make a conditional VAE stop generating some labels, judged by a classifier."""
    with user_errors():
        from softtargets.generative.config import load_amnesia_config
        from softtargets.generative.experiment import run_amnesia

        cfg = load_amnesia_config(config, {
            "data.dataset": dataset, "data.forget": forget, "data.root": data_root, "seed": seed,
            "forgetting.surrogate": surrogate, "forgetting.lam": lam, "forgetting.gamma": gamma,
            "forgetting.steps": steps, "forgetting.fisher_samples": fisher_samples,
            "forgetting.soft_concentration": soft_concentration, "cvae.steps": cvae_steps,
            "samples_per_class": samples_per_class, "out": out, "cache_dir": cache_dir,
            "device": device.value if isinstance(device, Enum) else device,
        })
        result = run_amnesia(cfg, RichHooks(), tracking_options(tracker, clearml_offline, project, False))
    out_console.print(amnesia_table(result))
    out_console.print(f"judge accuracy on real test images: {result['judge']['test_acc']:.4f}")
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))
    if result["status"] != "completed":
        console.print(f"[bold yellow]warning:[/] selective amnesia {result['status']}: "
                      f"{result['amnesia']['stopped']}")
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point. `softtargets --dataset mnist ...` (no command, as in the original tool and the Docker
    image) means `softtargets run --dataset mnist ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    globals_ = [a for a in args[:2] if a in ("--debug", "--quiet", "-q")]
    rest = args[len(globals_):]
    if rest and rest[0].startswith("-") and rest[0] not in ("--help", "-h"):
        args = globals_ + ["run"] + rest
    app(args=args, prog_name="softtargets")
