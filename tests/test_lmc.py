"""Linear mode connectivity (metrics/lmc.py), `run --lmc` and `lmc --run`; the SVC MIA-efficacy."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from softtargets.config import load_config
from softtargets.experiment import prepare
from softtargets.metrics.lmc import barrier, interpolate_state, lmc_path
from softtargets.metrics.mia import svc_mia_efficacy, true_class_confidence


def test_interpolation_and_barrier_by_hand():
    a = {"w": torch.tensor([0.0, 2.0]), "steps": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 6.0]), "steps": torch.tensor(9)}
    mid = interpolate_state(a, b, 0.25)
    assert mid["w"].tolist() == [1.0, 3.0] and mid["steps"].item() == 3  # integer buffers from a
    # line from 0.9 to 0.7 is 0.8 at a = 0.5; accuracy there is 0.5: barrier 0.3
    assert barrier([0, 0.5, 1], [0.9, 0.5, 0.7]) == pytest.approx(0.3)
    assert barrier([0, 0.5, 1], [0.9, 0.85, 0.7]) == 0.0  # above the line: no barrier


def test_lmc_endpoints_are_the_two_models_accuracies(fast):
    prepared = prepare(load_config(overrides=fast))
    path = lmc_path(prepared.original, prepared.reference, prepared.data, prepared.split)
    assert len(path["alpha"]) == 21 and path["alpha"][1] == pytest.approx(0.05)
    for split in ("retain", "forget", "test"):
        assert path[f"acc_{split}"][0] == pytest.approx(prepared.metrics["original"][f"acc_{split}"])
        assert path[f"acc_{split}"][-1] == pytest.approx(prepared.metrics["reference"][f"acc_{split}"])
        assert path[f"barrier_{split}"] >= 0


def test_run_with_lmc_then_lmc_of_the_saved_run(cli, fast):
    args = ["--forget", "class:3", "--mu_algo", "gradasc", "--epochs", "2", "--unlearn-epochs", "1", "--out",
            fast["out"], "--cache-dir", fast["cache_dir"], "--device", "cpu", "--tracker", "none"]
    code, out, err = cli("-q", "run", *args, "--lmc")
    assert code == 0, err
    (run,) = Path(fast["out"]).glob("digits-mlp-gradasc-hard-seed0-*")
    result = json.loads((run / "result.json").read_text())
    paths = json.loads((run / "lmc.json").read_text())
    assert (run / "lmc.png").read_bytes()[:4] == b"\x89PNG" and (run / "model.pt").is_file()
    unlearned = result["metrics"]["unlearned"]
    assert paths["original_to_unlearned"]["acc_forget"][-1] == pytest.approx(unlearned["acc_forget"])
    assert result["lmc"]["original_to_reference"]["barrier_test"] == paths["original_to_reference"]["barrier_test"]
    code, out, err = cli("-q", "lmc", "--run", str(run), "--out", fast["out"], "--tracker", "none")
    assert code == 0, err
    again = json.loads((Path(fast["out"]) / f"lmc-{run.name}" / "result.json").read_text())
    assert again["lmc"] == result["lmc"]  # the saved weights reproduce the run's model exactly


def test_svc_mia_efficacy_by_hand():
    members, nonmembers = np.full(20, 0.99), np.full(20, 0.2)
    forget = np.array([0.99, 0.2, 0.2, 0.25])  # one looks like a member
    assert svc_mia_efficacy(members, nonmembers, forget) == pytest.approx(3 / 4)
    logits = torch.tensor([[0.0, np.log(3.0)], [np.log(3.0), 0.0]])
    assert true_class_confidence(logits, torch.tensor([1, 1])).tolist() == pytest.approx([0.75, 0.25])
