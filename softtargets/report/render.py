"""report.md and report.html from the same table cells; both show the PNGs written next to them in the report
folder (so the folder is the report: copy it whole)."""

from __future__ import annotations

import html
import math
from urllib.parse import quote

from softtargets.metrics.headline import ALPHA, PRIMARY
from softtargets.report.comparison import (TEST_TEXT, Bold, fmt as _fmt, fmt_diff, fmt_p as _p, fmt_p_min, fmt_ratio,
                                           md_table)
from softtargets.report.arms import params_text, tuning_rows_of
from softtargets.report.contents import Report
from softtargets.report.relearn import RELEARN_HEAD, RELEARN_TEXT, relearn_cells

METHODS_TEXT = (
    "Each cell is one run (one seed) measured against its retrained reference, counted once. Per target kind: "
    "n runs, mean, sample standard deviation and the mean's 95% t-interval of each metric ('reference': the "
    "retrained reference's mean). Comparisons pair the runs of the same seeds against hard targets (a method that "
    "refuses hard, delete, against masked_pseudo, its hard relabelling onto the original's runner-up class). "
    + TEST_TEXT + " Families: the primary family is every primary comparison of this report (the overview's "
    "rows), the secondary family every secondary test of this report; each is Holm-adjusted as one, and "
    "'Holm p' and every sentence below use the adjusted p of its row's family."
)
SUMMARY_HEAD = ["metric", "targets", "n", "mean", "std", "95% CI", "reference"]
PAIRED_HEAD = ["tested", "family", "comparison", "n", "mean diff [95% CI]", "p", "Holm p", "d_z [95% CI]", "better"]


def summary_cells(rows: list[dict]) -> list[list[str]]:
    return [[r["metric"], r["targets"], str(r["n"]), _fmt(r["mean"]), _fmt(r["std"]),
             f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", _fmt(r["reference"])] for r in rows]


def paired_cells(rows: list[dict]) -> list[list[str]]:
    return [[r["tested"], r["family"], r["comparison"], str(r["n"]), diff_text(r), fmt_p_min(r), _p(r["p_holm"]),
             dz_text(r), r["better"]] for r in rows]


def diff_text(r: dict) -> str:
    return fmt_diff(r["mean_diff"], r["ci_low"], r["ci_high"])


def dz_text(r: dict) -> str:
    return f"{_fmt(r['effect_dz'], 2)} [{_fmt(r['dz_ci_low'], 2)}, {_fmt(r['dz_ci_high'], 2)}]"


def floor_text(r: dict) -> str:
    """The difference in floors ('–' for a row without one)."""
    if "diff_floor" not in r:
        return "–"
    return f"{fmt_ratio(r['diff_floor'])} [{fmt_ratio(r['diff_floor_ci_low'])}, {fmt_ratio(r['diff_floor_ci_high'])}]"


def significant(r: dict) -> bool:
    """The row's adjusted p (of its stated family) is below alpha: the only ground for calling an arm closer."""
    p = r.get("p_holm")
    return p is not None and not math.isnan(p) and p < ALPHA


def answer_lines(report: Report, group: tuple) -> list[str]:
    """Each comparison's one-line answer, then what its seed count cannot show."""
    out = []
    for a in _in_group(report.answers, group):
        out.append(f"{a['comparison']}: {a['answer']}.")
        out += [f"Note: {note}." for note in a["notes"]]
    return out


def baseline_name(rows: list[dict]) -> str:
    """What the overview calls the arm every comparison is against: hard, or "baseline" where some method's is not
    hard (delete refuses hard: masked_pseudo), each such row naming its own ("masked (vs masked_pseudo)")."""
    return "baseline" if any(r.get("baseline") for r in rows) else "hard"


def overview_head(rows: list[dict]) -> list[str]:
    b = baseline_name(rows)
    floor = [f"arm − {b} in floors [95% CI]"] if has_floor(rows) else []
    return ["dataset", "arch.", "method", "arm", "n", f"{PRIMARY}: original", b, "arm", f"arm − {b} [95% CI]",
            *floor, "p", "Holm p", "d_z [95% CI]", f"F {b}", "F arm [95% CI]", "F null"]


def has_floor(rows: list[dict]) -> bool:
    return any("diff_floor" in r for r in rows)


def overview_text(rows: list[dict]) -> str:
    b = baseline_name(rows)
    against = "hard" if b == "hard" else ("its baseline: hard, or where a method refuses hard the arm its row names "
                                          "(delete: masked_pseudo)")
    return (
        f"Per group and target arm against {against}, on the primary metric {PRIMARY} (lower is closer to the "
        f"retrained reference): means over the paired seeds for the original model (where unlearning starts), {b} "
        f"and the arm; the mean paired difference arm − {b} with the 95% interval that inverts its test, in bold "
        "where the Holm p is < 0.05; the sign-flip permutation p (raw, and Holm-adjusted over all rows of this table: "
        "the report's primary family); d_z with its exact 95% interval (noncentral t), descriptive only. F is the "
        "NeurIPS 2023 challenge's forgetting quality of a forget-quality audit (higher is closer to exact "
        "retraining, 1 ideal) with its bootstrap interval; 'F null' is the F of exact retraining at the same number "
        "of models, the most an unlearning method can score there."
    )


FLOOR_TEXT = (
    "'in floors': the difference divided by the mean retrain-vs-retrain floor of the paired seeds (the primary "
    "metric between the reference and a second exact retrain from another initialisation seed): the distance "
    "exact retraining itself leaves."
)


def overview_cells(rows: list[dict]) -> list[list[str]]:
    out = []
    floor = has_floor(rows)
    for r in rows:
        setting = f" ({r['setting']})" if r["setting"] else ""
        f_arm = "–" if r["F_other"] is None else (
            f"{_fmt(r['F_other'], 3)} [{_fmt(r['F_other_ci_low'], 3)}, {_fmt(r['F_other_ci_high'], 3)}]")
        diff = diff_text(r)
        arm = f"{r['arm']} (vs {r['baseline']})" if r.get("baseline") else r["arm"]
        out.append([r["dataset"], r["architecture"], r["method"] + setting, arm, str(r["n"]), _fmt(r["original"]),
                    _fmt(r["hard"]), _fmt(r["other"]), Bold(diff) if significant(r) else diff,
                    *([floor_text(r)] if floor else []), fmt_p_min(r), _p(r["p_holm"]), dz_text(r),
                    _fmt(r["F_hard"], 3), f_arm, _fmt(r["F_null"], 3)])
    return out


ARMS_HEAD = ["arm", "tuned", "n", "JS to reference [95% CI]", "original", "floor", "closed", "floor reached",
             "forget acc (ref)", "retain acc (ref)", "test acc (ref)", "MIA (ref)", "avg gap",
             "avg gap - baseline [95% CI]", "Holm p"]
ARMS_TEXT = (
    "Per arm on the evaluation seeds: the tuned values it ran with, its mean JS to the reference on the forget set "
    "with the mean's 95% t-interval, the original's and the floor's (a second exact retrain from another "
    "initialisation seed), the fraction of the original's distance it closed (1 - arm / original) and of the way "
    "to the floor ((original - arm) / (original - floor)), and its accuracies next to the reference's. The "
    "original and the reference share their initialisation (the run's seed), the floor model does not: an "
    "unlearned model can end closer to the reference than the floor. MIA: SalUn's MIA-efficacy. Avg gap: the "
    "metric UGradSL and SalUn report, the mean over forget, retain and test accuracy and MIA-efficacy of "
    "|arm - reference| in percentage points (per seed, then averaged), with the arm's paired difference to the "
    "baseline arm (sign-flip test over seeds, Holm-adjusted over every arm of this report)."
)
TUNING_HEAD = ["arm", "candidate", "score: mean JS", "forget acc", "test acc", "seeds completed", "chosen"]


def arms_cells(rows: list[dict]) -> list[list[str]]:
    def pair(r, metric):
        return f"{_fmt(r[metric], 3)} ({_fmt(r[metric + '_reference'], 3)})"

    return [[r["arm"], edge_text(params_text(r["params"]), r.get("tuning")), str(r["n"]), f"{_fmt(r['js'])} [{_fmt(r['js_ci_low'])}, "
             f"{_fmt(r['js_ci_high'])}]", _fmt(r["original"]), _fmt(r["floor"]), _fmt(r["closed"], 3),
             _fmt(r["floor_reached"], 3), pair(r, "acc_forget"), pair(r, "acc_retain"), pair(r, "acc_test"),
             pair(r, "mia_svc_efficacy"), _fmt(r["avg_gap"], 2), gap_text(r),
             _p(r["gap_p_holm"]) if r.get("gap_p_holm") is not None else ""]
            for r in rows]


def gap_text(r: dict) -> str:
    """The arm's average-gap difference to the baseline arm, bold where its Holm p is below alpha."""
    if r.get("gap_p") is None:
        return "(baseline)" if r.get("avg_gap") is not None else "–"
    text = f"{fmt_diff(r['gap_diff'], r['gap_ci_low'], r['gap_ci_high'])} (p {fmt_p_min({'p': r['gap_p'], 'p_min': r['gap_p_min']})})"
    return Bold(text) if r["gap_p_holm"] < ALPHA else text


def tuning_cells(rows: list[dict]) -> list[list[str]]:
    return [[r["arm"], params_text(r["params"]), _fmt(r["score"]), _fmt(r["unlearned.acc_forget"], 3),
             _fmt(r["unlearned.acc_test"], 3), f"{r['completed']} of {len(r['tuning_seeds'].split())}",
             Bold(edge_text("chosen", r)) if r["chosen"] else ""] for r in rows]


def edge_text(text: str, row: dict | None) -> str:
    """text, with the tuned keys whose chosen value is at the end of their grid (the optimum may lie beyond)."""
    edge = (row or {}).get("edge") or []
    short = {"unlearning.lr": "lr", "targets.smoothing": "a", "targets.temperature": "T"}
    return f"{text} (grid edge: {', '.join(short.get(k, k) for k in edge)})" if edge else text


def tuning_text(rows: list[dict]) -> str:
    seeds = rows[0]["tuning_seeds"].replace(" ", ", ")
    budgets = sorted({r["budget"] for r in rows})
    return (f"Tuning record: every arm's candidates on tuning seeds {seeds} (never evaluation seeds), "
            f"{' or '.join(map(str, budgets))} candidates per arm; the lowest mean {rows[0]['metric']} over the "
            "tuning seeds was chosen (a candidate counts only if every seed completed"
            + ("" if rows[0].get("max_test_drop") is None else
               f" and its mean test accuracy on the kept classes was at most {rows[0]['max_test_drop']:g} below the "
               "reference's: tuning.csv's admissible") + ").")


def group_title(group: tuple) -> str:
    dataset, architecture, method, setting = group
    return f"{dataset} / {architecture} / {method}" + (f" ({setting})" if setting else "")


def _in_group(rows: list[dict], group: tuple) -> list[dict]:
    return [r for r in rows if (r["dataset"], r["architecture"], r["method"], r["setting"]) == group]


def _tuned(report: Report, group: tuple) -> list[dict]:
    """The tuning.csv rows of a group's arms (none for a sweep without tuning)."""
    return tuning_rows_of(report.tuning, [r for r in report.records if r.group == group]) if report.tuning else []


def labels_only(report: Report, group: tuple) -> str | None:
    """One line in place of the paired table for a method that sees labels only (adapted plugins)."""
    if all(r.uses_targets for r in report.records if r.group == group):
        return None
    return (f"{group[2]} sees labels only (adapted plugin code gets (images, labels)): its runs with different "
            "targets are identical, so there is no paired comparison.")


def overview(report: Report) -> str:
    counts = report.status_counts()
    parts = [f"{len(report.records)} runs"] + [f"{n} {s}" for s, n in sorted(counts.items())]
    text = ", ".join(parts) + f" in {len(report.groups)} group(s)"
    if report.failures:
        text += f"; {len(report.failures)} cell(s) failed without a result (listed at the end)"
    return text + "."


def to_markdown(report: Report, generated: str) -> str:
    lines = [f"# Sweep report: {report.runs_dir}", "", f"{overview(report)} Latest run finished {generated}.", "",
             METHODS_TEXT, ""]
    if report.overview:
        text = overview_text(report.overview) + (" " + FLOOR_TEXT if has_floor(report.overview) else "")
        lines += ["## Overview: closer to the reference?", "", text, ""]
        if report.forest:
            lines += [f"![forest plot]({report.forest.name})", ""]
        lines += [md_table(overview_head(report.overview), overview_cells(report.overview)), ""]
    for group in report.groups:
        lines += [f"## {group_title(group)}", ""]
        arms, tuned = _in_group(report.arms, group), _tuned(report, group)
        if tuned:
            lines += [ARMS_TEXT, "", md_table(ARMS_HEAD, arms_cells(arms)), "", tuning_text(tuned), "",
                      md_table(TUNING_HEAD, tuning_cells(tuned)), ""]
        lines += [md_table(SUMMARY_HEAD, summary_cells(_in_group(report.summary, group)))]
        rows = _in_group(report.paired, group)
        if labels_only(report, group):
            lines += ["", labels_only(report, group)]
        elif rows:
            lines += [""] + [f"**{line}**" if not line.startswith("Note") else f"*{line}*"
                             for line in answer_lines(report, group)]
            lines += ["", md_table(PAIRED_HEAD, paired_cells(rows))]
        lines += [""] + [f"![{png.stem}]({png.name})" for png in report.figures.get(group, [])] + [""]
    if report.relearn_summary:
        lines += ["## Relearning attack", "", RELEARN_TEXT, "",
                  md_table(RELEARN_HEAD, relearn_cells(report.relearn_summary)), ""]
    if report.failures:
        lines += ["## Failed cells", ""] + [f"- cell {f.get('index')} `{f.get('name')}`: {f.get('error')}"
                                             for f in report.failures] + [""]
    return "\n".join(lines)



STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;display:block;margin:1em 0;border:1px solid #eee}
p.method{font-size:13px;color:#555} p.answer{font-weight:600}
"""


def to_html(report: Report, generated: str) -> str:
    e = html.escape
    body = [f"<h1>Sweep report: {e(str(report.runs_dir))}</h1>",
            f"<p>{e(overview(report))} Latest run finished {e(generated)}.</p>",
            f"<p class='method'>{e(METHODS_TEXT)}</p>"]
    if report.overview:
        text = overview_text(report.overview) + (" " + FLOOR_TEXT if has_floor(report.overview) else "")
        body += ["<h2>Overview: closer to the reference?</h2>", f"<p class='method'>{e(text)}</p>"]
        if report.forest:
            body.append(f"<img alt='forest plot' src='{quote(report.forest.name)}'>")
        body.append(_html_table(overview_head(report.overview), overview_cells(report.overview), "overview"))
    for group in report.groups:
        body.append(f"<h2>{e(group_title(group))}</h2>")
        arms, tuned = _in_group(report.arms, group), _tuned(report, group)
        if tuned:
            body += [f"<p class='method'>{e(ARMS_TEXT)}</p>", _html_table(ARMS_HEAD, arms_cells(arms), "arms"),
                     f"<p class='method'>{e(tuning_text(tuned))}</p>",
                     _html_table(TUNING_HEAD, tuning_cells(tuned), "tuning")]
        body.append(_html_table(SUMMARY_HEAD, summary_cells(_in_group(report.summary, group)), "summary"))
        rows = _in_group(report.paired, group)
        if labels_only(report, group):
            body.append(f"<p>{e(labels_only(report, group))}</p>")
        elif rows:
            body += [f"<p class='answer'>{e(line)}</p>" for line in answer_lines(report, group)]
            body.append(_html_table(PAIRED_HEAD, paired_cells(rows), "paired"))
        for png in report.figures.get(group, []):
            body.append(f"<img alt='{e(png.stem)}' src='{quote(png.name)}'>")  # the PNG next to report.html
    if report.relearn_summary:
        body += ["<h2>Relearning attack</h2>", f"<p class='method'>{e(RELEARN_TEXT)}</p>",
                 _html_table(RELEARN_HEAD, relearn_cells(report.relearn_summary), "relearn")]
    if report.failures:
        items = "".join(f"<li>cell {e(str(f.get('index')))} <code>{e(str(f.get('name')))}</code>: "
                        f"{e(str(f.get('error')))}</li>" for f in report.failures)
        body.append(f"<h2>Failed cells</h2><ul>{items}</ul>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>softtargets report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def _html_table(head: list[str], rows: list[list[str]], css: str) -> str:
    e = html.escape
    header = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td><strong>{e(c)}</strong></td>" if isinstance(c, Bold) else f"<td>{e(c)}</td>"
                                    for c in cells) + "</tr>" for cells in rows)
    return f"<table class='{css}'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
