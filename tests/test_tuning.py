"""Per-arm tuning: the choice a hand computation makes, and grids that tune each arm on its own seeds."""

import json
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from softtargets.errors import SoftTargetsError
from softtargets.report.aggregate import read_csv
from softtargets.report.build import read_table
from softtargets.sweep.grid import expand_grid
from softtargets.tuning import Arm, candidates, choose


def result(js, status="completed", acc_test=0.9):
    return {"status": status, "metrics": {"unlearned": {"js_forget_to_reference": js, "acc_test": acc_test,
                                                       "acc_forget": 0.1, "acc_retain": 0.95},
                                          "reference": {"acc_forget": 0.0, "acc_test": 0.85}}}


def test_the_lowest_mean_over_the_tuning_seeds_wins_and_incomplete_candidates_do_not_count():
    # by hand: A = (0.30 + 0.10 + 0.20) / 3 = 0.20; B = 0.15; C would be 0.05 but one seed diverged; D = 0.15 (tie)
    arm = Arm({"method": "gradasc"}, [{"lr": 1}, {"lr": 2}, {"lr": 3}, {"lr": 4}], ["hard"] * 4, [100, 101, 102])
    arm.results = [[result(0.30), result(0.10), result(0.20)],
                   [result(0.15), result(0.15), result(0.15)],
                   [result(0.05), result(0.05), result(None, status="diverged")],
                   [result(0.10), result(0.20), result(0.15)]]
    assert arm.chosen() == 1  # B: the earlier of the two equal means
    rows = arm.rows()
    assert [r["chosen"] for r in rows] == [False, True, False, False]
    assert rows[0]["score"] == pytest.approx(0.2) and rows[2]["score"] is None and rows[2]["completed"] == 2
    assert {r["budget"] for r in rows} == {4} and rows[0]["tuning_seeds"] == "100 101 102"


def test_max_test_drop_keeps_candidates_that_wrecked_the_model_from_winning():
    # by hand, the reference's test accuracy 0.85 on every seed: A has the lowest JS (0.10) but a mean test accuracy
    # of (0.75 + 0.78 + 0.81) / 3 = 0.78, a drop of 0.07; B (JS 0.20) keeps 0.82, a drop of 0.03; C (JS 0.15) drops
    # exactly 0.05 on average (0.80), the limit, which is allowed
    def arm(drop):
        a = Arm({"method": "gradasc"}, [{"lr": 1}, {"lr": 2}, {"lr": 3}], ["hard"] * 3, [100, 101, 102],
                max_test_drop=drop)
        a.results = [[result(0.10, acc_test=0.75), result(0.10, acc_test=0.78), result(0.10, acc_test=0.81)],
                     [result(0.20, acc_test=0.82)] * 3,
                     [result(0.15, acc_test=0.79), result(0.15, acc_test=0.80), result(0.15, acc_test=0.81)]]
        return a

    assert arm(None).chosen() == 0 and "admissible" not in arm(None).rows()[0]  # JS alone: A
    assert arm(0.05).chosen() == 2  # C: the lowest JS among those that keep test accuracy
    assert arm(0.04).chosen() == 1  # C's 0.05 is too much now: B
    rows = arm(0.05).rows()
    assert [r["admissible"] for r in rows] == [False, True, True] and [r["chosen"] for r in rows] == [False, False, True]
    assert [r["test_drop"] for r in rows] == pytest.approx([0.07, 0.03, 0.05])
    assert {r["max_test_drop"] for r in rows} == {0.05}
    strict = arm(0.01)
    assert strict.chosen() is None
    assert strict.why_none() == ("no candidate kept its mean test accuracy (kept classes) within max_test_drop 0.01 "
                                 "of the reference's (the smallest drop: 0.030)")
    # each reason in its own words: runs that did not complete, a metric without a value, no kept-class accuracy
    none = Arm({"method": "gradasc"}, [{"lr": 1}, {"lr": 2}], ["hard"] * 2, [100, 101], max_test_drop=0.05)
    none.results = [[result(0.1), result(None, status="diverged")], [None, result(0.1)]]
    assert none.chosen() is None and none.why_none() == "no candidate completed on every tuning seed"
    none.results = [[result(None), result(None)], [result(0.1), None]]
    assert none.why_none() == "no candidate has a finite js_forget_to_reference on every tuning seed"
    none.results = [[result(0.1, acc_test=None)] * 2, [result(0.2, acc_test=None)] * 2]
    assert none.chosen() is None and none.why_none() == ("no candidate has its test accuracy on the kept classes on "
                                                         "every tuning seed, which max_test_drop needs")


def test_under_class_forgetting_max_test_drop_measures_the_kept_classes():
    # the reference is wrong on every test image of a forgotten class, so all-class test accuracy would let a
    # model lose that much more: A keeps the kept classes (0.93 against the reference's 0.94) though its all-class
    # accuracy (0.80) is 0.05 above the reference's (0.75 = 0.94 x 8 / 10); B loses 0.10 on the kept classes
    def classes(js, kept, test):
        r = result(js, acc_test=test)
        r["metrics"]["unlearned"]["acc_test_retain_classes"] = kept
        r["metrics"]["reference"].update(acc_test=0.75, acc_test_retain_classes=0.94)
        return r

    arm = Arm({"method": "gradasc"}, [{"lr": 1}, {"lr": 2}], ["hard"] * 2, [100], max_test_drop=0.05)
    arm.results = [[classes(0.3, 0.93, 0.80)], [classes(0.1, 0.84, 0.74)]]
    assert arm.chosen() == 0  # all-class accuracy would have admitted B (0.74 is 0.01 below 0.75)
    assert [r["test_drop"] for r in arm.rows()] == pytest.approx([0.01, 0.10])


def test_choose_and_candidates():
    assert choose([None, 0.3, float("nan"), 0.2, 0.2]) == 3
    assert choose([None, None]) is None
    assert candidates({"a": [1, 2], "b": [3, 4]}) == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3},
                                                      {"a": 2, "b": 4}]


GRID = """
name: tuned
base: {{data: {{forget: "class:3"}}, training: {{epochs: 2}}, unlearning: {{epochs: 1}}}}
tune:
  seeds: [100, 101]
  params: {{unlearn_lr: [1.0e-4, 1.0e-3]}}
axes:
  method: [gradasc]
  seed: {seeds}
  arm:
    - {{targets: hard}}
    - {{targets: smooth, smoothing: -0.5, tune: {{smoothing: [-0.2, -1.0]}}}}
"""


def write_grid(tmp_path, seeds="[0, 1, 2]") -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(seeds=seeds))
    return path


def fake_result(cell, js):
    """A finished tuning run, as the sweep would leave it (the choice reads only result.json)."""
    cell.folder.mkdir(parents=True)
    (cell.folder / "result.json").write_text(json.dumps(result(js)))


def tuning_means(folder: Path) -> dict:
    """From the tuning runs (seeds 100 and 101) under folder, per (targets kind, learning rate, smoothing): the mean
    JS to the reference and the mean drop in kept-class test accuracy from the reference's."""
    runs: dict = {}
    for found in folder.rglob("result.json"):
        cfg = yaml.safe_load((found.parent / "config.yaml").read_text())
        if cfg["seed"] not in (100, 101):
            continue
        m = json.loads(found.read_text())["metrics"]
        key = (cfg["targets"]["kind"], cfg["unlearning"]["lr"], cfg["targets"]["smoothing"])
        runs.setdefault(key, []).append((m["unlearned"]["js_forget_to_reference"],
                                         m["reference"]["acc_test_retain_classes"]
                                         - m["unlearned"]["acc_test_retain_classes"]))
    assert all(len(v) == 2 for v in runs.values()), runs
    return {key: (sum(v[0] for v in vs) / 2, sum(v[1] for v in vs) / 2) for key, vs in runs.items()}


def test_a_tuned_grid_runs_the_tuning_cells_first_then_each_arm_with_its_choice(tmp_path):
    overrides = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")}
    grid = expand_grid(write_grid(tmp_path), overrides)
    # hard: 2 lr x 2 seeds; smooth: 2 lr x 2 a x 2 seeds; evaluation cells wait
    assert len(grid.cells) == 12 and all(c.tuning for c in grid.cells) and len(grid.pending) == 6
    assert {c.cfg.seed for c in grid.cells} == {100, 101}
    assert all(c.folder.parent == tmp_path / "out" / "tuning" for c in grid.cells)
    assert grid.out == tmp_path / "out"
    # the smooth arm scores best at lr 1e-3, a = -1.0; hard at lr 1e-4 (hand-made scores)
    for cell in grid.cells:
        lr, a = cell.cfg.unlearning.lr, cell.cfg.targets.smoothing
        kind = cell.cfg.targets.kind
        js = {("hard", 1e-4): 0.2, ("hard", 1e-3): 0.3}.get((kind, lr)) if kind == "hard" else \
            {(1e-4, -0.2): 0.5, (1e-4, -1.0): 0.4, (1e-3, -0.2): 0.35, (1e-3, -1.0): 0.1}[(lr, a)]
        fake_result(cell, js + 0.01 * (cell.cfg.seed - 100))
    grid = expand_grid(write_grid(tmp_path), overrides)
    evaluation = [c for c in grid.cells if not c.tuning]
    assert not grid.pending and len(evaluation) == 6
    chosen = {(c.cfg.targets.kind, c.cfg.unlearning.lr, c.cfg.targets.smoothing) for c in evaluation}
    assert chosen == {("hard", 1e-4, 0.1), ("smooth", 1e-3, -1.0)}  # hard keeps the default smoothing it ignores
    rows = grid.tuning_rows()
    assert len(rows) == 6 and sum(r["chosen"] for r in rows) == 2
    assert {r["arm"] for r in rows} == {"hard", "smooth e=-1"}


def drop_grid(tmp_path, overrides: dict) -> Path:
    """A tuned grid with max_test_drop 0.05 whose tuning has finished (hand-made results, below)."""
    path = write_grid(tmp_path)
    path.write_text(path.read_text().replace("  seeds: [100, 101]\n", "  seeds: [100, 101]\n  max_test_drop: 0.05\n"))
    for cell in expand_grid(path, overrides).cells:
        # hard: 1e-3 is closer (JS 0.1) but loses 0.15 of test accuracy (reference 0.85); smooth: every candidate
        # loses 0.10 or more, 1e-3 (the closest, JS 0.1-0.15) 0.15, 1e-4 0.10 (JS 0.22 at a = -0.2, 0.20 at -1)
        kind, lr, a = cell.cfg.targets.kind, cell.cfg.unlearning.lr, cell.cfg.targets.smoothing
        if kind == "hard":
            js, acc = (0.3, 0.84) if lr == 1e-4 else (0.1, 0.70)
        else:
            js, acc = ({-0.2: 0.22, -1.0: 0.20}[a], 0.75) if lr == 1e-4 else ({-0.2: 0.15, -1.0: 0.10}[a], 0.70)
        cell.folder.mkdir(parents=True)
        (cell.folder / "result.json").write_text(json.dumps(result(js, acc_test=acc)))
    return path


def test_a_grid_with_max_test_drop_evaluates_the_best_admissible_candidate_or_says_which_arm_has_none(tmp_path):
    overrides = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")}
    path = drop_grid(tmp_path, overrides)
    # the smooth arm has no candidate it may choose: its evaluation cells are not made, the hard arm's are, and the
    # arm's line says why and what to do
    grid = expand_grid(path, overrides)
    assert {(c.cfg.targets.kind, c.cfg.unlearning.lr) for c in grid.cells if not c.tuning} == {("hard", 1e-4)}
    assert len(grid.unchosen) == 3 and not grid.pending and len(grid.tuning_rows()) == 6  # its rows are recorded
    (line,) = grid.unchosen_arms()
    assert re.search(r"method=gradasc, forget=class:3, arm smooth e=-0.2 / smooth e=-1: no candidate kept its mean "
                     r"test accuracy \(kept classes\) within max_test_drop 0.05 of the reference's \(the smallest "
                     r"drop: 0.100\) .*widen or lower its tune values or loosen tune.max_test_drop", line), line
    assert len(grid.where({"seed": "1"}).unchosen) == 1
    # loosen the condition: every arm gets a choice, hard the candidate that kept its test accuracy
    path.write_text(path.read_text().replace("max_test_drop: 0.05", "max_test_drop: 0.12"))
    grid = expand_grid(path, overrides)
    chosen = {(c.cfg.targets.kind, c.cfg.unlearning.lr, c.cfg.targets.smoothing) for c in grid.cells if not c.tuning}
    assert chosen == {("hard", 1e-4, 0.1), ("smooth", 1e-4, -1.0)}  # JS alone would take 1e-3 for both
    rows = grid.tuning_rows()
    assert all(r["max_test_drop"] == 0.12 for r in rows)
    assert [r["admissible"] for r in rows if r["arm"] == "hard"] == [True, False]
    drops = {(r["params"]["unlearning.lr"], r["params"].get("targets.smoothing")): r["test_drop"] for r in rows}
    assert drops == pytest.approx({(1e-4, None): 0.01, (1e-3, None): 0.15, (1e-4, -0.2): 0.10, (1e-4, -1.0): 0.10,
                                   (1e-3, -0.2): 0.15, (1e-3, -1.0): 0.15})


def test_a_sweep_runs_the_arms_with_a_choice_and_ends_with_exit_1_naming_each_arm_without(cli, tmp_path):
    overrides = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")}
    path = drop_grid(tmp_path, overrides)
    folders = ["--out", overrides["out"], "--cache-dir", overrides["cache_dir"]]
    code, out, err = cli("sweep", str(path), "--dry-run", *folders)
    assert code == 0 and "no choice:" in err and "arm smooth e=-0.2 / smooth e=-1" in err, err
    for cell in expand_grid(path, overrides).cells:  # the hard arm's evaluation, as if it had run
        if not cell.tuning:
            cell.folder.mkdir(parents=True)
            (cell.folder / "result.json").write_text(json.dumps(result(0.3)))
    code, out, err = cli("--quiet", "sweep", str(path), *folders)
    assert code == 1 and "15 skipped" in out and err.count("no choice:") == 1, (out, err)
    assert len(read_csv(tmp_path / "out" / "tuning.csv")) == 6  # every candidate's row, the arm without a choice too
    code, out, err = cli("sweep", "status", overrides["out"])
    assert "15 done, 0 running, 0 failed, 0 missing" in out and err.count("no choice:") == 1, (out, err)


def test_an_arm_whose_tuning_finished_evaluates_while_another_still_tunes(tmp_path):
    overrides = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")}
    grid = expand_grid(write_grid(tmp_path), overrides)
    for cell in grid.cells:
        if cell.cfg.targets.kind == "hard":
            fake_result(cell, 0.2)
    grid = expand_grid(write_grid(tmp_path), overrides)
    assert len([c for c in grid.cells if not c.tuning]) == 3 and len(grid.pending) == 3
    assert {r["arm"] for r in grid.tuning_rows()} == {"hard"}
    from softtargets.sweep.status import grid_status, record_sweep, sweep_status

    assert grid_status(grid, slurm=False).waiting == 3  # the smooth arm's three seeds wait for its tuning
    record_sweep(grid, "local")
    (status,) = sweep_status(str(tmp_path / "out"))
    assert status.waiting == 3 and len(status.cells) == 12 + 3
    narrowed = grid.where({"seed": "1"})
    assert len([c for c in narrowed.cells if not c.tuning]) == 1 and len(narrowed.pending) == 1
    assert len([c for c in narrowed.cells if c.tuning]) == 12  # tuning cells serve every evaluation seed


class CountingHooks:
    """The sweep's progress bar: its total as it grows and the cells it counted."""

    def __init__(self):
        self.totals, self.counted = [], 0

    @contextmanager
    def progress(self, description, total):
        mine = description.startswith("sweep ")  # not the bars of the cells' training (one worker: this process)
        self.totals += [total] if mine else []

        def advance(n=1, **info):
            if mine:
                self.counted += n
                self.totals += [info["total"]] if "total" in info else []

        yield advance

    def scalars(self, series, step, values):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_evaluation_cells_join_the_running_sweep_as_soon_as_their_arm_has_tuned(tmp_path, workers):
    from softtargets.sweep.local import sweep_local

    overrides = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")}
    path = write_grid(tmp_path, "[0]")
    last = None
    for cell in expand_grid(path, overrides).cells:  # every tuning run finished but one of the smooth arm's
        kind, lr, a = cell.cfg.targets.kind, cell.cfg.unlearning.lr, cell.cfg.targets.smoothing
        if (kind, lr, a, cell.cfg.seed) == ("smooth", 1e-3, -1.0, 101):
            last = cell.name
        else:
            fake_result(cell, 0.0 if (kind, lr, a) == ("smooth", 1e-4, -0.2) else 0.3)  # the smooth arm's choice
    grid = expand_grid(path, overrides)
    todo = [c for c in grid.cells if not c.done]  # the last tuning run and the hard arm's evaluation run
    assert todo[0].name == last and [c.cfg.targets.kind for c in todo[1:]] == ["hard"] and len(grid.pending) == 1
    loads = []

    def load():
        loads.append(expand_grid(path, overrides))
        return loads[-1]

    hooks = CountingHooks()
    final, outcomes = sweep_local(grid, load, workers, hooks, cells_per_task=1)
    # one pass: the smooth arm's evaluation cell ran once its last tuning run had, in the same sweep
    assert not final.pending and all(c.done for c in final.cells) and len(final.cells) == 12 + 2
    ran = {o.name: o.status for o in outcomes if o.status != "skipped"}
    evaluation = [c for c in final.cells if not c.tuning]
    assert ran == {last: "completed", **{c.name: "completed" for c in evaluation}}
    assert [o.index for o in outcomes] == [c.index for c in final.cells]  # numbered as in the grid last loaded
    smooth = next(c for c in evaluation if c.cfg.targets.kind == "smooth")
    assert (smooth.cfg.unlearning.lr, smooth.cfg.targets.smoothing) == (1e-4, -0.2)
    assert 1 <= len(loads) <= 2 and hooks.totals == [2, 3] and hooks.counted == 3


@pytest.mark.parametrize("seeds, tune, message", [
    ("[0, 100]", None, "tune.seeds and the seed axis share seed 100"),
    ("[0]", "tune: {seeds: [5], metric: acc_test}", "must be a metric whose lower value is better"),
    ("[0]", "tune: {params: {unlearn_lr: [0.1]}}", "seeds required"),
    ("[0]", "", "an axis value has 'tune' but the grid has no 'tune' section"),
    ("[0]", "tune: {seeds: [5], max_test_drop: 5}", "tune.max_test_drop must be a number from 0 to 1"),
    ("[0]", "tune: {seeds: [5], max_test_drop: 'a lot'}", "tune.max_test_drop must be a number from 0 to 1"),
])
def test_bad_tuning_sections_are_refused(tmp_path, seeds, tune, message):
    text = GRID.format(seeds=seeds)
    if tune is not None:
        start, end = text.index("tune:\n"), text.index("axes:")
        text = text[:start] + tune + "\n" + text[end:]
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(SoftTargetsError, match=message):
        expand_grid(path, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")})


@pytest.mark.slow
def test_a_tuned_sweep_runs_both_stages_writes_tuning_csv_and_reports_the_arms_together(cli, tmp_path):
    out = tmp_path / "out"
    path = write_grid(tmp_path, "[0, 1]")
    code, stdout, err = cli("--quiet", "sweep", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    rows = read_csv(out / "tuning.csv")
    assert len(rows) == 6 and sum(r["chosen"] for r in rows) == 2
    configs = [yaml.safe_load((f / "config.yaml").read_text()) for f in out.iterdir() if (f / "result.json").exists()]
    assert len(configs) == 4
    means = tuning_means(out / "tuning")
    for kind in ("hard", "smooth"):
        mine = [r for r in rows if r["params"].get("targets.smoothing") is None] if kind == "hard" else \
            [r for r in rows if r["params"].get("targets.smoothing") is not None]
        for r in mine:  # each score is the mean JS of that candidate's own tuning runs
            assert r["score"] == pytest.approx(means[kind, r["params"]["unlearning.lr"],
                                                     r["params"].get("targets.smoothing", 0.1)][0])
        best = min(mine, key=lambda r: r["score"])
        assert best["chosen"] and sum(r["chosen"] for r in mine) == 1  # the lowest mean JS over the tuning seeds
        runs = [c for c in configs if c["targets"]["kind"] == kind]
        assert len(runs) == 2 and all(c["unlearning"]["lr"] == best["params"]["unlearning.lr"] for c in runs)
        if kind == "smooth":
            assert all(c["targets"]["smoothing"] == best["params"]["targets.smoothing"] for c in runs)
    code, stdout, err = cli("report", str(out), "--out", str(tmp_path / "report"))
    assert code == 0, err
    overview = read_table(tmp_path / "report" / "overview.csv")
    copied = read_csv(tmp_path / "report" / "tuning.csv")  # the sweep's record, with each choice's grid edges
    assert [{k: v for k, v in r.items() if k != "edge"} for r in copied] == read_csv(out / "tuning.csv")
    assert (tmp_path / "report" / "arms.csv").is_file() and list((tmp_path / "report").glob("*-pareto.png"))
    assert "Tuning record" in (tmp_path / "report" / "report.md").read_text()
    assert len(overview) == 1 and overview[0]["n"] == 2  # both arms in one group despite different learning rates


@pytest.mark.slow
def test_compare_tunes_each_kind_on_its_tuning_seeds_and_says_what_it_chose(cli, tmp_path):
    code, out, err = cli("--quiet", "compare", "--mu_algo", "delete", "--base-kind", "masked_pseudo", "--soft-kind",
                         "masked", "--forget", "class:3", "--seeds", "2", "--epochs", "3", "--unlearn-epochs", "2",
                         "--tune", "unlearning.lr=1e-3,1e-2", "--tune-seeds", "100,101", "--tune-max-test-drop", "1",
                         "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    (folder,) = (tmp_path / "out").glob("compare-*-masked_pseudo-vs-masked-*")
    rows = read_csv(folder / "tuning.csv")
    assert len(rows) == 4 and sum(r["chosen"] for r in rows) == 2
    assert all(r["admissible"] and r["max_test_drop"] == 1 for r in rows)
    means = tuning_means(tmp_path / "out")  # recomputed from the tuning runs' own result.json files
    for r in rows:
        js, drop = means[r["arm"], r["params"]["unlearning.lr"], 0.1]
        assert r["score"] == pytest.approx(js) and r["test_drop"] == pytest.approx(drop)
    assert {r["tuning_seeds"] for r in rows} == {"100 101"}
    summary = json.loads((folder / "comparison.json").read_text())
    for kind in ("masked_pseudo", "masked"):
        best = min((r for r in rows if r["arm"] == kind), key=lambda r: r["score"])
        assert best["chosen"] and summary["tuned"][kind] == best["params"]
        runs = [yaml.safe_load((Path(p) / "config.yaml").read_text()) for p in summary["runs"][kind]]
        assert [c["seed"] for c in runs] == [0, 1]
        assert all(c["unlearning"]["lr"] == best["params"]["unlearning.lr"] for c in runs)
    assert ("chosen on the tuning seeds by the lowest mean primary metric among the candidates whose mean test "
            "accuracy on the kept classes was at most 1 below the reference's") in (folder / "comparison.md").read_text()
    assert summary["max_test_drop"] == 1


def test_sweep_status_counts_the_evaluation_cells_still_waiting_for_their_tuning(cli, tmp_path):
    path = write_grid(tmp_path, "[0, 1]")
    folders = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    code, out, err = cli("sweep", "status", str(path), *folders)
    assert code == 0 and "12 cells in" in out and "0 done, 0 running, 0 failed, 12 missing; 4 more evaluation " \
        "cells once their arms' tuning has finished" in out, err
    # --only narrows it as it narrows a sweep: the 12 tuning cells serve every seed, 2 of the 4 waiting are seed 1's
    code, out, err = cli("sweep", "status", str(path), *folders, "--only", "seed=1")
    assert code == 0 and "12 cells in" in out and "12 missing; 2 more evaluation cells" in out, err
    (tmp_path / "out").mkdir()
    code, out, err = cli("sweep", "status", str(tmp_path / "out"), "--only", "seed=1")
    assert code == 2 and "--only narrows a grid's cells by their axis values: give the grid file" in err
    code, out, err = cli("sweep", "status", str(path), *folders, "--only", "seed=7")
    assert code == 2 and "no cell has seed=7" in err


def test_compare_refuses_a_max_test_drop_without_tuning_or_out_of_range(cli, tmp_path):
    folder = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    code, out, err = cli("compare", "--seeds", "3", "--tune-max-test-drop", "0.05", *folder)
    assert code == 2 and "--tune-max-test-drop needs --tune" in err
    code, out, err = cli("compare", "--seeds", "3", "--tune", "unlearning.lr=1e-3,1e-2", "--tune-max-test-drop", "2",
                         *folder)
    assert code == 2 and "--tune-max-test-drop must be a number from 0 to 1" in err
    assert not (tmp_path / "out").exists()


def test_compare_refuses_tuning_seeds_that_are_evaluation_seeds(cli, tmp_path):
    code, out, err = cli("compare", "--seeds", "3", "--tune", "unlearning.lr=1e-3,1e-2", "--tune-seeds", "0,5",
                         "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and "tuning seeds must be disjoint" in err


def test_the_report_says_when_the_tuning_kept_test_accuracy():
    from softtargets.report.render import tuning_text

    arm = Arm({"method": "gradasc"}, [{"lr": 1}], ["hard"], [100, 101])
    arm.results = [[result(0.1), result(0.2)]]
    assert "kept classes" not in tuning_text(arm.rows())
    arm.max_test_drop = 0.05
    assert tuning_text(arm.rows()).endswith("(a candidate counts only if every seed completed and its mean test "
                                            "accuracy on the kept classes was at most 0.05 below the reference's: "
                                            "tuning.csv's admissible).")


@pytest.mark.slow
def test_compare_tuning_names_the_arm_as_its_runs_do_with_a_retain_kind(cli, tmp_path):
    code, out, err = cli("--quiet", "compare", "--mu_algo", "graddiff", "--soft-kind", "soft", "-T", "2",
                         "--retain-targets", "hard", "--seeds", "1", "--epochs", "1", "--unlearn-epochs", "1",
                         "--tune", "unlearning.lr=1e-4,1e-3", "--tune-seeds", "100", "--out", str(tmp_path / "out"),
                         "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    (folder,) = (tmp_path / "out").glob("compare-*")
    assert {r["arm"] for r in read_csv(folder / "tuning.csv")} == {"hard", "soft T=2, retain hard"}
    code, out, err = cli("report", str(folder), "--out", str(tmp_path / "report"))
    assert code == 0, err
    arms = {r["arm"]: r for r in read_table(tmp_path / "report" / "arms.csv")}
    assert set(arms) == {"hard", "soft T=2, retain hard"}
    assert all(r["params"] and "unlearning.lr" in r["params"] for r in arms.values())  # each found its tuning row


def test_an_evaluation_seed_set_outside_the_seed_axis_may_not_be_a_tuning_seed(tmp_path):
    """The seed can come from base (or a bundle, or a protocol): the grid is refused before any tuning runs."""
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(seeds="[0]").replace("axes:\n  method: [gradasc]\n  seed: [0]\n",
                                                     "axes:\n  method: [gradasc]\n")
                    .replace("unlearning: {{epochs: 1}}}}".format(), "unlearning: {epochs: 1}, seed: 101}"))
    assert "seed: 101}" in path.read_text() and "seed:" not in path.read_text().split("axes:")[1]
    with pytest.raises(SoftTargetsError, match=r"the evaluation cell .* runs on seed 101, one of tune.seeds"):
        expand_grid(path, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")})
    assert not (tmp_path / "out").exists()


RETAIN_SOFT_T2_T4 = ("  arm:\n    - {targets: hard, retain_targets: soft, temperature: 2.0}\n"
                     "    - {targets: hard, retain_targets: soft, temperature: 4.0}\n")


@pytest.mark.parametrize("arms, message", [
    # 'hard, retain soft' names no temperature
    (RETAIN_SOFT_T2_T4, r"would both be reported as 'hard, retain soft' \(they differ in targets.temperature only\)"),
    # an arm tuned over a = -0.2, -1 next to one set to a = -1 (both 'smooth e=-1' if the first chooses -1)
    ("  arm:\n    - {targets: smooth, smoothing: -1.0}\n"
     "    - {targets: smooth, smoothing: -0.5, tune: {smoothing: [-0.2, -1.0]}}\n",
     r"would both be reported as 'smooth e=-1'"),
])
def test_tuned_arms_the_report_could_not_tell_apart_are_refused_before_anything_runs(tmp_path, arms, message):
    text = GRID.format(seeds="[0]").split("  arm:\n")[0] + arms
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(SoftTargetsError, match=message):
        expand_grid(path, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")})
    assert not (tmp_path / "out").exists()
    # named apart, the same arms are accepted
    path.write_text(text.replace("{targets: hard, retain_targets: soft, temperature: 4.0}",
                                 "{targets: soft, retain_targets: soft, temperature: 4.0}")
                    .replace("{targets: smooth, smoothing: -1.0}", "{targets: smooth, smoothing: -2.0}"))
    expand_grid(path, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")})


def test_arms_of_one_label_in_different_datasets_are_different_groups_and_accepted(tmp_path):
    text = GRID.format(seeds="[0]").split("  arm:\n")[0] + (
        "  arm:\n    - {dataset: digits, targets: hard, retain_targets: soft, temperature: 2.0}\n"
        "    - {dataset: fashion_mnist, targets: hard, retain_targets: soft, temperature: 4.0}\n")
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    grid = expand_grid(path, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache")})
    assert {c.cfg.data.dataset for c in grid.cells} == {"digits", "fashion_mnist"}
