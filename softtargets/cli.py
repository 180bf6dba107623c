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
    "--forget", "-f", help="Forget spec: class:K[,K], class:K:F, random:F, file:PATH (default random:0.1).")]
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


def build_config(config: str | None, *, dataset=None, method=None, architecture=None, targets=None,
                 retain_targets=None, temperature=None, smoothing=None, forget=None, seed=None, out=None,
                 device=None, epochs=None, unlearn_epochs=None, unlearn_lr=None, params=None, cache_dir=None,
                 data_root=None, softtargets_flag=False):
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
        "cache_dir": cache_dir,
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
    cache_dir: CacheDir = None, data_root: DataRoot = None,
):
    """Run one unlearning experiment and measure it against the retrained reference."""
    with user_errors():
        from softtargets.experiment import run_experiment

        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                           unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir,
                           data_root=data_root, softtargets_flag=softtargets_flag)
        result = run_experiment(cfg, RichHooks())
    out_console.print(metrics_table(result))
    out_console.print(f"run folder: {result['path']}")
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
    cache_dir: CacheDir = None, data_root: DataRoot = None,
):
    """The main job: the same method with hard and with soft targets on the same seeds, paired statistics."""
    with user_errors():
        from softtargets.compare import compare as run_compare

        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, out=out, device=device, epochs=epochs, unlearn_epochs=unlearn_epochs,
                           unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir, data_root=data_root)
        summary = run_compare(cfg, parse_seeds(seeds), soft_kind, RichHooks())
    show_comparison(summary)
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
    out_console.print(table)
    out_console.print(f"written: {summary['path']}/comparison.md")


class Topic(str, Enum):
    all = "all"
    datasets = "datasets"
    architectures = "architectures"
    methods = "methods"
    targets = "targets"


@app.command("list")
def list_things(topic: Annotated[Topic, typer.Argument(help="What to list.")] = Topic.all):
    """List datasets, architectures, methods (with where they use targets) and target kinds."""
    from softtargets.data.datasets import DATASETS
    from softtargets.methods import registry
    from softtargets.models import ARCHITECTURES
    from softtargets.targets import TARGET_KINDS

    sections = {
        "datasets": [(d.name, d.description) for d in DATASETS.values()],
        "architectures": [(a.name, a.description) for a in ARCHITECTURES.values()],
        "methods": [(m.name, m.summary, m.targets_use) for m in registry().values()],
        "targets": list(TARGET_KINDS.items()),
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


def main(argv: list[str] | None = None) -> None:
    """Entry point. `softtargets --dataset mnist ...` (no command, as in the original tool and the Docker
    image) means `softtargets run --dataset mnist ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    globals_ = [a for a in args[:2] if a in ("--debug", "--quiet", "-q")]
    rest = args[len(globals_):]
    if rest and rest[0].startswith("-") and rest[0] not in ("--help", "-h"):
        args = globals_ + ["run"] + rest
    app(args=args, prog_name="softtargets")
