"""`softtargets amnesia`: Selective Amnesia on a conditional VAE, judged by a classifier."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from softtargets.cli.common import (
    CacheDir, ClearmlOffline, DataRoot, Dataset, DeviceOpt, Out, ProjectOpt, RichHooks, TrackerOpt, app, console,
    out_console, show_tracker, tracking_options, user_errors,
)


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

        cfg = load_amnesia_config(config, {
            "data.dataset": dataset, "data.forget": forget, "data.root": data_root, "seed": seed,
            "forgetting.surrogate": surrogate, "forgetting.lam": lam, "forgetting.gamma": gamma,
            "forgetting.steps": steps, "forgetting.fisher_samples": fisher_samples,
            "forgetting.soft_concentration": soft_concentration, "cvae.steps": cvae_steps,
            "samples_per_class": samples_per_class, "out": out, "cache_dir": cache_dir,
            "device": device.value if isinstance(device, Enum) else device,
        })
        tracking = tracking_options(tracker, clearml_offline, project, False)
        from softtargets.generative.experiment import run_amnesia  # imports torch: only once the arguments are valid

        result = run_amnesia(cfg, RichHooks(), tracking)
    out_console.print(amnesia_table(result))
    out_console.print(f"judge accuracy on real test images: {result['judge']['test_acc']:.4f}")
    out_console.print(f"run folder: {result['path']}")
    show_tracker(result.get("tracker"))
    if result["status"] != "completed":
        console.print(f"[bold yellow]warning:[/] selective amnesia {result['status']}: "
                      f"{result['amnesia']['stopped']}")
        raise typer.Exit(1)
