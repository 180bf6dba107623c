"""Per-arm tuning: each arm's settings chosen on tuning seeds disjoint from the evaluation seeds.

A comparison of target kinds is fair only if every arm had the same chance: one learning rate shared by all arms
favours whichever kind that rate happens to suit. So each arm (one cell of a grid without its seed) runs every
candidate setting (the Cartesian product of its `tune` values) on the tuning seeds; the candidate with the lowest
mean primary metric (js_forget_to_reference by default; a candidate counts only if every tuning seed completed with
a finite value) is the arm's setting for the evaluation seeds. Ties go to the earlier candidate in grid order. With
max_test_drop (tune: {max_test_drop: 0.05}) a candidate also counts only if it keeps its utility: its mean test
accuracy on the kept classes (acc_test_retain_classes under class forgetting, where the reference is wrong on every
image of a forgotten class by design; acc_test otherwise) over the tuning seeds at most that far below the retrained
reference's mean, so that forgetting bought by wrecking the model is not chosen (JS alone can prefer it). An arm
none of whose candidates keeps it has no setting: its evaluation cells are not run, the other arms' are, and the
sweep names the arm, says by how much its best candidate missed and exits 1. Every candidate's score and the choice
are recorded (tuning.csv: Arm.rows), so a reader sees each arm's budget and where its optimum lies.

Only the tuning runs decide; the evaluation seeds never influence a choice. This module is pure bookkeeping
(no torch): sweep/grid.py makes the runs, report/ shows the record.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softtargets.errors import SoftTargetsError, brief

TUNING_FOLDER = "tuning"  # OUT/tuning/<run name>: the tuning runs, kept apart from the evaluation runs
TUNING_CSV = "tuning.csv"
DEFAULT_METRIC = "js_forget_to_reference"
SHOWN = ("acc_forget", "acc_retain", "acc_test")  # also averaged per candidate, for the Pareto figure


@dataclass
class Arm:
    """One arm to tune: its evaluation settings (without seed), its candidates, and their results."""

    label: dict  # dataset, architecture, method, forget: how the record names it
    candidates: list[dict]  # dotted key -> value, in grid order
    arm_labels: list[str]  # per candidate, its runs' arm label (report/aggregate.arm_label)
    seeds: list[int]
    metric: str = DEFAULT_METRIC
    max_test_drop: float | None = None  # None: no utility condition
    results: list[list[dict | None]] = field(default_factory=list)  # per candidate, per seed: result.json or None
    finished: bool = False  # every tuning run of this arm has a result (completed or diverged)

    def rows(self) -> list[dict]:
        """tuning.csv rows: one per candidate, with its score and whether it was chosen. The arm is named as its
        evaluation runs are (the chosen candidate's arm label, e.g. "smooth e=-0.2" when a is tuned)."""
        chosen = self.chosen()
        arm = self.arm_labels[chosen if chosen is not None else 0]
        rows = []
        for i, (candidate, results) in enumerate(zip(self.candidates, self.results)):
            score, values = summarise(results, self.metric)
            rows.append({**self.label, "arm": arm, "params": candidate,
                         "tuning_seeds": " ".join(map(str, self.seeds)), "budget": len(self.candidates),
                         "completed": sum(_value(r, self.metric) is not None for r in results),
                         "metric": self.metric, "score": score, **values,
                         "reference.acc_forget": _mean([_reference(r, "acc_forget") for r in results]),
                         "reference.acc_test": _mean([_reference(r, "acc_test") for r in results]),
                         **({"max_test_drop": self.max_test_drop, "test_drop": self.test_drop(i),
                             "admissible": self.admissible(i)} if self.max_test_drop is not None else {}),
                         "chosen": i == chosen})
        return rows

    def chosen(self) -> int | None:
        """The index of the admissible candidate with the lowest mean metric; None when none completed (or, with
        max_test_drop, none kept its test accuracy)."""
        return choose([summarise(results, self.metric)[0] if self.admissible(i) else None
                       for i, results in enumerate(self.results)])

    def test_drop(self, index: int) -> float | None:
        """How far a candidate's mean test accuracy on the kept classes over the tuning seeds lies below the
        reference's mean (the reference of each tuning seed); None unless every seed completed."""
        results = self.results[index]
        unlearned = [_value(r, _kept(r, "unlearned")) for r in results]
        reference = [_reference(r, _kept(r, "reference")) for r in results]
        if not results or any(v is None for v in unlearned + reference):
            return None
        return sum(reference) / len(reference) - sum(unlearned) / len(unlearned)

    def admissible(self, index: int) -> bool:
        """Whether a candidate may be chosen: always without max_test_drop; with it, only if its test_drop is
        known and at most max_test_drop."""
        if self.max_test_drop is None:
            return True
        drop = self.test_drop(index)
        return drop is not None and drop <= self.max_test_drop

    def why_none(self) -> str:
        """Why chosen() is None, in words, for the error that stops the arm's evaluation: no candidate completed
        every tuning seed, or none has a finite metric on each, or (max_test_drop) none of those kept its test
        accuracy, or none of those has the test accuracy the condition needs."""
        scored = [i for i, results in enumerate(self.results) if summarise(results, self.metric)[0] is not None]
        if not scored:
            completed = any(results and all(r and r.get("status") == "completed" for r in results)
                            for results in self.results)
            return (f"no candidate has a finite {self.metric} on every tuning seed" if completed
                    else "no candidate completed on every tuning seed")
        if self.max_test_drop is None:
            return "a candidate is choosable"  # chosen() is not None: nothing to explain
        drops = [d for d in (self.test_drop(i) for i in scored) if d is not None]
        if not drops:
            return ("no candidate has its test accuracy on the kept classes on every tuning seed, which "
                    "max_test_drop needs")
        return (f"no candidate kept its mean test accuracy (kept classes) within max_test_drop "
                f"{self.max_test_drop:g} of the reference's (the smallest drop: {min(drops):.3f})")


def candidates(params: dict[str, list]) -> list[dict]:
    """Every combination of the tuned values, the last key varying fastest."""
    keys = list(params)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(params[k] for k in keys))]


def check_test_drop(value: Any, where: str) -> float | None:
    """A tuning's max_test_drop: None (no condition) or a number from 0 to 1 (test accuracy is a fraction)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SoftTargetsError(f"{where} must be a number from 0 to 1 (a fraction of test accuracy, e.g. 0.05), "
                               f"got {brief(value)}")
    return float(value)


def choose(scores: list[float | None]) -> int | None:
    """The index of the lowest finite score (the earliest among equals); None when there is none."""
    finite = [(s, i) for i, s in enumerate(scores) if s is not None and math.isfinite(s)]
    return min(finite)[1] if finite else None


def summarise(results: list[dict | None], metric: str) -> tuple[float | None, dict]:
    """A candidate's score, the mean of the metric over its tuning seeds (None unless every seed completed with
    a finite value), and the means of SHOWN."""
    values = [_value(r, metric) for r in results]
    score = None if not values or any(v is None for v in values) else sum(values) / len(values)
    return score, {f"unlearned.{name}": _mean([_value(r, name) for r in results]) for name in SHOWN}


def _value(result: dict | None, metric: str) -> float | None:
    if not result or result.get("status") != "completed":
        return None
    value = (result.get("metrics", {}).get("unlearned") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _kept(result: dict | None, model: str) -> str:
    """The test accuracy of the classes a model keeps: acc_test_retain_classes where the run forgot classes (it has
    that metric), acc_test where it forgot images of every class."""
    metrics = ((result or {}).get("metrics", {}).get(model)) or {}
    return "acc_test_retain_classes" if "acc_test_retain_classes" in metrics else "acc_test"


def _reference(result: dict | None, metric: str) -> float | None:
    value = ((result or {}).get("metrics", {}).get("reference") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return sum(finite) / len(finite) if finite else None


def read_result(folder: Path) -> dict | None:
    """A finished run's result.json, or None."""
    path = folder / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None
