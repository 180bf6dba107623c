"""The audits of softtargets/audit.py: `forget-quality`, `relearn` and `lmc`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from softtargets.cli.common import (
    Architecture, CacheDir, ClearmlOffline, ConfigFile, DataRoot, Dataset, DeviceOpt, Epochs, Forget, Memorisation,
    Method, Out, Params, ProjectOpt, ProtocolOpt, RetainTargets, RichHooks, Smoothing, Targets, Temperature,
    TrackerOpt, UnlearnEpochs, UnlearnLr, Workers, app, build_config, fmt, lmc_table, out_console, show_tracker,
    tracking_options, user_errors,
)
from softtargets.errors import SoftTargetsError


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


@app.command("forget-quality")
def forget_quality_command(
    dataset: Dataset = None, method: Method = None, architecture: Architecture = None,
    softtargets_flag: Annotated[bool, typer.Option("--softtargets", help="Use soft targets (= --targets soft).")]
    = False,
    targets: Targets = None, retain_targets: RetainTargets = None, temperature: Temperature = None,
    smoothing: Smoothing = None, forget: Forget = None, seed: Seed = None, config: ConfigFile = None,
    out: Out = None, device: DeviceOpt = None, epochs: Epochs = None, unlearn_epochs: UnlearnEpochs = None,
    unlearn_lr: UnlearnLr = None, param: Params = None, cache_dir: CacheDir = None, data_root: DataRoot = None,
    protocol: ProtocolOpt = None,
    n_models: Annotated[int, typer.Option("--n-models", "-n", help="Unlearned models (unlearning seeds) and "
                                          "retrained references (training seeds); the challenge used 512.")] = 32,
    compare_targets: Annotated[bool, typer.Option("--compare-targets", help="Hard and --soft-kind targets side by "
                                                  "side, on the same references and seeds.")] = False,
    soft_kind: Annotated[str, typer.Option("--soft-kind", help="With --compare-targets: soft, smooth or "
                                           "uniform.")] = "soft",
    null: Annotated[bool, typer.Option("--null/--no-null", help="Also score N more references against the N "
                                       "references: what exact retraining gets at this N.")] = True,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
    workers: Workers = 1,
):
    """The NeurIPS 2023 unlearning challenge score: per-example epsilon between N unlearned models and N
    retrained references, bucketed into F, times the retain and test accuracy ratios."""
    with user_errors():
        cfg = build_config(config, dataset=dataset, method=method, architecture=architecture, targets=targets,
                           retain_targets=retain_targets, temperature=temperature, smoothing=smoothing,
                           forget=forget, seed=seed, out=out, device=device, epochs=epochs,
                           unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr, params=param, cache_dir=cache_dir,
                           data_root=data_root, softtargets_flag=softtargets_flag, protocol=protocol)
        kinds = ("hard", soft_kind) if compare_targets else None
        tracking = audit_tracking(tracker, clearml_offline, project)
        from softtargets.scheduler import check_workers

        check_workers(workers)
        from softtargets.audit import forget_quality  # imports torch: only once the arguments are valid

        result = forget_quality(cfg, n_models, kinds, null, RichHooks(), tracking, workers=workers)
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
    protocol: ProtocolOpt = None,
    memorisation: Memorisation = None,
    relearn_type: Annotated[str, typer.Option("--type", help="Relearn sets, comma-separated: retain, only_forget, "
                                              "test, test+retain_cls, corrupted_test, corrupted_test+retain_cls "
                                              "(each plus k forget examples).")] = "retain,only_forget,test",
    k: Annotated[Optional[str], typer.Option("--k", help="Forget examples added to the relearn set, a grid "
                                             "(default: the paper's 0,1,5,10,50,100 up to the pool, the first 20% "
                                             "of the forget set; no 0 for only_forget).")] = None,
    relearn_epochs: Annotated[int, typer.Option("--relearn-epochs", help="Attack length in epochs of the whole "
                                                "train set, as the paper counts them.")] = 10,
    steps: Annotated[Optional[int], typer.Option("--relearn-steps", help="Attack length in steps (overrides "
                                                 "--relearn-epochs).")] = None,
    lr: Annotated[float, typer.Option("--relearn-lr", help="Adam learning rate of the attack (cosine to 0.1 lr).")]
    = 1e-5,
    batch_size: Annotated[int, typer.Option("--relearn-batch-size", help="Attack batch size.")] = 128,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between held-out forget evaluations.")]
    = 10,
    recover_fraction: Annotated[float, typer.Option("--recover-fraction", help="Recovered = held-out forget "
                                                    "accuracy >= this x the original model's.")] = 0.9,
    select: Annotated[str, typer.Option("--select", help="Order the relearn examples are taken in: random, low_mem "
                                        "or high_mem (most memorised first).")] = "random",
    corrupted: Annotated[Optional[str], typer.Option("--corrupted", help="CIFAR-10-C's jpeg_compression.npy for "
                                                     "the corrupted_test sets (default: JPEG quality 40 with "
                                                     "PIL, as CIFAR-10-C's severity 5).")] = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """The relearning attack (Siddiqui et al. 2025): fine-tune the unlearned model and the retrained reference
    on a relearn set and watch held-out forget accuracy come back (or not)."""
    with user_errors():
        types = tuple(t.strip() for t in relearn_type.split(",") if t.strip())
        ks = None if k is None else tuple(parse_ints(k, "--k"))
        tracking = audit_tracking(tracker, clearml_offline, project)
        cfg = None if run_dir is not None else build_config(
            config, dataset=dataset, method=method, architecture=architecture, targets=targets,
            retain_targets=retain_targets, temperature=temperature, smoothing=smoothing, forget=forget, seed=seed,
            out=out, device=device, epochs=epochs, unlearn_epochs=unlearn_epochs, unlearn_lr=unlearn_lr,
            params=param, cache_dir=cache_dir, data_root=data_root, softtargets_flag=softtargets_flag,
            memorisation=memorisation, protocol=protocol)
        from softtargets.audit import relearn as run_relearn  # imports torch: only once the arguments are valid
        from softtargets.metrics.relearn import RelearnSettings

        settings = RelearnSettings(steps=steps, lr=lr, batch_size=batch_size, eval_every=eval_every,
                                   recover_fraction=recover_fraction, epochs=relearn_epochs, selection=select,
                                   corrupted=corrupted)
        if cfg is None:
            result = run_relearn(run_dir=run_dir, types=types, ks=ks, settings=settings, hooks=RichHooks(),
                                 tracking=tracking, out=out)
        else:
            result = run_relearn(cfg, types=types, ks=ks, settings=settings, hooks=RichHooks(), tracking=tracking)
    table = Table(title=f"relearning attack on {result['method']} ({result['targets']} targets): held-out forget "
                        f"accuracy of {result['held_out_forget']} images; recovered at {result['recover_target']:.3f} "
                        f"({result['settings']['recover_fraction']:g} x original's) or past the reference's peak",
                  title_style="bold")
    for col in ("relearn set", "k", "AUC unlearned", "AUC reference", "end unlearned", "end reference",
                "steps to recover (u / r)", "steps past reference peak (u)"):
        table.add_column(col, justify="left" if col == "relearn set" else "right")
    summary = result["summary"]

    def steps(value: int | None) -> str:
        return "never" if value is None else str(value)

    for t, row in summary["unlearned"].items():
        for kk, u in row.items():
            r = summary["reference"][t][kk]
            table.add_row(t, kk, fmt(u["auc"]), fmt(r["auc"]), fmt(u["end"]), fmt(r["end"]),
                          f"{steps(u['steps_to_recover'])} / {steps(r['steps_to_recover'])}",
                          steps(u["steps_past_reference"]))
    Console(width=max(out_console.width, 140)).print(table)  # eight columns stay readable in pipes and CI logs
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))


@app.command()
def lmc(
    run_dir: Annotated[str, typer.Option("--run", help="A run folder written by `softtargets run`.")],
    out: Out = None,
    tracker: TrackerOpt = "auto", clearml_offline: ClearmlOffline = False, project: ProjectOpt = "softtargets",
):
    """Linear mode connectivity of a saved run: original->unlearned and original->reference, 21 points."""
    with user_errors():
        tracking = audit_tracking(tracker, clearml_offline, project)
        from softtargets.audit import lmc as run_lmc  # imports torch: only once the arguments are valid

        result = run_lmc(run_dir, RichHooks(), tracking, out)
    out_console.print(lmc_table(result["lmc"]))
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))
