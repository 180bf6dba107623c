"""The published study's extras: the machine it ran on and README's Results table, both from report data."""

from __future__ import annotations

import os
import platform

from softtargets.report.comparison import fmt, fmt_diff, fmt_p, fmt_p_min
from softtargets.report.render import dz_text, floor_text, has_floor, significant


def readme_head(overview: list[dict]) -> list[str]:
    floor = ["arm − hard in floors"] if has_floor(overview) else []
    return ["dataset / model / method", "arm", "n", "JS to reference: original, hard, arm", "arm − hard [95% CI]",
            *floor, "p, Holm p", "d_z [95% CI]", "F arm / hard / null"]


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
    """README's Results table: per cell and arm, the primary distance for the original, hard and the arm; the
    mean difference arm - hard with the interval of its permutation test (bold where the Holm p over the whole
    table is < 0.05), in floors where a floor is known; p ('(min)': the smallest its test can give) and its Holm
    p; d_z with its interval (descriptive, never bold); and the forget-quality F of the arm, of hard and of exact
    retraining where audited."""
    head = readme_head(overview)
    floor = has_floor(overview)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in overview:
        where = " / ".join(p for p in (r["dataset"], r["architecture"], r["method"], r["setting"]) if p)
        f_values = (r["F_other"], r["F_hard"], r["F_null"])
        quality = "–" if r["F_other"] is None else " / ".join(fmt(v, 3) for v in f_values)
        diff = fmt_diff(r["mean_diff"], r["ci_low"], r["ci_high"])
        distances = f"{fmt(r['original'])}, {fmt(r['hard'])}, {fmt(r['other'])}"
        lines.append("| " + " | ".join([where, r["arm"], str(r["n"]), distances,
                                         f"**{diff}**" if significant(r) else diff,
                                         *([floor_text(r)] if floor else []),
                                         f"{fmt_p_min(r)}, {fmt_p(r['p_holm'])}", dz_text(r), quality]) + " |")
    return "\n".join(lines)
