"""The published study's extras: the machine it ran on and README's Results table, both from report data."""

from __future__ import annotations

import math
import os
import platform

from softtargets.report.comparison import Bold, fmt, fmt_diff, fmt_p, fmt_p_min, md_table
from softtargets.report.render import dz_text, floor_text, has_floor, significant


def readme_head(overview: list[dict]) -> list[str]:
    floor = ["arm − hard in floors"] if has_floor(overview) else []
    return ["dataset / model / method", "arm", "n", "JS to reference: original, hard, arm", "arm − hard [95% CI]",
            *floor, "p, Holm p", "d_z [95% CI]", "F arm / hard / null"]


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


def readme_table(overview: list[dict]) -> str:
    """README's Results table: per cell and arm, the primary distance for the original, hard and the arm; the
    mean difference arm - hard with the interval of its permutation test (bold where the Holm p over the whole
    table is < 0.05), in floors where a floor is known; p ('(min)': the smallest its test can give) and its Holm
    p; d_z with its interval (descriptive, never bold); and the forget-quality F of the arm, of hard and of exact
    retraining where audited."""
    head = readme_head(overview)
    floor = has_floor(overview)
    rows = []
    for r in overview:
        where = " / ".join(p for p in (r["dataset"], r["architecture"], r["method"], r["setting"]) if p)
        f_values = (r["F_other"], r["F_hard"], r["F_null"])
        quality = "–" if r["F_other"] is None else " / ".join(fmt(v, 3) for v in f_values)
        diff = fmt_diff(r["mean_diff"], r["ci_low"], r["ci_high"])
        distances = f"{fmt(r['original'])}, {fmt(r['hard'])}, {fmt(r['other'])}"
        rows.append([where, r["arm"], str(r["n"]), distances, Bold(diff) if significant(r) else diff,
                     *([floor_text(r)] if floor else []), f"{fmt_p_min(r)}, {fmt_p(r['p_holm'])}", dz_text(r), quality])
    return md_table(head, rows)


STUDY_TABLE_HEAD = ["cell", "floor", "original", "method", "each arm's JS to the reference (vs the first arm)"]


def arms_table(arms: list[dict], overview: list[dict]) -> str:
    """README's table of a tuned study: per cell (dataset, architecture, forget spec) and method, the floor, the
    original's JS and every arm's mean JS to the reference, marked against the group's baseline (its first arm:
    hard, or masked_pseudo for delete) by the overview's Holm p: '<' significantly closer, '>' significantly
    farther, '=' not significantly different."""
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
        table.append([f"{dataset} {architecture} {forget}", fmt(rows[0]["floor"], digits),
                      fmt(rows[0]["original"], digits), method, " · ".join(parts)])
    return md_table(STUDY_TABLE_HEAD, table)


def distinct_digits(values: list[float], fewest: int = 4, most: int = 7) -> int:
    """The fewest decimals (at least `fewest`, at most `most`) that show different values differently: arms 2e-6
    apart in JS (a delete arm that barely moves) must not read as equal next to a '<'."""
    different = {v for v in values if v is not None and math.isfinite(v)}
    for digits in range(fewest, most):
        if len({fmt(v, digits) for v in different}) == len(different):
            return digits
    return most
