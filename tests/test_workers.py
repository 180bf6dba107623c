"""Cells in flight at once (softtargets.scheduler): the numbers do not depend on the number of workers."""

import json
from pathlib import Path

import pytest

from softtargets.config import load_config
from softtargets.errors import SoftTargetsError
from softtargets.scheduler import run_cells


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise SoftTargetsError("cell 3 failed")
    return x


def test_results_come_back_in_task_order_from_worker_processes():
    assert run_cells(square, [(i,) for i in range(7)], workers=3) == [i * i for i in range(7)]


def test_a_failing_cell_raises_its_own_error():
    with pytest.raises(SoftTargetsError, match="cell 3 failed"):
        run_cells(fail_on_three, [(i,) for i in range(5)], workers=2)
    with pytest.raises(SoftTargetsError, match="--workers must be in 1.."):
        run_cells(square, [(1,)], workers=0)


def test_compare_metrics_are_identical_with_one_and_two_workers(fast, tmp_path):
    """Digits, 2 seeds: every run's metrics block, and the paired comparison, are the same bits whether the
    seeds run one after another in this process (models trained up front) or in two worker processes (each
    training its own seed's models into its own cache)."""
    from softtargets.compare import compare

    results = {}
    for workers in (1, 2):
        cfg = load_config(overrides={**fast, "training.epochs": 2, "unlearning.epochs": 1,
                                     "out": str(tmp_path / f"out{workers}"), "cache_dir": str(tmp_path / f"c{workers}")})
        summary = compare(cfg, [0, 1], "smooth", workers=workers)
        runs = {kind: [json.loads((Path(p) / "result.json").read_text()) for p in paths]
                for kind, paths in summary["runs"].items()}
        results[workers] = (runs, summary["comparison"])
    (runs1, table1), (runs2, table2) = results[1], results[2]
    for kind in ("hard", "smooth"):
        assert [r["seed"] for r in runs2[kind]] == [0, 1]
        for one, two in zip(runs1[kind], runs2[kind]):
            assert one["metrics"] == two["metrics"]
            assert one["name"] == two["name"]
    assert runs1["hard"][0]["metrics"] != runs1["hard"][1]["metrics"]  # the seeds differ
    assert runs1["hard"][0]["metrics"]["unlearned"] != runs1["smooth"][0]["metrics"]["unlearned"]  # so do kinds
    assert json.dumps(table1, sort_keys=True) == json.dumps(table2, sort_keys=True)


def test_compare_cli_takes_workers(cli, fast):
    code, out, err = cli("compare", "--workers", "0", "--out", fast["out"], "--tracker", "none")
    assert code == 2 and "--workers must be in 1.." in err and len(err.strip().splitlines()) == 1
    assert not Path(fast["out"]).exists() or not any(Path(fast["out"]).iterdir())


@pytest.mark.slow
def test_forget_quality_population_is_identical_with_two_workers(fast, tmp_path):
    from softtargets.audit import forget_quality

    cfg = load_config(overrides={**fast, "training.epochs": 2, "unlearning.epochs": 1})
    one = forget_quality(cfg, 3, null=False, out=str(tmp_path / "one"))
    two = forget_quality(cfg, 3, null=False, out=str(tmp_path / "two"), workers=2)
    assert one["kinds"] == two["kinds"]
    assert (Path(one["path"]) / "epsilons.csv").read_text() == (Path(two["path"]) / "epsilons.csv").read_text()
