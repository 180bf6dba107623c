"""The run folder: config.yaml, result.json, metrics.jsonl, plots. Built in a hidden temporary folder and
renamed into place when complete, so an interrupted run never leaves a folder that looks finished."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import yaml

from softtargets.evaluation import clean_json
from softtargets.hooks import Hooks


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunFolder(Hooks):
    """Collects one run's files; Hooks.scalars rows go to metrics.jsonl as they arrive."""

    def __init__(self, out: str | Path, name: str):
        self.final = Path(out) / name
        self.path = Path(out) / f".{name}.incomplete-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path.mkdir(parents=True)
        self._metrics = open(self.path / "metrics.jsonl", "a")

    def scalars(self, series: str, step: int, values: dict[str, float]) -> None:
        row = clean_json({"series": series, "step": step, **values})
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def write_yaml(self, name: str, data: dict) -> None:
        write_text_atomic(self.path / name, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: dict) -> None:
        write_text_atomic(self.path / name, json.dumps(clean_json(data), indent=2) + "\n")

    def finish(self, result: dict) -> Path:
        """Write result.json last, then move the folder into place (replacing an older run of the same name)."""
        self._metrics.close()
        self.write_json("result.json", result)
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old-{uuid.uuid4().hex[:6]}")
            os.replace(self.final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(self.path, self.final)
        return self.final

    def abandon(self) -> None:
        """Remove the temporary folder of a run that failed before finishing."""
        self._metrics.close()
        shutil.rmtree(self.path, ignore_errors=True)
