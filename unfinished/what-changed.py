"""What publishing a cell changed in a published study's numbers: run after scripts/publish-finished-cells.py, before
rewriting the text that quotes them (README "Results", docs/studies.md).

    .venv/bin/python unfinished/what-changed.py docs/results/study2 [REV]

Compares the folder's CSVs with git revision REV (default HEAD) and prints: the rows each CSV gained; every Holm
family that grew; every adjusted p (p_holm, gap_p_holm) of a row already published that changed, marked where it
crossed 0.05, so that each sentence quoting one can be checked; and the counts the text quotes (runs, arms, arms
more than 0.05 below the reference's retain accuracy). Reads only; deleted with this folder's last archive.
"""

from __future__ import annotations

import csv
import io
import lzma
import subprocess
import sys
from pathlib import Path

KEYS = ("dataset", "architecture", "method", "setting", "forget", "arm", "comparison", "metric", "seed")
ADJUSTED = ("p_holm", "gap_p_holm")


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def at_revision(path: Path, rev: str) -> str | None:
    done = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True)
    if done.returncode:
        return None
    return (lzma.decompress(done.stdout) if path.suffix == ".xz" else done.stdout).decode()


def key(row: dict) -> tuple:
    return tuple(row.get(k, "") for k in KEYS)


def main(folder: Path, rev: str = "HEAD") -> None:
    for path in sorted(folder.glob("*.csv")) + sorted(folder.glob("*.csv.xz")):
        now = rows(lzma.open(path, "rt").read() if path.suffix == ".xz" else path.read_text())
        before = rows(at_revision(path, rev) or "")
        print(f"{path.name}: {len(before)} -> {len(now)} rows")
        families = sorted({r["holm_family"] for r in before if r.get("holm_family")} ^
                          {r["holm_family"] for r in now if r.get("holm_family")})
        for family in families:
            print(f"  family: {family}")
        old = {key(r): r for r in before}
        for row in now:
            was = old.get(key(row))
            for column in ADJUSTED:
                if not was or not row.get(column) or not was.get(column) or row[column] == was[column]:
                    continue
                a, b = float(was[column]), float(row[column])
                crossed = "  CROSSED 0.05" if (a < 0.05) != (b < 0.05) else ""
                label = " / ".join(v for v in key(row) if v)
                print(f"  {column} {a:.3g} -> {b:.3g}{crossed}: {label}")
    arms = rows((folder / "arms.csv").read_text())
    lost = [r for r in arms if float(r["acc_retain_reference"]) - float(r["acc_retain"]) > 0.05]
    print(f"arms: {len(arms)}; more than 0.05 below the reference's retain accuracy: {len(lost)}")
    for r in lost:
        print(f"  {r['dataset']} {r['architecture']} {r['forget']} {r['method']} {r['arm']}: "
              f"{float(r['acc_retain']):.3f} against {float(r['acc_retain_reference']):.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
