"""The relearning attacks of a runs folder (`softtargets relearn`, or a grid with `command: relearn`) in a report:
one relearn.csv row per attack, relearn set and k, and per arm the mean recovery with a paired test against the
group's baseline arm (hard, or masked_pseudo where the method refuses hard).

What is compared: the recovery AUC of the unlearned model's held-out forget accuracy over the attack
(metrics.relearn.recovery_auc; lower = less knowledge came back). The reference's curve is the same for every arm
of a seed (same reference, relearn set and attack), so the paired difference of the arms' AUCs equals the
difference of their AUCs above the reference's. The test is the report's sign-flip permutation test over seeds;
all relearn comparisons of a report are one Holm family.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.metrics.headline import ALPHA
from softtargets.report.aggregate import arm_label, find_run_folders, read_csv
from softtargets.report.arms import BASELINES
from softtargets.report.comparison import fmt, fmt_diff, fmt_p, fmt_p_min
from softtargets.report.stats import holm, paired

log = logging.getLogger(__name__)
RELEARN_CSV = "relearn.csv"
GROUP = ("dataset", "architecture", "method", "forget", "type", "k")
SUMMARY_FIELDS = [*GROUP, "arm", "baseline", "n", "auc_unlearned", "auc_reference", "auc_minus_reference",
                  "start_unlearned", "end_unlearned", "end_reference", "share_past_reference", "mean_diff", "ci_low", "ci_high", "p",
                  "p_min", "p_holm", "effect_dz", "better"]


def relearn_rows(folder: Path) -> list[dict]:
    """One row per relearn set and k of the attack in folder ([] for any other folder)."""
    try:
        result = json.loads((folder / "result.json").read_text())
        if not isinstance(result, dict) or result.get("command") != "relearn":
            return []
        import yaml

        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        identity = {"name": result.get("name", folder.name), "dataset": result["dataset"],
                    "architecture": result["architecture"], "method": result["method"],
                    "arm": arm_label(config["targets"]), "seed": result["seed"],
                    "status": result.get("status", "completed"), "forget": config["data"]["forget"]}
        rows = []
        for relearn_type, by_k in result["summary"]["unlearned"].items():
            for k, u in by_k.items():
                r = result["summary"]["reference"][relearn_type][k]
                rows.append({**identity, "type": relearn_type, "k": int(k), "auc_unlearned": u["auc"],
                             "auc_reference": r["auc"], "auc_minus_reference": u["auc_minus_reference"],
                             "start_unlearned": u["start"], "end_unlearned": u["end"], "end_reference": r["end"],
                             "steps_past_reference": u["steps_past_reference"],
                             "steps_to_recover": u["steps_to_recover"],
                             "original_held_out_forget_acc": result["original_held_out_forget_acc"],
                             "held_out_forget": result["held_out_forget"], "settings": result["settings"],
                             "unlearn_lr": config["unlearning"]["lr"], "finished_at": result.get("finished_at", ""),
                             "config": config})
        return rows
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("skipping %s: not a relearn folder softtargets can read (%s: %s)", folder, type(err).__name__, err)
        return []


def load_relearn(source: Path) -> list[dict]:
    """The relearn rows of a runs folder (its relearn folders; the latest of an attack found twice), or of a
    results folder / runs.csv.xz a report wrote (its relearn.csv)."""
    source = Path(source)
    folder = source.parent if source.is_file() else source
    if source.is_dir() and find_run_folders(source):
        latest: dict[tuple, dict] = {}
        for run in find_run_folders(source):
            for row in relearn_rows(run):
                key = (row["name"], row["type"], row["k"])
                if key not in latest or row["finished_at"] > latest[key]["finished_at"]:
                    latest[key] = row
        rows = list(latest.values())
    else:
        rows = read_csv(folder / RELEARN_CSV) if (folder / RELEARN_CSV).is_file() else []
    return sorted(rows, key=lambda r: (*(str(r[g]) for g in GROUP[:5]), r["k"], r["arm"], int(r["seed"])))


def relearn_summary(rows: list[dict]) -> list[dict]:
    """Per group (dataset, architecture, method, forget, relearn set, k) and arm: the mean recovery of the
    seeds, and against the group's baseline arm the paired difference in AUC (same seeds), Holm-adjusted over
    every comparison here."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = {}
    for r in rows:
        seeds = groups.setdefault(tuple(r[g] for g in GROUP), {}).setdefault(r["arm"], {})
        other = seeds.get(int(r["seed"]))
        if other is not None and other["name"] != r["name"] and other["auc_unlearned"] != r["auc_unlearned"]:
            raise SoftTargetsError(
                f"relearning attacks {other['name']} and {r['name']} are both arm '{r['arm']}', seed {r['seed']}, "
                f"{r['type']} k = {r['k']} of {' / '.join(str(r[g]) for g in GROUP[:4])}, with different results "
                "(another unlearning setting or attack?): the report cannot tell them apart; report them from "
                "separate folders")
        seeds[int(r["seed"])] = r
    out = []
    for key, arms in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        baseline = next((b for b in BASELINES if b in arms), None)
        for arm in sorted(arms, key=lambda a: (a != baseline, a)):
            runs = arms[arm]
            row = {**dict(zip(GROUP, key)), "arm": arm, "baseline": baseline or "", "n": len(runs)}
            for field in ("auc_unlearned", "auc_reference", "auc_minus_reference", "start_unlearned", "end_unlearned",
                          "end_reference"):
                row[field] = sum(r[field] for r in runs.values()) / len(runs)
            row["share_past_reference"] = sum(r["steps_past_reference"] is not None for r in runs.values()) / len(runs)
            if baseline and arm != baseline:
                seeds = sorted(set(runs) & set(arms[baseline]))
                stat = paired([arms[baseline][s]["auc_unlearned"] for s in seeds],
                              [runs[s]["auc_unlearned"] for s in seeds])
                row.update({k: stat[k] for k in ("mean_diff", "ci_low", "ci_high", "p", "p_min", "effect_dz")})
            out.append(row)
    tested = [r for r in out if "p" in r]
    for r, p in zip(tested, holm([r["p"] for r in tested])):
        r["p_holm"] = p
        r["better"] = "" if not p < ALPHA else ("arm resists" if r["mean_diff"] < 0 else "baseline resists")
    return out


RELEARN_TEXT = (
    "Relearning attack (Siddiqui et al. 2025): the unlearned model and the retrained reference are fine-tuned on "
    "a relearn set plus k forget examples, and accuracy on held-out forget examples (never relearned) is "
    "recorded. AUC: the mean of that accuracy over the attack (lower = less came back; it counts what the arm "
    "never forgot as well as what came back, so read it with the start and end accuracy); 'past ref': the share of "
    "seeds whose unlearned model at some point exceeded the best the reference reached in its whole attack "
    "(knowledge it kept). Each arm is compared with the baseline arm on the same seeds: the mean difference in "
    "AUC (arm - baseline; negative = the arm resists relearning better) with the sign-flip permutation test's "
    "interval and p, Holm-adjusted over every relearn comparison of this report.")
RELEARN_HEAD = ["group", "relearn set", "k", "arm", "n", "AUC unlearned", "AUC reference", "unlearned: start -> end",
                "past ref", "AUC - baseline [95% CI]", "p", "Holm p"]


def relearn_cells(rows: list[dict]) -> list[list[str]]:
    def group(r: dict) -> str:
        return f"{r['dataset']} / {r['architecture']} / {r['method']} ({r['forget']})"

    return [[group(r), r["type"], str(r["k"]), r["arm"], str(r["n"]), fmt(r["auc_unlearned"]), fmt(r["auc_reference"]),
             f"{fmt(r['start_unlearned'], 3)} -> {fmt(r['end_unlearned'], 3)}", f"{r['share_past_reference']:.0%}",
             fmt_diff(r["mean_diff"], r["ci_low"], r["ci_high"]) if "p" in r else "(baseline)",
             fmt_p_min(r) if "p" in r else "", fmt_p(r["p_holm"]) if "p" in r else ""] for r in rows]
