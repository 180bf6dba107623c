"""`softtargets run`: one unlearning experiment measured against the retrained reference."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from softtargets.cli.common import (
    Architecture, CacheDir, ClearmlOffline, ConfigFile, DataRoot, Dataset, Deterministic, DeviceOpt, Epochs, FastCuda,
    Floor, Forget, LogModels, Memorisation, Method, Out, Params, ProjectOpt, ProtocolOpt, RetainTargets, RichHooks,
    Smoothing, Targets, Temperature, Threads, TrackerOpt, UnlearnEpochs, UnlearnLr, app, build_config, console,
    lmc_table, out_console, show_tracker, tracking_options, user_errors,
)


def metrics_table(result: dict) -> Table:
    from softtargets.metrics.headline import HEADLINE

    table = Table(title=f"{result['name']}  [{result['status']}]", title_style="bold")
    metrics = result["metrics"]
    roles = ("original", "reference", "unlearned", "floor") if "floor" in metrics else ("original", "reference",
                                                                                      "unlearned")
    for col in ("metric", *roles, "better"):
        table.add_column(col, justify="left" if col in ("metric", "better") else "right")
    for key, (_, better) in HEADLINE.items():
        values = [metrics[r].get(key) for r in roles]
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
    unlearn_epochs: UnlearnEpochs = None, unlearn_lr: UnlearnLr = None, param: Params = None, threads: Threads = None,
    cache_dir: CacheDir = None, data_root: DataRoot = None, protocol: ProtocolOpt = None,
    memorisation: Memorisation = None, floor: Floor = False,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
    log_models: LogModels = False, deterministic: Deterministic = None, fast_cuda: FastCuda = False,
    lmc: Annotated[bool, typer.Option("--lmc", help="Also linear mode connectivity: original->unlearned and "
                                      "original->reference, 21 points (lmc.json, lmc.png).")] = False,
):
    """Run one unlearning experiment and measure it against the retrained reference."""
    with user_errors():
        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                           unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir,
                           data_root=data_root, softtargets_flag=softtargets_flag, protocol=protocol, threads=threads,
                           memorisation=memorisation, deterministic=deterministic, fast_cuda=fast_cuda, floor=floor)
        tracking = tracking_options(tracker, clearml_offline, project, log_models)
        from softtargets.tracking.runs import run_tracked  # imports torch: only once the arguments are valid

        extras = ()
        if lmc:  # the audits import matplotlib and scipy.stats: a plain run does not
            from softtargets.audit import lmc_extra

            extras = (lmc_extra,)
        result = run_tracked(cfg, RichHooks(), tracking=tracking, extras=extras)
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


def protocol_table(report: dict) -> Table:
    """A protocol's metrics under its own names (e.g. MLS-Bench's retain_acc, unlearn_score)."""
    table = Table(title=f"protocol {report['name']}", title_style="bold")
    for col in ("metric", "softtargets metric", "original", "reference", "unlearned"):
        table.add_column(col, justify="left" if "metric" in col else "right")
    for mine, theirs in report["report"].items():
        values = [report[role].get(mine) for role in ("original", "reference", "unlearned")]
        table.add_row(mine, theirs, *("–" if v is None else f"{v:.4f}" for v in values))
    return table
