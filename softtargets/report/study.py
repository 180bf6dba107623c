"""The published study's extras: the machine it ran on and README's Results table, both from report data."""

from __future__ import annotations

import math
import os
import platform

from softtargets.report.comparison import fmt, fmt_p

README_HEAD = ["dataset / model / method", "arm", "n", "JS to reference: original, hard, arm", "d_z [95% CI]",
               "p (Holm)", "F arm / hard / null"]


def machine_info() -> dict:
    """What decides the last bits of a CPU run besides the code: instruction set, torch, thread count."""
    import torch

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine()}


def readme_table(overview: list[dict]) -> str:
    """README's Results table: per cell and arm, the primary distance for hard and the arm, d_z with its
    interval (bold where the Holm-adjusted p over the whole table is < 0.05), that p, and the forget-quality F
    of the arm, of hard and of exact retraining where audited."""
    lines = ["| " + " | ".join(README_HEAD) + " |", "|" + "---|" * len(README_HEAD)]
    for r in overview:
        where = " / ".join(p for p in (r["dataset"], r["architecture"], r["method"], r["setting"]) if p)
        f_values = (r["F_other"], r["F_hard"], r["F_null"])
        quality = "–" if r["F_other"] is None else " / ".join(fmt(v, 3) for v in f_values)
        significant = r["p_holm"] is not None and not math.isnan(r["p_holm"]) and r["p_holm"] < 0.05
        dz = f"{fmt(r['effect_dz'], 2)} [{fmt(r['dz_ci_low'], 2)}, {fmt(r['dz_ci_high'], 2)}]"
        distances = f"{fmt(r['original'])}, {fmt(r['hard'])}, {fmt(r['other'])}"
        lines.append("| " + " | ".join([where, r["arm"], str(r["n"]), distances,
                                         f"**{dz}**" if significant else dz, fmt_p(r["p_holm"]), quality]) + " |")
    return "\n".join(lines)
