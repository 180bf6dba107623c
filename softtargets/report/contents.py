"""What a report holds: the runs, their statistics and comparisons, the audits, the figures. report/build.py
computes it, report/render.py writes it as markdown and HTML."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from softtargets.report.aggregate import QualityRecord, RunRecord


@dataclass
class Report:
    runs_dir: Path
    records: list[RunRecord]
    summary: list[dict]
    paired: list[dict]
    failures: list[dict]
    answers: list[dict] = field(default_factory=list)  # one line per comparison: which arm is closer, by Holm p
    unfinished: list[Path] = field(default_factory=list)  # hidden work folders: runs in progress or killed
    quality: list[QualityRecord] = field(default_factory=list)  # forget-quality audits, one per arm
    overview: list[dict] = field(default_factory=list)  # per group and arm: the primary comparison and F
    figures: dict[tuple, list[Path]] = field(default_factory=dict)  # group -> PNGs
    forest: Path | None = None  # the overview's mean differences
    arms: list[dict] = field(default_factory=list)  # per group and arm: JS, fraction closed, accuracies (report/arms)
    tuning: list[dict] = field(default_factory=list)  # a tuned sweep's tuning.csv rows (softtargets/tuning.py)
    relearn: list[dict] = field(default_factory=list)  # relearning attacks, one row per attack, set and k
    relearn_summary: list[dict] = field(default_factory=list)  # per group and arm, against the baseline arm
    path: Path | None = None

    @property
    def groups(self) -> list[tuple]:
        return sorted({r.group for r in self.records})

    def status_counts(self) -> Counter:
        return Counter(r.status for r in self.records)
