"""A study cell inside a sweep worker: the time of one cached fashion_mnist mlp graddiff cell, unlearning and the
rest (evaluation, plots, the run folder), as run_cells runs a group of cells sharing one preparation.

    python benchmarks/cell.py --cache-dir CACHE [--cells 5] [--no-plots]

The original, reference and floor must be in CACHE (a first call trains them; their time is not counted). Target
(issue 24): median cell <= 8 s on one thread, evaluation <= a quarter of it. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from softtargets.config import load_config, replace
from softtargets.experiment import prepare, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--no-plots", action="store_true", help="the grid setting plots: false (no per-run PNGs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(overrides={"protocol": "softtargets", "floor": True, "data.dataset": "fashion_mnist",
                                     "unlearning.method": "graddiff", "unlearning.lr": 3.2e-3, "seed": args.seed,
                                     "out": out, "cache_dir": args.cache_dir, "plots": not args.no_plots})
        prepared = prepare(cfg)
        cells = []
        for i in range(args.cells):  # the same cell into fresh folders: the same work every time
            start = time.perf_counter()
            result = run_experiment(replace(cfg, out=f"{out}/{i}"), prepared=prepared)
            total = time.perf_counter() - start
            cells.append({"cell_s": total, "unlearn_s": result["timings"]["unlearn_s"],
                          "rest_s": total - result["timings"]["unlearn_s"],
                          "js": result["metrics"]["unlearned"]["js_forget_to_reference"]})
    assert len({c["js"] for c in cells}) == 1, "the same cell gave different metrics"
    median = {k: statistics.median(c[k] for c in cells) for k in ("cell_s", "unlearn_s", "rest_s")}
    print(json.dumps({"cells": len(cells), **{f"median_{k}": round(v, 2) for k, v in median.items()},
                      "rest_share": round(median["rest_s"] / median["cell_s"], 3), "js": cells[0]["js"]}))


if __name__ == "__main__":
    main()
