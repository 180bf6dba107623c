"""What every command shares: the Typer app, consoles, progress hooks, error handling, option aliases,
config building, tracker options and the small tables more than one command prints."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from softtargets.errors import SoftTargetsError, brief
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
                # info: a cell's status, or total= when a tuned sweep's evaluation cells join (sweep/local.py)
                yield lambda n=1, **info: self.progress_bar.update(task, advance=n, total=info.get("total"))
            finally:
                self.progress_bar.remove_task(task)


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """SoftTargetsError -> one line and exit 2, or the error's own exit_code (a full disk: 3); traceback only with
    --debug."""
    try:
        yield
    except SoftTargetsError as err:
        if STATE["debug"]:
            raise
        fail(str(err), getattr(err, "exit_code", 2))
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
                                                "losses: hard, soft, smooth, uniform, pseudo, masked, masked_pseudo, "
                                                "random (`softtargets list targets`; default: the method's, hard for "
                                                "most, masked for delete).")]
RetainTargets = Annotated[Optional[str], typer.Option("--retain-targets", help="Target kind for the retain losses "
                                                      "(default: same as --targets).")]
Temperature = Annotated[Optional[float], typer.Option("--temperature", "-T", help="Soft-target temperature T.")]
Smoothing = Annotated[Optional[float], typer.Option(
    "--smoothing", help="a of 'smooth': (1 - a) onehot + a / C, any a <= 1. a < 0 is negative label smoothing "
    "(UGradSL): such targets are not distributions, so methods with a KL to them refuse it.")]
Forget = Annotated[Optional[str], typer.Option(
    "--forget", "-f", help="Forget spec: class:K[,K], class:K:F[:high_mem|low_mem], random:F[:high_mem|low_mem], "
                           "file:PATH (indices, image paths or a .npy), dataset (a CSV's f1_split rows or a "
                           "folder's `3e` folders) (default random:0.1).")]
ConfigFile = Annotated[Optional[list[str]], typer.Option(
    "--config", "-c", help="YAML config file (sections data, training, unlearning, targets; keys seed, device, "
                           "out); the original tool's configs/training and configs/unlearn files too. Repeat to "
                           "layer several, later ones winning.")]
Memorisation = Annotated[Optional[str], typer.Option(
    "--memorisation", help="Memorisation scores for :high_mem/:low_mem selection: a .npy (one per train image) or "
                           "a C-score .npz; default: estimated with this recipe's models on held-out halves.")]
Out = Annotated[Optional[str], typer.Option("--out", "-o", help="Output folder for run folders (default runs/).")]
DeviceOpt = Annotated[Optional[Device], typer.Option("--device", help="auto, cpu or cuda.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Training epochs of original and reference.")]
UnlearnEpochs = Annotated[Optional[int], typer.Option("--unlearn-epochs", "--unlearn_epochs",
                                                      help="Unlearning epochs.")]
UnlearnLr = Annotated[Optional[float], typer.Option("--unlearn-lr", help="Unlearning learning rate.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="CPU threads per run (default 1). Results are "
                                                "identical for the same value; it is part of the run name.")]
Workers = Annotated[int, typer.Option("--workers", "-w", help="Cells in flight at once (worker processes; each "
                                      "uses --threads CPU threads). Results are identical for any value.")]
Deterministic = Annotated[Optional[bool], typer.Option(
    "--deterministic/--no-deterministic", help="CUDA: deterministic kernels, the same bits run to run (default on; "
    "off is faster). No effect on CPU.")]
FastCuda = Annotated[bool, typer.Option(
    "--fast-cuda", help="CUDA: training steps as CUDA graphs, batch order drawn on the GPU, BatchNorm models "
    "stacked (not yet run on a GPU; off by default). No effect on CPU.")]
Floor = Annotated[bool, typer.Option(
    "--floor", help="Also retrain a second reference (same retain set, seed + 1) and report its distance to the "
    "reference: how close exact retraining itself gets (metrics.floor).")]
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


def build_config(config: list[str] | str | None, *, dataset=None, method=None, architecture=None, targets=None,
                 retain_targets=None, temperature=None, smoothing=None, forget=None, seed=None, out=None,
                 device=None, epochs=None, unlearn_epochs=None, unlearn_lr=None, params=None, cache_dir=None,
                 data_root=None, softtargets_flag=False, protocol=None, threads=None, memorisation=None,
                 deterministic=None, fast_cuda=None, floor=None):
    from softtargets.config import load_config, parse_value

    if softtargets_flag and targets not in (None, "soft"):
        raise SoftTargetsError(f"--softtargets conflicts with --targets {targets}: give only one")
    overrides = {
        "data.dataset": dataset, "data.forget": forget, "data.root": data_root, "data.memorisation": memorisation,
        "training.architecture": architecture, "training.epochs": epochs,
        "unlearning.method": method, "unlearning.epochs": unlearn_epochs, "unlearning.lr": unlearn_lr,
        "targets.kind": "soft" if softtargets_flag else targets, "targets.retain_kind": retain_targets,
        "targets.temperature": temperature, "targets.smoothing": smoothing,
        "seed": seed, "out": out, "device": device.value if isinstance(device, Enum) else device,
        "cache_dir": cache_dir, "protocol": protocol, "threads": threads, "deterministic": deterministic,
        "fast_cuda": fast_cuda or None,  # the flag can only turn it on; off leaves the config file's value
        "floor": floor or None,
    }
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SoftTargetsError(f"--param {brief(item)} must look like KEY=VALUE, e.g. --param alpha=0.5")
        overrides[f"unlearning.params.{key.strip()}"] = parse_value(value.strip(), f"--param {key.strip()}")
    return load_config(config, overrides)


def fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def lmc_table(barriers: dict) -> Table:
    table = Table(title="linear mode connectivity: accuracy barrier (0 = no dip)", title_style="bold")
    for col in ("path", "retain", "forget", "test"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, b in barriers.items():
        table.add_row(name, *(fmt(b[f"barrier_{s}"]) for s in ("retain", "forget", "test")))
    return table
