"""softtargets GPU benchmark: the section "GPU" of docs/benchmarks.md, raw numbers in benchmarks/gpu_results.json.

    python benchmarks/gpu.py                         # on a CUDA machine (benchmarks/gpu_check.sh runs it)
    python benchmarks/gpu.py --device cpu --tiny     # the same code path at a tiny size (tests/test_benchmarks.py)

Sections (issue "A 30-seed grid in about a minute on one GPU"):
  1. the chip's measured matmul rate: fp32 (TF32 off, what training uses) and TF32;
  2. training steps/s per model at K = 1, 8, 16, 32 stacked seeds, batch as the recipe, on the default path
     (batch order drawn on the CPU, eager steps) and the fast path (config fast_cuda: device-drawn batches, CUDA
     graphs), with the achieved FLOP rate as a fraction of the fp32 matmul rate; target: a stacked K = 16 mlp
     step in at most 0.3 ms;
  3. the cost of deterministic mode (a K = 1 step with it on and off);
  4. where a step's time goes for mobilenet_v2 and resnet20 on digits (8 x 8 images; issue: 2 epochs took 34.7 s
     against 1.9 s): ms/step and the operators with the most device time (torch.profiler);
  5. the 30-seed study end to end: `softtargets compare --dataset fashion_mnist --architecture mlp|cnn
     --mu_algo graddiff --seeds 30` (the original recipe: 10 epochs, batch 32), fresh cache; targets 60 s (mlp)
     and 180 s (cnn). A study that does not finish within --study-timeout is recorded as such, with how many of
     its runs were done.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from softtargets.config import load_config  # noqa: E402
from softtargets.data.batches import DeviceData, SplitData  # noqa: E402
from softtargets.data.datasets import load_dataset  # noqa: E402
from softtargets.hooks import Hooks  # noqa: E402
from softtargets.training.parallel import Job, fit_stacked, init_models  # noqa: E402
from softtargets.training.fit import use_compute, use_deterministic_cuda  # noqa: E402

BEGIN, END = "<!-- gpu section: written by benchmarks/gpu.py -->", "<!-- end of gpu section -->"
FULL = {"archs": ("mlp", "cnn", "resnet20", "mobilenet_v2"), "ks": (1, 8, 16, 32), "matmul": 8192,
        "steps": {"mlp": 200, "cnn": 200, "resnet20": 40, "mobilenet_v2": 20}, "dataset": "fashion_mnist",
        "study_seeds": 30, "study_args": [], "profile": ("mobilenet_v2", "resnet20")}
TINY = {"archs": ("mlp", "cnn"), "ks": (1, 2), "matmul": 128, "steps": {"mlp": 3, "cnn": 3}, "dataset": "digits",
        "study_seeds": 2, "study_args": ["--epochs", "1", "--unlearn-epochs", "1"], "profile": ("cnn",)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, n: int, tf32: bool, repeats: int = 10) -> float:
    """Best-of GEMM rate in GFLOP/s (fp32 inputs; tf32 lets the tensor cores round them to TF32)."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        for _ in range(3):
            a @ b
        best = 0.0
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                a @ b
            sync(device)
            best = max(best, repeats * 2 * n**3 / (time.perf_counter() - start))
        return best / 1e9
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def step_flops(arch: str, shape: tuple, batch: int) -> int:
    """FLOPs of one training step of one model: 3 x the forward's (the usual estimate: the backward costs two
    forwards). The forward is counted by torch's FlopCounterMode; its backward count is left out because it
    counts depthwise convolutions (mobilenet_v2) as dense, 20 times too many."""
    from torch.utils.flop_counter import FlopCounterMode

    from softtargets.models import build_model

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        build_model(arch, shape, 10)(torch.randn(batch, *shape))
    return 3 * counter.get_total_flops()


def train_rate(bundle, device: torch.device, arch: str, k: int, steps: int, fast: bool, deterministic: bool = True
               ) -> dict:
    """steps training steps of K stacked models (one epoch over steps x batch images each), after one warm-up
    epoch of the same shape (cuDNN/cuBLAS initialisation; the fast path captures its graph in every fit)."""
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 1, "device": device.type,
                                 "deterministic": deterministic})
    use_compute(cfg)
    recipe = cfg.training
    data = DeviceData(bundle, device)
    n = min(steps * recipe.batch_size, len(data.train_y))
    split = SplitData(data, data.train_x[:n], data.train_y[:n])
    jobs = [Job("original", split, seed, {}) for seed in range(k)]
    warm = SplitData(data, data.train_x[:3 * recipe.batch_size], data.train_y[:3 * recipe.batch_size])
    fit_stacked(init_models(jobs, recipe, device), [warm] * k, list(range(k)), recipe, Hooks(), "warm-up", fast)
    models = init_models(jobs, recipe, device)
    sync(device)
    start = time.perf_counter()
    fit_stacked(models, [split] * k, list(range(k)), recipe, Hooks(), "bench", fast)
    sync(device)
    seconds = time.perf_counter() - start
    done = -(-n // recipe.batch_size)
    return {"arch": arch, "k": k, "fast": fast, "deterministic": deterministic, "batch": recipe.batch_size,
            "steps": done, "ms_per_step": 1e3 * seconds / done, "steps_per_s": done / seconds,
            "samples_per_s": k * n / seconds}


def profile_step(arch: str, device: torch.device, steps: int = 5) -> dict:
    """ms per training step on digits at the recipe's batch size, and the operators with the most self time on
    the device (CPU time on a CPU) over `steps` steps."""
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from softtargets.models import build_model
    from softtargets.training.fit import make_optimizer

    cfg = load_config(overrides={"training.architecture": arch, "device": device.type})
    recipe = cfg.training
    bundle = load_dataset("digits")
    model = build_model(arch, bundle.input_shape, bundle.num_classes).to(device)
    optimizer = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.weight_decay, recipe.momentum,
                               fused=True)
    x = DeviceData(bundle, device).normalise(bundle.train_x[:recipe.batch_size].to(device))
    y = bundle.train_y[:recipe.batch_size].to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    ms = 1e3 * (time.perf_counter() - start) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:6]
    total = sum(getattr(e, key) for e in prof.key_averages()) or 1
    return {"arch": arch, "batch": recipe.batch_size, "ms_per_step": ms,
            "top": [{"op": e.key, "share": getattr(e, key) / total, "calls_per_step": e.count / steps}
                    for e in events]}


def evaluation_split(bundle, device: torch.device, train_epochs: int = 1) -> dict:
    """Seconds of each part of one cell's evaluation (evaluation.own_metrics + relative_metrics, as experiment._run
    calls them) for an mlp trained train_epochs epochs, forget spec random:0.1: which part runs where, and
    whether the CPU-side (scikit-learn) metrics are the bottleneck."""
    import copy

    import softtargets.metrics.mia as mia
    from softtargets.data.splits import make_split
    from softtargets.evaluation import compute_logits
    from softtargets.metrics.accuracy import accuracy, per_class_accuracy, per_class_loss
    from softtargets.metrics.divergence import js_divergence
    from softtargets.metrics.weights import l2_distance, mean_abs_change
    from softtargets.training.fit import fit

    cfg = load_config(overrides={"training.epochs": train_epochs, "device": device.type})
    use_compute(cfg)
    data = DeviceData(bundle, device)
    split = make_split("random:0.1", bundle.train_y, bundle.num_classes, 0)
    (model,) = init_models([Job("original", SplitData(data, data.train_x, data.train_y), 0, {})], cfg.training,
                           device)
    fit(model, SplitData(data, data.train_x, data.train_y), cfg.training, 0, Hooks(), "eval-bench")
    other = copy.deepcopy(model)
    y = {"retain": data.train_y[split.retain_idx.to(device)], "forget": data.train_y[split.forget_idx.to(device)],
         "test": data.test_y}
    seconds: dict[str, float] = {}

    def timed(name: str, where: str, work):
        sync(device)
        start = time.perf_counter()
        value = work()
        sync(device)
        seconds[f"{name} ({where})"] = seconds.get(f"{name} ({where})", 0.0) + time.perf_counter() - start
        return value

    dev = "GPU" if device.type == "cuda" else "CPU"
    logits = timed("logits: forward on retain, forget, test", dev, lambda: compute_logits(model, data, split))
    for part in ("retain", "forget", "test"):
        timed("accuracies", dev, lambda: accuracy(getattr(logits, part), y[part]))
    timed("per-class accuracy and loss", dev, lambda: (per_class_accuracy(logits.test, y["test"], 10),
                                                       per_class_loss(logits.test, y["test"], 10)))
    losses = timed("per-example losses", dev, lambda: (mia.per_example_loss(logits.forget, y["forget"]),
                                                       mia.per_example_loss(logits.test, y["test"])))
    timed("loss MIA: logistic regression, 10-split CV", "CPU, scikit-learn", lambda: mia.loss_mia_accuracy(*losses))
    timed("confidence MIA AUC", dev if device.type == "cuda" else "CPU, scikit-learn",
          lambda: mia.confidence_mia_auc(mia.max_confidence(logits.forget), mia.max_confidence(logits.test)))
    confidences = timed("true-class confidences", dev, lambda: [mia.true_class_confidence(getattr(logits, p), y[p])
                                                               for p in ("retain", "test", "forget")])
    timed("SVC MIA: RBF SVC on 2 x 2,000, predict forget", "CPU, scikit-learn",
          lambda: mia.svc_mia_efficacy(*confidences))
    timed("JS divergence, forget and test", dev, lambda: (js_divergence(logits.forget, logits.forget),
                                                         js_divergence(logits.test, logits.test)))
    timed("weight distances", dev, lambda: (l2_distance(model, other), l2_distance(model, other),
                                            mean_abs_change(model, other)))
    total = sum(seconds.values())
    return {"seconds": seconds, "total_s": total,
            "cpu_side_s": sum(v for k, v in seconds.items() if "scikit-learn" in k)}


def study(dataset: str, arch: str, device: str, seeds: int, timeout: float, extra: list[str], fast: bool,
          workers: int) -> dict:
    """compare over `seeds` seeds end to end in a fresh process and cache; killed after `timeout` s."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "softtargets", "--quiet", "compare", "--dataset", dataset,
                   "--architecture", arch, "--mu_algo", "graddiff",
                   "--seeds", str(seeds), "--device", device, "--tracker", "none", "--out", f"{tmp}/runs",
                   "--cache-dir", f"{tmp}/cache", "--workers", str(workers), *extra] + (["--fast-cuda"] if fast else [])
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            output, _ = process.communicate(timeout=timeout)
            finished, code = True, process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            finished, code = False, None
        seconds = time.perf_counter() - start
        done = len(list(Path(tmp, "runs").glob("*/runs/*/result.json")))
    return {"arch": arch, "seeds": seeds, "fast": fast, "workers": workers, "finished": finished, "exit_code": code,
            "seconds": seconds, "runs_done": done, "runs_total": 2 * seeds, "command": " ".join(command[1:]),
            "output_tail": output.decode(errors="replace")[-1500:]}


def timeout_of(text: str, arch: str) -> float:
    """'300' -> 300 for every model; 'mlp=100,cnn=150' -> per model (300 for one not named)."""
    if "=" not in text:
        return float(text)
    pairs = dict(item.split("=") for item in text.split(","))
    return float(pairs.get(arch, 300))


def markdown(r: dict) -> str:
    peak = r["matmul_gflops"]["fp32"]
    lines = [BEGIN, "## GPU", "",
             f"Measured {r['date']} on {r['device_name']}, torch {r['torch']}, by `python benchmarks/gpu.py "
             f"{' '.join(r['args'])}`. Raw numbers: `benchmarks/gpu_results.json`.", "",
             f"Matmul rate measured in the same run ({r['matmul_n']}²): **fp32 {peak:,.0f} GFLOP/s**, TF32 "
             f"{r['matmul_gflops']['tf32']:,.0f} GFLOP/s. Training runs in fp32 (TF32 off), so fractions below are "
             "of the fp32 rate.", "",
             "### Training steps (one epoch, K stacked seeds, the recipe's batch size)", "",
             "| model | K | path | ms/step | steps/s | samples/s | GFLOP/s | fraction of fp32 |",
             "|---|---|---|---|---|---|---|---|"]
    for row in r["training"]:
        if "error" in row:
            lines.append(f"| {row['arch']} | {row['k']} | {'fast' if row['fast'] else 'default'} | failed: "
                         f"{row['error'][:120]} | | | | |")
            continue
        gflops = row["steps_per_s"] * row["k"] * r["flops_per_step"][row["arch"]] / 1e9
        lines.append(f"| {row['arch']} | {row['k']} | {'fast' if row['fast'] else 'default'} | "
                     f"{row['ms_per_step']:.3f} | {row['steps_per_s']:,.0f} | {row['samples_per_s']:,.0f} | "
                     f"{gflops:,.1f} | {gflops / peak:.2%} |")
    lines += ["", "### Deterministic mode (K = 1, default path)", "", "| model | deterministic ms/step | "
              "nondeterministic ms/step | cost |", "|---|---|---|---|"]
    for arch, pair in r["determinism"].items():
        if "error" in pair:
            lines.append(f"| {arch} | failed: {pair['error'][:120]} | | |")
            continue
        on, off = pair["on"]["ms_per_step"], pair["off"]["ms_per_step"]
        lines.append(f"| {arch} | {on:.3f} | {off:.3f} | {on / off - 1:+.0%} |")
    lines += ["", "### Where a step's time goes (digits, 8 x 8 images, the recipe's batch)", ""]
    for p in r["profile"]:
        ops = "; ".join(f"{t['op']} {t['share']:.0%}" for t in p["top"])
        lines.append(f"- {p['arch']} (batch {p['batch']}): {p['ms_per_step']:.1f} ms/step; most device time: {ops}")
    if "evaluation" in r:
        e = r["evaluation"]
        lines += ["", f"### One cell's evaluation ({r['dataset']} mlp, random:0.1): {e['total_s']:.2f} s, of which "
                  f"{e['cpu_side_s']:.2f} s in scikit-learn on the CPU", "", "| part | where | seconds |", "|---|---|---|"]
        for key, value in e["seconds"].items():
            part, where = key.rsplit(" (", 1)
            lines.append(f"| {part} | {where.rstrip(')')} | {value:.3f} |")
    lines += ["", f"### The {r['study_seeds']}-seed study end to end (`compare --mu_algo graddiff`, fresh cache)", "",
              "| model | path | workers | wall time | runs done |", "|---|---|---|---|---|"]
    for row in r["study"]:
        time_text = f"{row['seconds']:.0f} s" if row["finished"] else f"not finished in {row['seconds']:.0f} s"
        if row["finished"] and row["exit_code"] not in (0, None):
            time_text += f" (exit {row['exit_code']})"
        lines.append(f"| {row['arch']} | {'fast' if row['fast'] else 'default'} | {row['workers']} | {time_text} | "
                     f"{row['runs_done']} of {row['runs_total']} |")
    lines += ["", "Targets (issue 16): mlp study ≤ 60 s, cnn study ≤ 180 s, a stacked K = 16 mlp step ≤ 0.3 ms.",
              END]
    return "\n".join(lines) + "\n"


def splice(document: str, section: str) -> str:
    """document with its GPU section replaced by section (appended when it has none)."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        return head + section.rstrip("\n") + rest.split(END, 1)[1]
    return document.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the code path at a tiny size (CPU tests)")
    parser.add_argument("--study-timeout", default="300", help="seconds before a study is killed: one number for "
                        "all, or per model: mlp=100,cnn=150")
    parser.add_argument("--study-workers", type=int, default=8, help="compare --workers of the study")
    parser.add_argument("--study-archs", default="mlp,cnn", help="comma-separated; empty: no study")
    parser.add_argument("--study-paths", default="fast,default", help="fast and/or default (comma-separated)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu_results.json"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    size = TINY if args.tiny else FULL
    device = torch.device(args.device)
    use_compute(load_config(overrides={"device": args.device}))
    bundle = load_dataset(size["dataset"], ROOT / "data")
    results = {"date": time.strftime("%Y-%m-%d"), "args": argv if argv is not None else sys.argv[1:],
               "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
               or platform.machine(), "torch": torch.__version__, "matmul_n": size["matmul"],
               "matmul_gflops": {"fp32": matmul_rate(device, size["matmul"], False),
                                 "tf32": matmul_rate(device, size["matmul"], True)},
               "flops_per_step": {}, "training": [], "determinism": {}, "study": [], "study_seeds": size["study_seeds"],
               "profile": [], "dataset": size["dataset"]}
    out, doc = Path(args.out), Path(args.doc)

    def save() -> None:  # after every section: a run cut short by a timeout still leaves what it measured
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(splice(doc.read_text() if doc.exists() else "# Benchmarks\n", markdown(results)))

    for arch in size["archs"]:
        batch = load_config(overrides={"training.architecture": arch}).training.batch_size
        results["flops_per_step"][arch] = step_flops(arch, bundle.input_shape, batch)
        for k in size["ks"]:
            for fast in (False, True):
                try:
                    results["training"].append(train_rate(bundle, device, arch, k, size["steps"][arch], fast))
                except Exception as err:  # noqa: BLE001 - a failing configuration is a result, not the end
                    results["training"].append({"arch": arch, "k": k, "fast": fast, "error": f"{type(err).__name__}: "
                                                f"{err}"})
        try:
            off = train_rate(bundle, device, arch, 1, size["steps"][arch], False, deterministic=False)
            on = train_rate(bundle, device, arch, 1, size["steps"][arch], False, deterministic=True)
            results["determinism"][arch] = {"on": on, "off": off}
        except Exception as err:  # noqa: BLE001
            results["determinism"][arch] = {"error": f"{type(err).__name__}: {err}"}
        if device.type == "cuda":
            use_deterministic_cuda(True)
        save()
    for arch in size["profile"]:
        try:
            results["profile"].append(profile_step(arch, device))
        except Exception as err:  # noqa: BLE001
            results["profile"].append({"arch": arch, "batch": 0, "ms_per_step": float("nan"),
                                       "top": [{"op": f"failed: {type(err).__name__}: {err}"[:200], "share": 0}]})
    results["evaluation"] = evaluation_split(bundle, device)
    save()
    for arch in filter(None, args.study_archs.split(",")):
        for path in filter(None, args.study_paths.split(",")):
            results["study"].append(study(size["dataset"], arch, args.device, size["study_seeds"],
                                          timeout_of(args.study_timeout, arch), size["study_args"], path == "fast",
                                          args.study_workers))
            save()
    return results


if __name__ == "__main__":
    print(markdown(main()))
