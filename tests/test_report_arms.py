"""The report's arms table against a hand computation, grid-edge choices, and the baseline of a group without hard."""

from types import SimpleNamespace

import pytest

from softtargets.report.arms import arm_rows, mark_edges, pareto_figure
from softtargets.report.build import arm_order, baseline


def record(js, original, floor, acc_forget=0.0, acc_test=0.8):
    return SimpleNamespace(
        unlearned={"js_forget_to_reference": js, "acc_forget": acc_forget, "acc_retain": 0.9, "acc_test": acc_test},
        original={"js_forget_to_reference": original}, floor={"js_forget_to_reference": floor},
        reference={"acc_forget": 0.0, "acc_retain": 0.95, "acc_test": 0.85},
        dataset="digits", architecture="mlp", method="gradasc", config={"data.forget": "class:5"})


def test_fraction_closed_and_floor_reached_by_hand():
    # arm: JS 0.10 and 0.20 (mean 0.15); original 0.5 and 0.3 (mean 0.4); floor 0.02 and 0.04 (mean 0.03)
    # closed = 1 - 0.15 / 0.4 = 0.625; floor reached = (0.4 - 0.15) / (0.4 - 0.03) = 0.25 / 0.37
    tuning = [{"dataset": "digits", "architecture": "mlp", "method": "gradasc", "forget": "class:5", "arm": "hard",
               "params": {"unlearning.lr": 0.001}, "chosen": True}]
    (row,) = arm_rows({"hard": {0: record(0.10, 0.5, 0.02), 1: record(0.20, 0.3, 0.04, acc_test=0.7)}},
                      ("digits", "mlp", "gradasc", ""), tuning)
    assert row["js"] == pytest.approx(0.15) and row["original"] == pytest.approx(0.4)
    assert row["closed"] == pytest.approx(0.625)
    assert row["floor_reached"] == pytest.approx(0.25 / 0.37)
    assert row["acc_test"] == pytest.approx(0.75) and row["acc_test_reference"] == pytest.approx(0.85)
    assert row["params"] == {"unlearning.lr": 0.001} and row["n"] == 2


def test_a_choice_at_the_end_of_its_grid_is_marked():
    def row(lr, a, chosen, arm="smooth e=-1"):
        return {"dataset": "d", "architecture": "a", "method": "m", "forget": "f", "arm": arm,
                "params": {"unlearning.lr": lr, "targets.smoothing": a}, "chosen": chosen}

    rows = mark_edges([row(1e-3, -0.2, False), row(1e-2, -0.2, False), row(1e-3, -1.0, False),
                       row(1e-2, -1.0, True)])
    assert rows[3]["edge"] == ["unlearning.lr", "targets.smoothing"] and rows[0]["edge"] == []
    middle = mark_edges([row(1e-3, -1.0, False), row(3e-3, -1.0, True), row(1e-2, -1.0, False)])
    assert middle[1]["edge"] == []  # a is not tuned there (one value): never an edge


def test_delete_is_compared_against_its_hard_relabelling():
    assert baseline({"hard": {}, "soft T=2": {}}) == "hard"
    arms = {"masked": {}, "random": {}, "masked_pseudo": {}, "uniform": {}}
    assert baseline(arms) == "masked_pseudo"
    assert arm_order(arms) == ["masked_pseudo", "masked", "random", "uniform"]
    assert baseline({"soft T=2": {}}) is None


def test_the_pareto_figure_draws_the_completed_candidates(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), save(fig, *a, **k))[1])
    rows = [{"arm": arm, "score": score, "unlearned.acc_test": acc, "chosen": chosen, "reference.acc_test": 0.85}
            for arm, score, acc, chosen in (("hard", 0.1, 0.8, True), ("hard", 0.3, 0.9, False),
                                            ("soft T=2", None, None, False), ("soft T=2", 0.4, 0.95, True))]
    path = pareto_figure(tmp_path / "p.png", "t", rows)
    assert path.stat().st_size > 5000
    (ax,) = drawn[0].axes
    points = [c.get_offsets().tolist() for c in ax.collections]
    # each arm's completed candidates at (test accuracy, JS), the chosen ones ringed; the incomplete one left out
    assert points == [[[0.8, 0.1], [0.9, 0.3]], [[0.8, 0.1]], [[0.95, 0.4]], [[0.95, 0.4]]]
    assert [line.get_xdata()[0] for line in ax.lines] == [0.85]  # the reference's test accuracy
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["hard", "soft T=2", "reference test accuracy"]


def test_floor_reached_is_undefined_where_the_original_already_lies_within_the_floor():
    (row,) = arm_rows({"hard": {0: record(0.003, 0.002, 0.004)}}, ("digits", "mlp", "gradasc", ""), [])
    assert row["floor_reached"] is None and row["closed"] == pytest.approx(-0.5)


def test_average_gap_by_hand_and_its_test_against_the_baseline():
    """UGradSL's and SalUn's Avg. Gap: mean |unlearned - reference| over forget, retain, test accuracy and
    MIA-efficacy, in points. Hard: forget 0.2 vs 0, retain 0.9 vs 0.95, test 0.8 vs 0.85, MIA 0.7 vs 1.0:
    (20 + 5 + 5 + 30) / 4 = 15 points. The arm halves the forget and MIA gaps: (10 + 5 + 5 + 15) / 4 = 8.75."""
    from softtargets.report.arms import adjust_gap_tests, avg_gap

    def run(acc_forget, mia, shift=0.0):
        r = record(0.1, 0.4, 0.02, acc_forget=acc_forget + shift)
        r.unlearned["mia_svc_efficacy"], r.reference["mia_svc_efficacy"] = mia, 1.0
        return r

    assert avg_gap(run(0.2, 0.7)) == pytest.approx(15.0)
    hard = {s: run(0.2, 0.7, shift=0.01 * s) for s in range(6)}
    arm = {s: run(0.1, 0.85, shift=0.01 * s) for s in range(6)}
    rows = arm_rows({"hard": hard, "smooth e=-1": arm}, ("digits", "mlp", "gradasc", ""), [])
    adjust_gap_tests(rows)
    base, other = rows
    assert base["avg_gap"] == pytest.approx(15.0 + 0.25 * 2.5) and "gap_p" not in base  # forget gaps 0.20..0.25
    assert other["gap_diff"] == pytest.approx(-6.25)  # every seed 6.25 points closer
    assert other["gap_p"] == pytest.approx(2 / 64) and other["gap_p_holm"] == other["gap_p"]  # 6 pairs, one test
    r = record(0.1, 0.4, 0.02)
    assert avg_gap(r) is None  # no MIA-efficacy: no average gap, not a gap over three


def test_the_overview_and_forest_name_delete_s_baseline_where_a_study_has_one(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from softtargets.report.figures import forest
    from softtargets.report.render import overview_cells, overview_head, overview_text

    def row(method, arm, base):
        return {"dataset": "digits", "architecture": "mlp", "method": method, "setting": "", "arm": arm,
                "baseline": base, "n": 3, "original": 0.4, "hard": 0.1, "other": 0.05, "mean_diff": -0.05,
                "ci_low": -0.07, "ci_high": -0.03, "p": 0.25, "p_min": 0.25, "p_holm": 0.25, "effect_dz": -2.0,
                "dz_ci_low": -3.0, "dz_ci_high": -1.0, "F_hard": None, "F_other": None, "F_null": None}

    only_hard = [row("gradasc", "soft T=2", "")]
    assert overview_head(only_hard)[6:9] == ["hard", "arm", "arm − hard [95% CI]"]
    assert "against hard," in overview_text(only_hard) and "baseline" not in overview_text(only_hard)
    mixed = only_hard + [row("delete", "masked", "masked_pseudo")]
    head = overview_head(mixed)
    assert head[6:9] == ["baseline", "arm", "arm − baseline [95% CI]"] and "F baseline" in head and "hard" not in head
    assert "(delete: masked_pseudo)" in overview_text(mixed)
    assert [c[3] for c in overview_cells(mixed)] == ["soft T=2", "masked (vs masked_pseudo)"]
    drawn, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), save(fig, *a, **k))[1])
    forest(tmp_path / "forest.png", mixed, "js_forget_to_reference")
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["digits / mlp / delete / masked (vs masked_pseudo)",
                                                             "digits / mlp / gradasc / soft T=2"]
    assert "mean difference arm - baseline" in ax.get_xlabel() and "than baseline" in ax.get_xlabel()
