"""`softtargets compare`: the same method with hard and with soft targets on the same seeds."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from softtargets.cli.common import (
    Architecture, CacheDir, ClearmlOffline, ConfigFile, DataRoot, Dataset, Deterministic, DeviceOpt, Epochs, FastCuda,
    Floor, Forget, LogModels, Memorisation, Method, Out, Params, ProjectOpt, ProtocolOpt, RetainTargets, RichHooks,
    Smoothing, Temperature, Threads, TrackerOpt, UnlearnEpochs, UnlearnLr, Workers, app, build_config, console,
    out_console, show_tracker, tracking_options, user_errors,
)
from softtargets.errors import SoftTargetsError, brief

MAX_SEEDS = 10_000  # two runs per seed: more is a typo, not a study


def parse_seeds(text: str) -> list[int]:
    """'5' -> [0..4]; '0,3,7' -> [0, 3, 7]; at most MAX_SEEDS seeds, each a valid seed (checked before any list
    is made)."""
    from softtargets.config import check_seed

    try:
        parts = [int(s) for s in text.split(",") if s.strip()] if "," in text else None
        count = None if parts is not None else int(text)
    except ValueError:
        raise SoftTargetsError(f"--seeds {brief(text)} must be a count (5) or a list (0,3,7)") from None
    if not 1 <= (count if count is not None else len(parts)) <= MAX_SEEDS:
        raise SoftTargetsError(f"--seeds {brief(text)} must give 1 to {MAX_SEEDS:,} seeds")
    seeds = list(range(count)) if count is not None else parts
    if len(set(seeds)) != len(seeds):
        raise SoftTargetsError(f"--seeds {brief(text)} repeats a seed: give distinct seeds")
    for seed in seeds:
        check_seed(seed, "--seeds: each seed")
    return seeds


def parse_tune(items: list[str] | None, seeds_text: str, max_test_drop: float | None = None) -> dict | None:
    """--tune KEY=V1,V2 (repeated), --tune-seeds and --tune-max-test-drop into compare()'s tune mapping; None
    without --tune."""
    from softtargets.config import coerce_setting, parse_value
    from softtargets.sweep.grid import axis_key
    from softtargets.tuning import check_test_drop

    if not items:
        if max_test_drop is not None:
            raise SoftTargetsError("--tune-max-test-drop needs --tune (the settings to choose among), e.g. --tune "
                                   "unlearning.lr=1e-4,1e-3")
        return None
    params = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise SoftTargetsError(f"--tune {brief(item)} must look like KEY=V1,V2, e.g. --tune unlearning.lr=1e-4,1e-3")
        dotted = axis_key(key.strip(), "--tune")
        params[dotted] = [coerce_setting(dotted, parse_value(v.strip(), f"--tune {key.strip()}"), "--tune")
                          for v in values.split(",") if v.strip()]
    seeds = parse_seeds(seeds_text) if "," in seeds_text else [1000 + s for s in parse_seeds(seeds_text)]
    return {"params": params, "seeds": seeds,
            "max_test_drop": check_test_drop(max_test_drop, "--tune-max-test-drop")}


@app.command()
def compare(
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Number of seeds (0..N-1) or a list like 0,3,7. The "
                                       "default, 10, is the fewest whose paired test can reach p < 0.05 "
                                       "(and 9 for Holm's correction over the secondary metrics).")] = "10",
    soft_kind: Annotated[str, typer.Option("--soft-kind", help="The kind compared with the base kind: soft, smooth, "
                                           "uniform, pseudo, masked, masked_pseudo, random.")] = "soft",
    base_kind: Annotated[str, typer.Option("--base-kind", help="The kind it is compared against (default hard; "
                                           "delete, which refuses hard: masked_pseudo or random).")] = "hard",
    tune: Annotated[Optional[list[str]], typer.Option("--tune", help="Tune a setting per kind: KEY=V1,V2,... (a "
                                                      "config key such as unlearning.lr or targets.smoothing; "
                                                      "repeat for a grid). Each kind's best on --tune-seeds is used.")]
    = None,
    tune_seeds: Annotated[str, typer.Option("--tune-seeds", help="Tuning seeds (a count from 1000 or a list), "
                                            "disjoint from --seeds.")] = "1000,1001,1002",
    tune_max_test_drop: Annotated[Optional[float], typer.Option(
        "--tune-max-test-drop", help="Only candidates whose mean test accuracy on the kept classes over the tuning "
        "seeds is at most this far below the reference's may be chosen (e.g. 0.05).")] = None,
    retain_targets: RetainTargets = None, temperature: Temperature = None, smoothing: Smoothing = None,
    forget: Forget = None, config: ConfigFile = None, out: Out = None, device: DeviceOpt = None,
    epochs: Epochs = None, unlearn_epochs: UnlearnEpochs = None, unlearn_lr: UnlearnLr = None, param: Params = None, threads: Threads = None,
    cache_dir: CacheDir = None, data_root: DataRoot = None, protocol: ProtocolOpt = None,
    memorisation: Memorisation = None, floor: Floor = False,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
    log_models: LogModels = False, workers: Workers = 1, deterministic: Deterministic = None,
    fast_cuda: FastCuda = False,
):
    """The main job: the same method with hard and with soft targets on the same seeds, paired statistics."""
    with user_errors():
        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, out=out, device=device, epochs=epochs, unlearn_epochs=unlearn_epochs,
                           unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir, data_root=data_root,
                           protocol=protocol, threads=threads, memorisation=memorisation, deterministic=deterministic,
                           fast_cuda=fast_cuda, floor=floor)
        tracking = tracking_options(tracker, clearml_offline, project, log_models)
        seed_list = parse_seeds(seeds)
        tuning = parse_tune(tune, tune_seeds, tune_max_test_drop)
        from softtargets.scheduler import check_workers

        check_workers(workers)
        from softtargets.compare import compare as run_compare  # imports torch: only once the arguments are valid

        summary = run_compare(cfg, seed_list, soft_kind, RichHooks(), tracking=tracking, workers=workers,
                              base_kind=base_kind, tune=tuning)
    show_comparison(summary)
    show_tracker(summary.get("tracker"))
    diverged = sum(s != "completed" for kind in summary["status"].values() for s in kind)
    if diverged:
        console.print(f"[bold yellow]warning:[/] {diverged} run(s) diverged; see comparison.md")
        raise typer.Exit(1)


def show_comparison(summary: dict) -> None:
    from softtargets.compare import labels_only_note
    from softtargets.report.comparison import cells, families_line, headers

    note = labels_only_note(summary)
    if note:  # the arms are the same computation: no table of zeros
        out_console.print(note)
        out_console.print(f"written: {summary['path']}/comparison.md")
        return
    kinds = tuple(summary["kinds"])
    comparison = summary["comparison"]
    table = Table(title=f"{summary['method']} on {summary['dataset']}/{summary['architecture']}: {kinds[0]} vs "
                        f"{kinds[1]}, {len(summary['seeds'])} seeds", title_style="bold")
    for i, col in enumerate(headers(kinds, compact=True)):
        table.add_column(col, justify="left" if i in (0, 1, 9) else "right", no_wrap=i in (0, 5))
    for row in cells(comparison, kinds, compact=True):
        table.add_row(*row)
    # a paired table is unreadable wrapped into 80 columns (pipes and CI logs default to 80): keep rows whole
    wide = Console(width=max(out_console.width, 170))
    wide.print(f"[bold]{comparison['answer']}[/]", highlight=False)
    for note in comparison["notes"]:
        wide.print(f"[yellow]note:[/] {note}", highlight=False)
    wide.print(table)
    wide.print(families_line(comparison), highlight=False)
    out_console.print(f"written: {summary['path']}/comparison.md")
