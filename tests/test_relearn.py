"""The relearning attack (metrics/relearn.py, audit.relearn) and its CLI."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from softtargets.config import load_config
from softtargets.data.batches import DeviceData
from softtargets.data.datasets import load_dataset
from softtargets.data.splits import make_split
from softtargets.errors import SoftTargetsError
from softtargets.metrics import relearn as rl


def test_pool_is_the_first_fifth_and_the_held_out_set_is_the_rest_whatever_k():
    order = rl.forget_order(145, "random", seed=0)
    pool, held = rl.partition(order)
    assert len(pool) == 29 and len(held) == 116  # int(0.2 x 145), vision_unlearner.py:1377-1378
    assert sorted(torch.cat([pool, held]).tolist()) == list(range(145))
    assert torch.equal(rl.forget_order(145, "random", seed=0), order)  # seeded
    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.3])
    assert rl.forget_order(5, "high_mem", 0, scores).tolist() == [1, 3, 0, 4, 2]  # ties in forget-set order
    assert rl.forget_order(5, "low_mem", 0, scores).tolist() == [2, 4, 0, 1, 3]


def test_k_grid_is_the_papers_up_to_the_pool_and_rejects_what_does_not_fit():
    grid = rl.k_grid(["retain", "only_forget"], None, 145)  # pool 29
    assert grid == {"retain": [0, 1, 5, 10], "only_forget": [1, 5, 10]}
    assert rl.k_grid(["test"], None, 1000)["test"] == [0, 1, 5, 10, 50, 100]
    assert rl.k_grid(["test"], [5, 0], 145) == {"test": [0, 5]}
    with pytest.raises(SoftTargetsError, match=r"--k 50 exceeds the relearn pool: .* \(29 of 145\)"):
        rl.k_grid(["test"], [0, 50], 145)
    with pytest.raises(SoftTargetsError, match="needs at least one forget example in the pool"):
        rl.k_grid(["only_forget"], None, 4)


def split_data(spec: str):
    bundle = load_dataset("digits")
    return bundle, DeviceData(bundle, torch.device("cpu")), make_split(spec, bundle.train_y, bundle.num_classes, 0)


def test_relearn_sets_hold_their_base_set_plus_the_first_k_of_the_pool():
    bundle, data, split = split_data("class:0:0.3")
    pool, _ = rl.partition(rl.forget_order(len(split.forget_idx), "random", 0))
    mix = rl.retained_class(split, bundle.train_y)
    corrupted = rl.jpeg_corrupt(data.test_x)
    sets = {t: rl.relearn_set(t, 3, data, split, pool, corrupted, mix) for t in rl.RELEARN_TYPES}
    first3 = data.train_x[split.forget_idx[pool[:3]]]
    for t, s in sets.items():
        assert torch.equal(s.x[:3], first3) and (s.y[:3] == 0).all()
    assert len(sets["only_forget"]) == 3 and len(rl.relearn_set("only_forget", 0, data, split, pool)) == 0
    assert len(sets["retain"]) == len(split.retain_idx) + 3
    assert len(sets["test"]) == len(bundle.test_y) + 3
    assert torch.equal(sets["corrupted_test"].x[3:], corrupted) and not torch.equal(corrupted, data.test_x)
    # +retain_cls: test images of classes 1..9, then the retained train images of class 0 (ClassMixDataset)
    retained0 = split.retain_idx[bundle.train_y[split.retain_idx] == 0]
    n_test_others = int((bundle.test_y != 0).sum())
    for t in ("test+retain_cls", "corrupted_test+retain_cls"):
        s = sets[t]
        assert len(s) == 3 + len(retained0) + n_test_others
        assert torch.equal(s.x[3:3 + len(retained0)], data.train_x[retained0])
        assert (s.y[3 + len(retained0):] != 0).all()
    assert torch.equal(sets["corrupted_test+retain_cls"].x[3 + len(retained0):], corrupted[bundle.test_y != 0])
    for spec in ("class:0", "random:0.1"):  # a whole class, or several classes: nothing to mix in
        other = make_split(spec, bundle.train_y, bundle.num_classes, 0)
        with pytest.raises(SoftTargetsError, match="need a forget set inside one class that keeps some"):
            rl.retained_class(other, bundle.train_y)


def test_jpeg_corruption_is_cifar10c_severity_5_and_cifar_c_files_are_read_and_checked(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8))
    out = rl.jpeg_corrupt(rgb)
    buffer = io.BytesIO()  # by hand: make_cifar_c.py jpeg_compression(x, severity=5), quality 40
    Image.fromarray(rgb[1].permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=40)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), np.asarray(Image.open(buffer)))
    assert out.shape == rgb.shape and out.dtype == torch.uint8 and not torch.equal(out, rgb)
    gray = rl.jpeg_corrupt(rgb[:, :1])
    assert gray.shape == (4, 1, 8, 8)
    # a CIFAR-10-C style file: 5 severities of the 4 test images, [5 N, H, W, C], labels.npy beside it
    labels = torch.tensor([3, 1, 4, 1])
    severities = np.stack([rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8) for _ in range(5)]).reshape(20, 8, 8, 3)
    np.save(tmp_path / "jpeg_compression.npy", severities)
    np.save(tmp_path / "labels.npy", np.tile(labels.numpy(), 5).astype(np.uint8))
    read = rl.read_cifar_c(tmp_path / "jpeg_compression.npy", rgb, labels)
    assert np.array_equal(read.permute(0, 2, 3, 1).numpy(), severities[16:20])  # severity 5: the last N
    with pytest.raises(SoftTargetsError, match="labels differ from this test set"):
        rl.read_cifar_c(tmp_path / "jpeg_compression.npy", rgb, torch.tensor([0, 0, 0, 0]))
    with pytest.raises(SoftTargetsError, match=r"needs \(25, 8, 8, 3\)"):
        rl.read_cifar_c(tmp_path / "jpeg_compression.npy", torch.cat([rgb, rgb[:1]]), torch.cat([labels, labels[:1]]))


def test_recovery_numbers_by_hand():
    steps, acc = [0, 10, 20, 30], [0.0, 0.2, 0.6, 0.8]
    # trapezoids: (0 + .2)/2*10 + (.2 + .6)/2*10 + (.6 + .8)/2*10 = 1 + 4 + 7 = 12, over 30 steps
    assert rl.recovery_auc(steps, acc) == pytest.approx(12 / 30)
    assert rl.steps_to_recover(steps, acc, 0.5) == 20
    assert rl.steps_to_recover(steps, acc, 0.9) is None
    assert rl.recovery_auc([0], [0.3]) == 0.3  # no attack: the starting accuracy
    # judged against the reference's own curve: its best is 0.4 (its AUC: (.1+.2)/2*10 + (.2+.3)/2*10
    # + (.3+.4)/2*10 = 7.5 over 30 = 0.25); the unlearned model first exceeds 0.4 at step 20
    reference = {"step": steps, "forget_acc": [0.1, 0.2, 0.3, 0.4]}
    u = rl.summarise({"step": steps, "forget_acc": acc}, 0.9, reference)
    r = rl.summarise(reference, 0.9, reference)
    assert u["reference_peak"] == r["reference_peak"] == 0.4
    assert u["steps_past_reference"] == 20 and r["steps_past_reference"] is None
    assert u["steps_to_recover"] is None and u["auc_minus_reference"] == pytest.approx(0.4 - 0.25)
    assert r["auc_minus_reference"] == 0.0


@pytest.mark.parametrize("types, ks, message", [
    (["retain", "bogus"], [0], "unknown relearn type 'bogus'"),
    (["retain"], [0, -1], "--k must be >= 0"),
    (["retain", "only_forget"], [0, 5], "only_forget with k = 0 has nothing to train on"),
])
def test_bad_attack_inputs_are_named(types, ks, message):
    with pytest.raises(SoftTargetsError, match=message):
        rl.check_settings(types, ks, rl.RelearnSettings())


def test_attack_length_counts_epochs_over_the_whole_train_set():
    assert rl.RelearnSettings().total_steps(1437) == 10 * 12  # ceil(1437 / 128) = 12 steps an epoch
    assert rl.RelearnSettings(steps=7).total_steps(1437) == 7


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
    # against the reference's own curve: the unlearned model exceeds the best the reference ever reaches
    assert unlearned["steps_past_reference"] is not None and unlearned["steps_past_reference"] <= 100
    assert unlearned["auc_minus_reference"] > 0.1
    folder = Path(result["path"])
    saved = json.loads((folder / "result.json").read_text())
    assert saved["curves"]["unlearned"]["test"]["0"]["step"] == [0, 25, 50, 75, 100]
    for png in ("relearn_curves.png", "relearn_auc.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"


def test_relearn_cli_rejects_bad_input_with_one_line(cli, fast):
    for args, message in ((["--type", "retain,nope"], "unknown relearn type 'nope'"),
                          (["--k", "0,-5"], "--k '0,-5' must list integers >= 0"),
                          (["--type", "only_forget", "--k", "0,1"], "only_forget with k = 0"),
                          (["--type", "test", "--k", "0,100", "--forget", "class:3"],
                           "--k 100 exceeds the relearn pool"),
                          (["--type", "test+retain_cls", "--forget", "class:3"], "inside one class")):
        code, out, err = cli("relearn", *args, "--out", fast["out"], "--tracker", "none")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_relearn_run_folder_without_weights_is_a_user_error(cli, tmp_path):
    (tmp_path / "result.json").write_text("{}")
    code, out, err = cli("relearn", "--run", str(tmp_path), "--tracker", "none")
    assert code == 2 and "has no model.pt" in err


def test_held_out_result_of_a_k_does_not_depend_on_the_other_ks_requested(fast):
    from softtargets.audit import relearn

    cfg = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.epochs": 1})
    settings = rl.RelearnSettings(steps=20, lr=1e-4, batch_size=64, eval_every=10)
    few = relearn(cfg, types=("test",), ks=(0, 5), settings=settings, tracking={"kind": "none"})
    cached = Path(fast["cache_dir"]) / "relearn"
    assert len(list(cached.glob("*.pt"))) == 2  # one reference curve per k
    shutil.rmtree(cached)  # the reference's curves are computed again, not read back from the first call
    more = relearn(cfg, types=("test",), ks=(0, 5, 10), settings=settings, tracking={"kind": "none"})
    assert few["held_out_forget"] == more["held_out_forget"] == 144 - 28  # random:0.1 of digits: 144, pool 28
    for role in ("unlearned", "reference"):
        assert few["curves"][role]["test"]["5"] == more["curves"][role]["test"]["5"]


def test_relearn_cli_runs_every_relearn_set_with_memorised_examples_first(cli, fast, tmp_path):
    code, out, err = cli("--quiet", "relearn", "--forget", "class:0:0.5", "--type", ",".join(rl.RELEARN_TYPES),
                         "--k", "1", "--relearn-steps", "10", "--select", "high_mem", "--epochs", "2",
                         "--unlearn-epochs", "1", "--mu_algo", "gradasc", "--out", fast["out"], "--cache-dir",
                         fast["cache_dir"], "--device", "cpu", "--tracker", "none")
    assert code == 0, err
    result = json.loads((next(Path(fast["out"]).iterdir()) / "result.json").read_text())
    assert set(result["summary"]["unlearned"]) == set(rl.RELEARN_TYPES)
    assert result["settings"]["selection"] == "high_mem" and "JPEG quality 40" in result["settings"]["corruption"]
    assert result["pool"] == 14 and result["held_out_forget"] == 71 - 14  # half of class 0 (142 train images)
    assert "past reference" in out


def test_the_reference_curves_are_computed_once_per_seed_and_read_back_exactly(fast):
    """Two arms of one seed share the reference's attack: the second reads the first's curves from
    CACHE_DIR/relearn (bit for bit what computing gives), its own unlearned model is attacked afresh."""
    from softtargets.audit import relearn

    settings = rl.RelearnSettings(steps=20, lr=1e-4, batch_size=64, eval_every=10)
    hard = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.epochs": 1})
    first = relearn(hard, types=("retain", "test"), ks=(0, 5), settings=settings, tracking={"kind": "none"})
    memo = sorted((Path(fast["cache_dir"]) / "relearn").glob("*.pt"))
    assert len(memo) == 4  # one entry per relearn set and k
    stamps = [p.stat().st_mtime_ns for p in memo]
    soft = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.epochs": 1,
                                  "targets.kind": "soft", "targets.temperature": 2.0})
    second = relearn(soft, types=("retain", "test"), ks=(0, 5), settings=settings, tracking={"kind": "none"})
    assert [p.stat().st_mtime_ns for p in memo] == stamps  # read, not recomputed
    assert second["curves"]["reference"] == first["curves"]["reference"]
    assert second["curves"]["unlearned"] != first["curves"]["unlearned"]
    shutil.rmtree(Path(fast["cache_dir"]) / "relearn")  # computing again gives the same curves
    again = relearn(soft, types=("retain", "test"), ks=(0, 5), settings=settings, tracking={"kind": "none"},
                    out=Path(fast["out"]) / "again")
    assert again["curves"] == second["curves"]
    curve = again["curves"]["reference"]["test"]["5"]
    assert curve["step"] == [0, 10, 20] and curve["test_step"] == [0, 20] and len(curve["test_acc"]) == 2
    assert all(isinstance(s, int) for s in curve["step"])
    # another attack (other settings) does not read these curves
    other = relearn(soft, types=("test",), ks=(5,), settings=rl.RelearnSettings(steps=20, lr=1e-3, batch_size=64,
                                                                                eval_every=10),
                    tracking={"kind": "none"}, out=Path(fast["out"]) / "other")
    assert other["curves"]["reference"]["test"]["5"] != curve


def test_a_relearn_grid_attacks_each_cell_and_the_report_compares_arms_with_the_baseline(cli, fast, tmp_path):
    import yaml

    from softtargets.report.build import build_report
    from softtargets.report.build import read_table

    axes = {"dataset": ["digits"], "forget": ["class:3"], "epochs": [3], "unlearn_epochs": [1],
            "method": ["gradasc"], "unlearn_lr": [1e-3], "targets": ["hard", "pseudo"], "seed": [0, 1]}
    runs, attacks = tmp_path / "runs.yaml", tmp_path / "relearn.yaml"
    runs.write_text(yaml.safe_dump({"name": "g", "axes": axes}))
    attacks.write_text(yaml.safe_dump({"name": "g", "command": "relearn", "axes": axes,
                                       "relearn": {"types": ["test"], "k": [0], "steps": 40, "eval_every": 20,
                                                   "lr": 1e-4, "batch_size": 64}}))
    for grid in (runs, attacks):
        code, out, err = cli("--quiet", "sweep", str(grid), "--out", fast["out"], "--cache-dir", fast["cache_dir"],
                             "--tracker", "none")
        assert code == 0, err
    folders = sorted(p.name for p in Path(fast["out"]).glob("relearn-*"))
    assert len(folders) == 4 and all(p.startswith("relearn-digits-mlp-gradasc-") for p in folders)
    assert len(list((Path(fast["cache_dir"]) / "relearn").glob("*.pt"))) == 2  # one reference curve per seed
    stamps = {p: p.stat().st_mtime_ns for p in Path(fast["out"]).glob("relearn-*/result.json")}
    code, out, err = cli("--quiet", "sweep", str(attacks), "--out", fast["out"], "--cache-dir", fast["cache_dir"],
                         "--tracker", "none")
    assert code == 0, err  # done cells are not attacked again
    assert {p: p.stat().st_mtime_ns for p in Path(fast["out"]).glob("relearn-*/result.json")} == stamps

    report = build_report(fast["out"])
    rows = {(r["arm"], int(r["seed"])): r for r in report.relearn}
    assert set(rows) == {("hard", 0), ("hard", 1), ("pseudo", 0), ("pseudo", 1)}
    for (arm, seed), r in rows.items():
        result = json.loads(next(Path(fast["out"]).glob(f"relearn-*-{arm}-seed{seed}-*/result.json")).read_text())
        assert r["auc_unlearned"] == result["summary"]["unlearned"]["test"]["0"]["auc"]
    summary = read_table(report.path / "relearn_summary.csv")
    base, arm = summary
    assert (base["arm"], base["baseline"], arm["arm"]) == ("hard", "hard", "pseudo")
    assert base["auc_unlearned"] == pytest.approx((rows["hard", 0]["auc_unlearned"] + rows["hard", 1]["auc_unlearned"]) / 2)
    assert arm["mean_diff"] == pytest.approx(sum(rows["pseudo", s]["auc_unlearned"] - rows["hard", s]["auc_unlearned"]
                                                 for s in (0, 1)) / 2)
    # two pairs: the exact sign-flip p is 0.5 where both differences share a sign (2 of the 4 sign patterns reach
    # the observed |mean|), 1 where they do not (every pattern reaches it)
    d = [rows["pseudo", s]["auc_unlearned"] - rows["hard", s]["auc_unlearned"] for s in (0, 1)]
    assert arm["p"] == (0.5 if d[0] * d[1] > 0 else 1.0)
    text = (report.path / "report.md").read_text()
    assert "## Relearning attack" in text and "| digits / mlp / gradasc (class:3) | test | 0 | pseudo | 2 |" in text
    # the report regenerates from its own CSVs with the same relearn table
    again = build_report(report.path / "runs.csv.xz", out=tmp_path / "again")
    assert (again.path / "relearn_summary.csv").read_text() == (report.path / "relearn_summary.csv").read_text()


@pytest.mark.parametrize("relearn, message", [
    ({"types": ["nope"]}, "unknown relearn type 'nope'"),
    ({"k": ["ten"]}, "relearn.k must be a list of integers"),
    ({"lr": "fast"}, "relearn lr='fast': the wrong type"),
    ({"epochs": 0}, "relearn epochs must be >= 1"),
    ({"rounds": 3}, "'relearn' takes types, k, epochs"),
])
def test_bad_relearn_grids_are_one_line_before_any_work(cli, tmp_path, relearn, message):
    import yaml

    grid = tmp_path / "g.yaml"
    grid.write_text(yaml.safe_dump({"name": "g", "command": "relearn", "relearn": relearn,
                                    "axes": {"dataset": ["digits"], "seed": [0]}}))
    code, out, err = cli("sweep", str(grid), "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_attack_from_a_configuration_reuses_its_runs_saved_weights_bit_for_bit(fast, tmp_path):
    """A relearn cell writing into its study's folder attacks the run's own model.pt (no second unlearning);
    the curves are those of unlearning again."""
    import shutil

    from softtargets.audit import relearn
    from softtargets.config import replace
    from softtargets.experiment import run_experiment

    cfg = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.epochs": 1})
    settings = rl.RelearnSettings(steps=20, lr=1e-4, batch_size=64, eval_every=10)
    run = run_experiment(cfg)
    state = torch.load(Path(run["path"]) / "model.pt", weights_only=True)
    # a model.pt that differs from what unlearning gives shows which one the attack used
    (Path(run["path"]) / "model.pt").unlink()
    torch.save({k: v * 0.5 for k, v in state.items()}, Path(run["path"]) / "model.pt")
    used = relearn(cfg, types=("test",), ks=(5,), settings=settings, tracking={"kind": "none"})
    torch.save(state, Path(run["path"]) / "model.pt")
    saved = relearn(cfg, types=("test",), ks=(5,), settings=settings, tracking={"kind": "none"},
                    out=tmp_path / "saved")
    shutil.rmtree(Path(run["path"]))
    fresh = relearn(replace(cfg, out=str(tmp_path / "fresh")), types=("test",), ks=(5,), settings=settings,
                    tracking={"kind": "none"})
    assert saved["curves"] == fresh["curves"]  # the saved weights are the ones unlearning gives
    assert used["curves"]["unlearned"] != saved["curves"]["unlearned"]  # and they were read, not recomputed


def test_the_attack_flushes_denormals_and_leaves_the_mode_as_it_found_it(monkeypatch):
    """An unlearned model with denormal weights (SCRUB's, in study 2) is attacked at full speed: the attack runs
    with denormals flushed to zero, and afterwards flushing is as it was before: off, or on."""
    bundle, data, split = split_data("class:3")
    held = rl.SplitData(data, data.train_x[split.forget_idx], data.train_y[split.forget_idx])
    test = rl.SplitData(data, data.test_x, data.test_y)
    during, attack = [], rl._relearn_curve

    def watched(*args):
        during.append((torch.tensor([1e-40]) * torch.tensor([1.0])).item())
        return attack(*args)

    monkeypatch.setattr(rl, "_relearn_curve", watched)
    try:
        for before in (False, True):
            torch.set_flush_denormal(before)
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
            with torch.no_grad():
                model[1].weight[:, :8] = 1e-40  # denormal weights
            curve = rl.relearn_curve(model, held, held, test, rl.RelearnSettings(steps=3, eval_every=1), 0, 3)
            assert curve["step"] == [0, 1, 2, 3]
            assert during[-1] == 0.0  # flushed during the attack
            after = (torch.tensor([1e-40]) * torch.tensor([1.0])).item()
            assert (after == 0.0) == before, before  # and as it was afterwards
            assert rl.flushes_denormals() == before
    finally:
        torch.set_flush_denormal(False)


def test_the_attack_sets_its_thread_count_before_it_touches_the_data(fast, monkeypatch):
    """Tensor work done on more threads than the run uses changes a long attack's last bits (training.fit.
    use_compute): a study-2 attack whose data was loaded on torch's default 2 threads ended at another AUC.
    So the configured count must already hold when the data is loaded."""
    from softtargets import audit

    seen = []
    load = audit.load_configured
    monkeypatch.setattr(audit, "load_configured", lambda cfg: seen.append(torch.get_num_threads()) or load(cfg))
    cfg = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.epochs": 1, "threads": 1})
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # as torch starts on a 2-core machine
        audit.relearn(cfg, types=("test",), ks=(5,), settings=rl.RelearnSettings(steps=10, eval_every=10),
                      tracking={"kind": "none"})
    finally:
        torch.set_num_threads(threads)
    assert seen == [1]


def test_two_attacks_of_one_arm_and_seed_with_different_results_are_refused_not_merged():
    from softtargets.report.relearn import relearn_summary

    def row(name, auc):
        return {"name": name, "dataset": "digits", "architecture": "mlp", "method": "gradasc", "forget": "class:3",
                "type": "retain", "k": 10, "arm": "hard", "seed": 0, "auc_unlearned": auc, "auc_reference": 0.0,
                "auc_minus_reference": auc, "start_unlearned": 0.0, "end_unlearned": auc, "end_reference": 0.0,
                "steps_past_reference": None}

    assert len(relearn_summary([row("relearn-a", 0.3), row("relearn-a", 0.3)])) == 1  # one attack found twice
    assert relearn_summary([row("relearn-a", 0.3), row("relearn-b", 0.3)])[0]["auc_unlearned"] == 0.3  # same result
    with pytest.raises(SoftTargetsError, match="relearning attacks relearn-a and relearn-b are both arm 'hard', "
                                               "seed 0, retain k = 10 of digits / mlp / gradasc / class:3"):
        relearn_summary([row("relearn-a", 0.3), row("relearn-b", 0.5)])
