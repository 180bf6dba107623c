"""The relearning attack (metrics/relearn.py, audit.relearn) and its CLI."""

import json
from pathlib import Path

import pytest
import torch

from softtargets.config import load_config
from softtargets.data.batches import DeviceData
from softtargets.data.datasets import load_dataset
from softtargets.data.splits import make_split
from softtargets.errors import SoftTargetsError
from softtargets.metrics import relearn as rl


def test_relearn_sets_hold_the_base_set_plus_the_first_k_of_the_pool():
    bundle = load_dataset("digits")
    data = DeviceData(bundle, torch.device("cpu"))
    split = make_split("random:0.1", bundle.train_y, bundle.num_classes, 0)
    pool, held = rl.forget_partition(len(split.forget_idx), 10, seed=0)
    assert len(pool) == 10 and len(held) == len(split.forget_idx) - 10
    assert not set(pool.tolist()) & set(held.tolist())
    only = rl.relearn_set("only_forget", 3, data, split, pool)
    assert torch.equal(only.x, data.train_x[split.forget_idx[pool[:3]]])
    assert len(rl.relearn_set("only_forget", 0, data, split, pool)) == 0
    assert len(rl.relearn_set("retain", 5, data, split, pool)) == len(split.retain_idx) + 5
    assert len(rl.relearn_set("test", 5, data, split, pool)) == len(bundle.test_y) + 5


def test_recovery_numbers_by_hand():
    steps, acc = [0, 10, 20, 30], [0.0, 0.2, 0.6, 0.8]
    # trapezoids: (0 + .2)/2*10 + (.2 + .6)/2*10 + (.6 + .8)/2*10 = 1 + 4 + 7 = 12, over 30 steps
    assert rl.recovery_auc(steps, acc) == pytest.approx(12 / 30)
    assert rl.steps_to_recover(steps, acc, 0.5) == 20
    assert rl.steps_to_recover(steps, acc, 0.9) is None
    assert rl.recovery_auc([0], [0.3]) == 0.3  # no attack: the starting accuracy


@pytest.mark.parametrize("types, ks, n_forget, message", [
    (["retain", "bogus"], [0], 50, "unknown relearn type 'bogus'"),
    (["retain"], [0, -1], 50, "--k must be >= 0"),
    (["retain"], [0, 50], 50, "--k 50 needs more than 50 forget examples"),
])
def test_bad_attack_inputs_are_named(types, ks, n_forget, message):
    with pytest.raises(SoftTargetsError, match=message):
        rl.check_settings(types, ks, rl.RelearnSettings(), n_forget)


def test_reference_does_not_recover_what_weak_gradient_ascent_only_hid(fast):
    """Forget class 3 with one epoch of gradient ascent: forget accuracy drops to the reference's 0, but the
    knowledge is dormant. Fine-tuning on the test set (which never shows a held-out forget image) brings it
    back for the unlearned model; the retrained reference, which never learned class 3 from these images,
    stays far lower."""
    from softtargets.audit import relearn

    cfg = load_config(overrides={**fast, "training.epochs": 5, "unlearning.method": "gradasc",
                                 "unlearning.epochs": 1, "unlearning.lr": 1e-3, "data.forget": "class:3"})
    settings = rl.RelearnSettings(steps=100, lr=1e-4, batch_size=64, eval_every=25)
    result = relearn(cfg, types=("test",), ks=(0,), settings=settings, tracking={"kind": "none"})
    unlearned, reference = result["summary"]["unlearned"]["test"]["0"], result["summary"]["reference"]["test"]["0"]
    assert unlearned["start"] <= 0.1 and reference["start"] <= 0.1  # both look forgotten before the attack
    assert unlearned["end"] >= 0.3  # recovered without seeing a held-out forget image
    assert reference["end"] <= 0.15
    assert unlearned["auc"] > reference["auc"] + 0.1
    folder = Path(result["path"])
    saved = json.loads((folder / "result.json").read_text())
    assert saved["curves"]["unlearned"]["test"]["0"]["step"] == [0, 25, 50, 75, 100]
    for png in ("relearn_curves.png", "relearn_auc.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"


def test_relearn_cli_rejects_bad_input_with_one_line(cli, fast):
    for args, message in ((["--type", "retain,nope"], "unknown relearn type 'nope'"),
                          (["--k", "0,-5"], "--k '0,-5' must list integers >= 0")):
        code, out, err = cli("relearn", *args, "--out", fast["out"], "--tracker", "none")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_relearn_run_folder_without_weights_is_a_user_error(cli, tmp_path):
    (tmp_path / "result.json").write_text("{}")
    code, out, err = cli("relearn", "--run", str(tmp_path), "--tracker", "none")
    assert code == 2 and "has no model.pt" in err
