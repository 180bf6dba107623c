"""The published study's extras: the machine it ran on and README's Results tables, both from report data."""

from __future__ import annotations

import math
import os
import platform

from softtargets.report.comparison import fmt, md_table


def machine_info() -> dict:
    """What decides the last bits of a CPU run besides the code: instruction set (torch's, and the CPU's own best,
    `cpu_best`, from /proc/cpuinfo), torch, thread count, and the kernel pins set in the environment (kernel_env,
    only where some are)."""
    import torch

    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info = {"cpu": model or platform.processor(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine()}
    if flags:  # the CPU's own best, whatever the pins: what MKL uses where MKL_ENABLE_INSTRUCTIONS is not set
        info["cpu_best"] = "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "DEFAULT"
    pinned = {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}
    if pinned:  # the kernel pins the study ran under: `reproduce` sets exactly these
        info["kernel_env"] = pinned
    return info


KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")


STUDY_TABLE_HEAD = ["cell", "floor", "original", "method", "each arm's JS to the reference (vs the first arm)"]


def overview_arms(overview: list[dict]) -> list[dict]:
    """The arms of a study without arms.csv (untuned, as study 1), for `arms_table`, from its overview: per group,
    hard first (each row's `hard`), then every arm (its `other`). A group's rows must pair the same seeds, so that
    one hard value stands for all of them; otherwise the README cannot show it in one row: ValueError."""
    arms, hard = [], {}
    for r in overview:
        group = (r["dataset"], r["architecture"], r["method"], r["setting"])
        base = {"dataset": r["dataset"], "architecture": r["architecture"], "forget": "", "method": r["method"],
                "setting": r["setting"], "floor": r.get("floor"), "original": r["original"]}
        if group not in hard:
            hard[group] = r["hard"]
            arms.append(base | {"arm": "hard", "js": r["hard"]})
        elif r["hard"] != hard[group]:
            raise ValueError(f"{' / '.join(p for p in group if p)}: its arms were paired with hard on different "
                             "seeds, so one row cannot show them; read the report's overview table instead")
        arms.append(base | {"arm": r["arm"], "js": r["other"]})
    return arms


def arms_table(arms: list[dict], overview: list[dict]) -> str:
    """README's table of a study: per cell (dataset, architecture, forget spec) and method, the floor (where the
    study measured one), the original's JS and every arm's mean JS to the reference, marked against the group's
    baseline (its first arm: hard, or masked_pseudo for delete) by the overview's Holm p: '<' significantly
    closer, '>' significantly farther, '=' not significantly different. A tuned study's arms are its arms.csv;
    an untuned study's come from its overview (`overview_arms`)."""
    verdicts = {(r["dataset"], r["architecture"], r["method"], r["setting"], r["arm"]):
                ("=" if r["p_holm"] is None or math.isnan(r["p_holm"]) or r["p_holm"] >= 0.05
                 else "<" if r["mean_diff"] < 0 else ">") for r in overview}
    groups: dict[tuple, list[dict]] = {}
    for r in arms:
        groups.setdefault((r["dataset"], r["architecture"], r["forget"], r["method"], r["setting"]), []).append(r)
    cells: dict[tuple, int] = {}  # one number of decimals per cell: enough to tell each row's arms apart
    for key, rows in groups.items():
        cells[key[:3]] = max(cells.get(key[:3], 0), distinct_digits([r["js"] for r in rows]))
    table = []
    for (dataset, architecture, forget, method, setting), rows in sorted(groups.items(), key=lambda g: g[0][:4]):
        digits = cells[(dataset, architecture, forget)]
        parts = []
        for i, r in enumerate(rows):
            mark = "" if i == 0 else " " + verdicts.get((dataset, architecture, method, setting, r["arm"]), "=")
            text = f"{r['arm']} {fmt(r['js'], digits)}{mark}"
            parts.append(f"**{text}**" if mark == " <" else text)
        table.append([" ".join(p for p in (dataset, architecture, forget) if p), fmt(rows[0]["floor"], digits),
                      fmt(rows[0]["original"], digits), method, " · ".join(parts)])
    if all(r["floor"] is None for r in arms):  # no floor measured: no column of dashes
        return md_table([h for h in STUDY_TABLE_HEAD if h != "floor"], [row[:1] + row[2:] for row in table])
    return md_table(STUDY_TABLE_HEAD, table)


def distinct_digits(values: list[float], fewest: int = 4, most: int = 7) -> int:
    """The fewest decimals (at least `fewest`, at most `most`) that show different values differently: arms 2e-6
    apart in JS (a delete arm that barely moves) must not read as equal next to a '<'."""
    different = {v for v in values if v is not None and math.isfinite(v)}
    for digits in range(fewest, most):
        if len({fmt(v, digits) for v in different}) == len(different):
            return digits
    return most
