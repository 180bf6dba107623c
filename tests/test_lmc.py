"""Linear mode connectivity (metrics/lmc.py), `run --lmc` and `lmc --run`; the SVC MIA-efficacy."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from softtargets.config import load_config
from softtargets.experiment import prepare
from softtargets.metrics.lmc import barrier, interpolate_state, lmc_path
from softtargets.metrics.mia import svc_mia_efficacy, svc_predict, true_class_confidence


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


def test_svc_predict_gives_libsvms_labels_on_and_beside_the_boundary():
    """The vectorised prediction of the SVC MIA returns clf.predict's labels exactly: on random confidences, on
    the training points, and at the decision boundary itself (where the sign is decided by libsvm's own
    rounding, so those examples must go to clf.predict)."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    members, nonmembers = 1 - rng.exponential(0.05, 400).clip(0, 1), 1 - rng.exponential(0.3, 400).clip(0, 1)
    x = np.r_[members, nonmembers]
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x.reshape(-1, 1), np.r_[np.ones(400), np.zeros(400)])
    grid = np.linspace(0, 1, 20001)
    f = clf.decision_function(grid.reshape(-1, 1))
    crossings = np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:]))
    assert len(crossings) >= 1
    boundary = []
    for i in crossings:  # bisect each sign change down to adjacent doubles
        lo, hi = grid[i], grid[i + 1]
        while np.nextafter(lo, hi) != hi:
            mid = (lo + hi) / 2
            if (clf.decision_function([[mid]])[0] > 0) == (f[i] > 0):
                lo = mid
            else:
                hi = mid
        boundary += [np.nextafter(lo, -1), lo, hi, np.nextafter(hi, 2)]
    queries = np.r_[rng.uniform(0, 1, 3000), x, boundary]
    calls = []
    libsvm = clf.predict
    clf.predict = lambda q: calls.append(len(q)) or libsvm(q)
    got = svc_predict(clf, queries)
    assert np.array_equal(got, libsvm(queries.reshape(-1, 1)))
    assert len(boundary) <= sum(calls) < 100  # the boundary examples, and few others, went to libsvm
