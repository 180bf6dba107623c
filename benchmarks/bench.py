"""softtargets benchmark: one run on this machine, written to benchmarks/results.json and docs/benchmarks.md.

    python benchmarks/bench.py          # the original tool's recipe: 10 training epochs, 5 unlearning epochs
                                        # (1 h 23 min on a quiet 2-core machine; make bench)
    python benchmarks/bench.py --quick  # 1 training epoch, 1 unlearning epoch, where fixed costs dominate
    python benchmarks/bench.py --quick --subset 0.01 --out /tmp/r.json --doc /tmp/b.md  # the code path, ~2 min

Sections (issue "Performance"):
  1. training throughput of mlp and cnn at the recipe's batch size (32), as samples/s and as a fraction of the
     fp32 matmul peak measured in the same run (FLOPs of forward+backward counted by torch's FlopCounterMode);
  2. one run (fashion_mnist, graddiff, soft) against the naive pipeline (benchmarks/naive_pipeline.py), and the
     4 cells hard/soft x gradasc/graddiff (naive: retrains per cell; softtargets: the model cache);
  3. K = 1, 4, 8, 16 seeds: seed-parallel vs sequential training time;
  4. peak RSS of a fashion_mnist cnn run (a separate process, softtargets' default of 1 thread).
Everything in this process, both pipelines included, runs on --threads CPU threads (default: all cores, as the
original tool does); softtargets' own default is 1 thread per run, set by every run_experiment call, which is
why ours_one_run passes the count explicitly.
The generated part of docs/benchmarks.md ends at KEPT; the analysis written below it is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RECIPE = {"epochs": 10, "unlearn_epochs": 5}  # the original tool's (main.py defaults); --quick: 1 and 1

from benchmarks import naive_pipeline  # noqa: E402
from softtargets.config import load_config  # noqa: E402
from softtargets.data.batches import DeviceData, SplitData  # noqa: E402
from softtargets.data.datasets import load_dataset  # noqa: E402
from softtargets.experiment import run_experiment  # noqa: E402
from softtargets.hooks import Hooks  # noqa: E402
from softtargets.models import build_model  # noqa: E402
from softtargets.training.parallel import Job, fit_stacked, init_models  # noqa: E402
from softtargets.training.fit import fit, use_threads  # noqa: E402


KEPT = "<!-- everything below is kept when benchmarks/bench.py rewrites this file -->"


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Best-of fp32 GEMM rate: the machine's practical matmul peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t))
    return best / 1e9


def train_step_flops(arch: str, shape, batch: int) -> int:
    model = build_model(arch, shape, 10)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(torch.randn(batch, *shape)), torch.randint(0, 10, (batch,))).backward()
    return counter.get_total_flops()


def throughput(bundle, arch: str, peak: float, steps: int = 600) -> dict:
    """Samples/s of the real training loop (training.fit) on in-memory data, and the fraction of peak."""
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 1})
    data = DeviceData(bundle, torch.device("cpu"))
    batch = cfg.training.batch_size
    n = min(steps * batch, len(data.train_y))
    split = SplitData(data, data.train_x[:n], data.train_y[:n])
    torch.manual_seed(0)
    model = build_model(arch, bundle.input_shape, bundle.num_classes)
    warm = SplitData(data, data.train_x[:640], data.train_y[:640])
    fit(model, warm, cfg.training, 0, Hooks(), "warmup")
    t = time.perf_counter()
    fit(model, split, cfg.training, 0, Hooks(), "bench")
    seconds = time.perf_counter() - t
    flops = train_step_flops(arch, bundle.input_shape, batch) / batch * n
    return {"samples_per_s": n / seconds, "gflops": flops / seconds / 1e9, "fraction_of_peak": flops / seconds / 1e9 / peak}


def ours_one_run(arch: str, method: str, kind: str, epochs: int, unlearn_epochs: int, cache: str, out: str,
                 subset: float | None = None) -> dict:
    """One softtargets run at the benchmark's thread count (run_experiment sets the config's, default 1)."""
    cfg = load_config(overrides={"data.dataset": "fashion_mnist", "data.root": str(ROOT / "data"),
                                 "data.subset": subset, "training.architecture": arch,
                                 "unlearning.method": method, "targets.kind": kind, "training.epochs": epochs,
                                 "unlearning.epochs": unlearn_epochs, "cache_dir": cache, "out": out,
                                 "device": "cpu", "threads": torch.get_num_threads()})
    t = time.perf_counter()
    result = run_experiment(cfg)
    return {"total_s": time.perf_counter() - t, "test_acc": result["metrics"]["unlearned"]["acc_test"],
            "threads": torch.get_num_threads(),
            **{k: v for k, v in result["timings"].items() if k.endswith("_s")}}


def run_vs_naive(arch: str, epochs: int, unlearn_epochs: int, png_index: Path | None, previous: dict | None = None,
                 subset: float | None = None) -> dict:
    """previous: this architecture's entry of an earlier results.json whose naive numbers are reused (the naive
    pipeline's code and settings unchanged), so only softtargets is measured again."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = ours_one_run(arch, "graddiff", "soft", epochs, unlearn_epochs, f"{tmp}/cache", f"{tmp}/runs", subset)
        cells = [(m, k) for m in ("gradasc", "graddiff") for k in ("hard", "soft")]
        t = time.perf_counter()
        for method, kind in cells:  # fresh cache: the first cell trains, the other three reuse
            ours_one_run(arch, method, kind, epochs, unlearn_epochs, f"{tmp}/cache4", f"{tmp}/runs4", subset)
        ours_group = time.perf_counter() - t
    if previous:
        naive, naive_group = previous["naive"], previous["naive_group_s"]
    else:
        naive = {**naive_pipeline.run(png_index, arch, "graddiff", True, epochs, unlearn_epochs),
                 "threads": torch.get_num_threads()}
        naive_gradasc_hard = naive_pipeline.run(png_index, arch, "gradasc", False, 0, unlearn_epochs)
        # The naive group retrains both models in every cell; soft cells also rebuild targets one by one.
        training = naive["original_train_s"] + naive["reference_train_s"]
        naive_group = (4 * (training + naive["eval_s"]) + 2 * naive["unlearn_s"]
                       + 2 * naive_gradasc_hard["unlearn_s"]
                       + naive["targets_s"] + naive["targets_s"] * 0.1)  # gradasc soft: forget-set targets only
    return {"ours": ours, "naive": naive, "one_run_speedup": naive["total_s"] / ours["total_s"],
            "ours_group_s": ours_group, "naive_group_s": naive_group, "group_speedup": naive_group / ours_group,
            "naive_group_note": "naive 4-cell time composed from its measured phases (training and evaluation x4, "
                                "unlearning of each method x2, soft targets for the soft cells)"}


def seed_parallel(bundle, arch: str, ks=(1, 4, 8, 16), n: int = 6400) -> list[dict]:
    """One epoch over n images for K models: stacked vs one after another."""
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 1})
    data = DeviceData(bundle, torch.device("cpu"))
    n = min(n, len(data.train_y))
    split = SplitData(data, data.train_x[:n], data.train_y[:n])
    rows = []
    for k in ks:
        jobs = [Job("original", split, s, {}) for s in range(k)]
        models = init_models(jobs, cfg.training, data.device)
        t = time.perf_counter()
        for seed, model in enumerate(models):
            fit(model, split, cfg.training, seed, Hooks(), "seq")
        sequential = time.perf_counter() - t
        models = init_models(jobs, cfg.training, data.device)
        t = time.perf_counter()
        fit_stacked(models, [split] * k, list(range(k)), cfg.training, Hooks(), "par")
        stacked = time.perf_counter() - t
        rows.append({"k": k, "images": n, "sequential_s": sequential, "parallel_s": stacked,
                     "speedup": sequential / stacked})
    return rows


def peak_rss_mb(epochs: int, unlearn_epochs: int, subset: float | None = None) -> float:
    """ru_maxrss of a fresh `softtargets run` process (the largest child so far: call it before any other
    child process, e.g. the naive pipeline's, could exceed it)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "subset.yaml"
        config.write_text(f"data:\n  subset: {subset}\n" if subset else "{}\n")
        subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "run", "--dataset", "fashion_mnist",
                        "--architecture", "cnn", "--mu_algo", "graddiff", "--softtargets", "--epochs", str(epochs),
                        "--unlearn-epochs", str(unlearn_epochs), "--config", str(config), "--data-root",
                        str(ROOT / "data"), "--out", f"{tmp}/runs", "--cache-dir", f"{tmp}/cache", "--device", "cpu"],
                       check=True, capture_output=True, cwd=ROOT)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def markdown(results: dict) -> str:
    r = results
    recipe = "the original tool's recipe" if (r["epochs"], r["unlearn_epochs"]) == tuple(RECIPE.values()) else \
        "not the original tool's recipe (10 and 5)"
    subset = f", a stratified {r['subset']:g} of fashion_mnist" if r.get("subset") else ""
    lines = ["# Benchmarks", "", f"Measured {r['date']} on {r['machine']} ({r['threads']} CPU threads for both "
             f"pipelines), torch "
             f"{r['torch']}, by `{' '.join(['python benchmarks/bench.py', *r['args']])}`: {r['epochs']} training and "
             f"{r['unlearn_epochs']} unlearning epoch(s), {recipe}{subset}. Raw numbers: `benchmarks/results.json`.",
             "",
             f"fp32 matmul peak measured in the same run: **{r['peak_gflops']:.0f} GFLOP/s**.", "",
             "## 1. Training throughput (batch 32, in-memory data, the real training loop)", "",
             "| model | samples/s | GFLOP/s | fraction of peak |", "|---|---|---|---|"]
    for arch, t in r["throughput"].items():
        lines.append(f"| {arch} | {t['samples_per_s']:.0f} | {t['gflops']:.1f} | {t['fraction_of_peak']:.0%} |")
    lines += ["", f"## 2. One run vs the naive pipeline (fashion_mnist, {r['epochs']} training epoch(s), "
              f"{r['unlearn_epochs']} unlearning epoch(s))", "",
              "| model | naive one run (s) | softtargets one run (s) | speedup | naive 4 cells (s) | "
              "softtargets 4 cells (s) | speedup |", "|---|---|---|---|---|---|---|"]
    for arch, c in r["vs_naive"].items():
        lines.append(f"| {arch} | {c['naive']['total_s']:.1f} | {c['ours']['total_s']:.1f} | "
                     f"{c['one_run_speedup']:.1f}x | {c['naive_group_s']:.1f} | {c['ours_group_s']:.1f} | "
                     f"{c['group_speedup']:.1f}x |")
    lines += ["", "Naive phases (s): " + "; ".join(
        f"{arch}: " + ", ".join(f"{k} {v:.1f}" for k, v in c["naive"].items() if k.endswith("_s"))
        for arch, c in r["vs_naive"].items()), "",
        "## 3. Seed-parallel vs sequential training (K models, one epoch each, batch 32)", "",
        "| model | K | images per model | sequential (s) | seed-parallel (s) | speedup |", "|---|---|---|---|---|---|"]
    for arch, rows in r["seed_parallel"].items():
        for row in rows:
            lines.append(f"| {arch} | {row['k']} | {row['images']} | {row['sequential_s']:.2f} | "
                         f"{row['parallel_s']:.2f} | {row['speedup']:.2f}x |")
    lines += ["", "## 4. Memory", "", f"Peak RSS of `softtargets run --dataset fashion_mnist --architecture cnn "
              f"--mu_algo graddiff --softtargets` (1 thread, its default): **{r['peak_rss_mb']:.0f} MB**.", ""]
    return "\n".join(lines)


def write_doc(path: Path, generated: str) -> None:
    """Replace the generated part of the document (up to KEPT) and keep the analysis below it."""
    kept = path.read_text().partition(KEPT)[2] if path.is_file() and KEPT in path.read_text() else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generated.rstrip("\n") + "\n\n" + KEPT + kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 training epoch and 1 unlearning epoch instead of "
                        "the original recipe's 10 and 5")
    parser.add_argument("--epochs", type=int, help="training epochs (default 10, or 1 with --quick)")
    parser.add_argument("--unlearn-epochs", type=int, help="unlearning epochs (default 5, or 1 with --quick)")
    parser.add_argument("--subset", type=float, help="a stratified fraction of fashion_mnist (data.subset), e.g. "
                        "0.01 to check the code path in minutes; the numbers then mean nothing")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="CPU threads of both pipelines (default: torch's default, all cores)")
    parser.add_argument("--reuse-naive", help="results.json of an earlier run with the same epochs: reuse its "
                        "naive-pipeline times instead of measuring them again")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        previous = json.loads(Path(args.reuse_naive).read_text()) if args.reuse_naive else None
        measured = previous and {previous["vs_naive"][a]["naive"].get("threads", previous.get("threads"))
                                 for a in ("mlp", "cnn")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        parser.error(f"--reuse-naive: {args.reuse_naive} is not a readable results.json of bench.py ({err!r}); "
                     "give one written by an earlier run, or drop --reuse-naive")
    if previous:  # checked before any measuring: naive times from another thread count are not comparable
        if measured != {args.threads}:
            parser.error(f"--reuse-naive: {args.reuse_naive} measured the naive pipeline on {sorted(measured)} "
                         f"thread(s); rerun with --threads {min(measured)} or without --reuse-naive")
    epochs = args.epochs or (1 if args.quick else RECIPE["epochs"])
    unlearn_epochs = args.unlearn_epochs or (1 if args.quick else RECIPE["unlearn_epochs"])
    use_threads(args.threads)
    bundle = load_dataset("fashion_mnist", ROOT / "data", None, subset=args.subset)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "threads": args.threads, "torch": torch.__version__, "args": sys.argv[1:],
               "epochs": epochs, "unlearn_epochs": unlearn_epochs, "subset": args.subset,
               "peak_rss_mb": peak_rss_mb(epochs, unlearn_epochs, args.subset)}  # first: the largest child yet
    peak = results["peak_gflops"] = matmul_peak_gflops()
    results["throughput"] = {a: throughput(bundle, a, peak) for a in ("mlp", "cnn")}
    archs = ("mlp", "cnn")
    if previous:
        results["naive_reused_from"] = previous["date"]
        results["vs_naive"] = {a: run_vs_naive(a, epochs, unlearn_epochs, None, previous["vs_naive"][a], args.subset)
                               for a in archs}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            index = naive_pipeline.export_pngs(bundle, Path(tmp) / "png")
            results["vs_naive"] = {a: run_vs_naive(a, epochs, unlearn_epochs, index, subset=args.subset)
                                   for a in archs}
    results["seed_parallel"] = {"mlp": seed_parallel(bundle, "mlp", (1, 4, 8, 16), n=6400),
                                "cnn": seed_parallel(bundle, "cnn", (1, 4, 8), n=1600)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    write_doc(Path(args.doc), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
