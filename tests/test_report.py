"""softtargets report: aggregation, statistics (checked against scipy and hand-computed cases), files."""

import csv
import itertools
import json
import lzma
import math
import re
import shutil
from urllib.parse import unquote

import markdown
import numpy as np
import pytest
import yaml
from scipy import stats

from softtargets.config import load_config
from softtargets.report.build import OVERVIEW_FIELDS, build_report
from softtargets.report.stats import describe, holm

# a fixed table: 6 seeds of hard and soft for one method, values chosen so soft is lower on every seed
HARD = {"js_forget_to_reference": [0.020, 0.025, 0.022, 0.030, 0.019, 0.027],
        "acc_distance_to_reference": [0.040, 0.052, 0.047, 0.061, 0.039, 0.055],
        "param_change": [0.0030, 0.0034, 0.0029, 0.0041, 0.0033, 0.0038],
        "acc_forget": [0.95, 0.93, 0.96, 0.94, 0.92, 0.97]}
SOFT = {"js_forget_to_reference": [0.012, 0.020, 0.021, 0.024, 0.011, 0.022],
        "acc_distance_to_reference": [0.031, 0.040, 0.045, 0.049, 0.030, 0.041],
        "param_change": [0.0021, 0.0025, 0.0027, 0.0030, 0.0024, 0.0026],
        "acc_forget": [0.90, 0.94, 0.91, 0.93, 0.90, 0.95]}
REFERENCE_FORGET = [0.90, 0.91, 0.90, 0.92, 0.93, 0.90]  # each seed's own reference


def write_run(root, kind, seed, values, method="graddiff", lr=1e-4, status="completed", finished="2026-01-01",
              reference_forget=0.9, floor=None):
    cfg = load_config(overrides={"unlearning.method": method, "targets.kind": kind, "seed": seed,
                                 "unlearning.lr": lr})
    name = f"digits-mlp-{method}-{kind}-seed{seed}-lr{lr}"
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    result = {"name": name, "status": status, "dataset": "digits", "architecture": "mlp", "method": method,
              "seed": seed, "targets": {"kind": kind}, "finished_at": finished,
              "metrics": {"unlearned": values, "reference": {"acc_forget": reference_forget,
                                                             "js_forget_to_reference": 0.0},
                          "original": {"acc_forget": 1.0, "js_forget_to_reference": 0.5}}}
    if floor is not None:  # a second exact retrain's distance to the reference
        result["metrics"]["floor"] = {"js_forget_to_reference": floor}
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def fixed_table(root, method="graddiff", lr=1e-4, floor=None):
    for arm, table in (("hard", HARD), ("soft", SOFT)):
        for seed in range(6):
            write_run(root, arm, seed, {m: v[seed] for m, v in table.items()}, method, lr,
                      reference_forget=REFERENCE_FORGET[seed], floor=None if floor is None else floor[seed])


def enumerated_p(d) -> float:
    """Two-sided sign-flip p of the mean of d, by listing all 2^n sign patterns."""
    observed = abs(sum(d))
    patterns = list(itertools.product((1, -1), repeat=len(d)))
    extreme = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed * (1 - 1e-12) for signs in patterns)
    return extreme / len(patterns)


def test_summary_and_paired_statistics_match_scipy(tmp_path):
    fixed_table(tmp_path / "runs")
    report = build_report(tmp_path / "runs")
    for arm, table in (("hard", HARD), ("soft", SOFT)):
        for metric, values in table.items():
            (row,) = [r for r in report.summary if r["targets"] == arm and r["metric"] == metric]
            v = np.array(values)
            lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
            assert row["n"] == 6
            assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    rows = {r["metric"]: r for r in report.paired}
    assert set(rows) == set(HARD) - {"param_change"}  # an info row is described, never tested
    tested = {m: (np.array(HARD[m]), np.array(SOFT[m])) for m in rows}
    # acc_forget's ideal is the reference's value: the test is on each seed's distance to its own reference
    ref = np.array(REFERENCE_FORGET)
    tested["acc_forget"] = (abs(np.array(HARD["acc_forget"]) - ref), abs(np.array(SOFT["acc_forget"]) - ref))
    raw_p = {}
    for metric, (hard, soft) in tested.items():
        d = soft - hard
        row = rows[metric]
        raw_p[metric] = enumerated_p(d)
        assert row["comparison"] == "soft - hard" and row["n"] == 6
        assert row["mean_diff"] == pytest.approx(d.mean())
        assert row["p"] == pytest.approx(raw_p[metric]) and row["test"] == "sign-flip permutation (exact)"
        assert row["ci_low"] <= d.mean() <= row["ci_high"]
        assert (row["p"] < 0.05) == (row["ci_high"] < 0 or row["ci_low"] > 0)
        assert row["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert rows["acc_forget"]["tested"] == "|acc_forget - ref|" and rows["acc_forget"]["better"] == "lower"
    # every difference of the primary metric is negative: exact two-sided p = 2/2^6, the smallest 6 pairs allow;
    # the report's primary family is this one comparison, so its Holm p is its p
    assert rows["js_forget_to_reference"]["family"] == "primary"
    assert rows["js_forget_to_reference"]["p"] == 2 / 64 == rows["js_forget_to_reference"]["p_min"]
    assert rows["js_forget_to_reference"]["p_holm"] == 2 / 64
    assert rows["js_forget_to_reference"]["holm_family"] == "Holm over the report's 1 primary comparison"
    # Holm over the secondary family (acc_distance_to_reference, acc_forget): smallest p times 2, monotone
    secondary = sorted(raw_p[m] for m in ("acc_distance_to_reference", "acc_forget"))
    assert sorted(rows[m]["p_holm"] for m in ("acc_distance_to_reference", "acc_forget")) == pytest.approx(
        list(np.maximum.accumulate([min(1, (2 - i) * p) for i, p in enumerate(secondary)])))
    (answer,) = report.answers
    assert answer["answer"].startswith("soft is closer to the reference than hard on js_forget_to_reference")
    assert "p = 0.031 (sign-flip permutation (exact); at the smallest p 6 differing pairs allow)" in answer["answer"]
    assert answer["n"] == 6
    md = (report.path / "report.md").read_text()
    assert "| 0.031 (min) | 0.031 |" in md and "adjusted p = 0.031 (Holm over the report's 1 primary comparison)" in md
    assert "the primary family is every primary comparison of this report" in md


def test_the_report_families_span_the_whole_report_and_every_sentence_uses_them(tmp_path):
    """Two settings: Holm runs over both comparisons' primary tests together and over all four secondary tests
    together, not within each comparison. Each primary p is 2/64 < 0.05, but Holm over 2 gives 1/16: no sentence
    may call soft closer, and nothing is bold."""
    runs = tmp_path / "runs"
    fixed_table(runs, lr=1e-4)
    fixed_table(runs / "more", lr=1e-3)
    report = build_report(runs, tmp_path / "rep")
    primary = [r for r in report.paired if r["family"] == "primary"]
    secondary = [r for r in report.paired if r["family"] == "secondary"]
    assert len(primary) == 2 and len(secondary) == 4
    assert [r["p"] for r in primary] == [2 / 64, 2 / 64] and [r["p_holm"] for r in primary] == [1 / 16, 1 / 16]
    assert [r["p_holm"] for r in secondary] == pytest.approx(holm([r["p"] for r in secondary]))
    assert {r["holm_family"] for r in secondary} == {"Holm over the report's 4 secondary tests"}
    assert [r["p_holm"] for r in report.overview] == [1 / 16, 1 / 16]
    for answer in report.answers:
        assert answer["answer"].startswith("no significant difference between soft and hard")
        assert "adjusted p = 0.062 (Holm over the report's 2 primary comparisons)" in answer["answer"]
    md = (tmp_path / "rep" / "report.md").read_text()
    overview = md.split("## Overview", 1)[1].split("\n## ", 1)[0]
    assert "| 0.031 (min) | 0.062 |" in overview and "**" not in overview
    assert "is closer to the reference than" not in md
    # the report's families span comparisons of any seed count: no note claims what Holm cannot pass
    assert "Note:" not in md and all(a["notes"] == [] for a in report.answers)
    # a third comparison of 6 pairs cannot change this: 3 x 2/64 > 0.05 as well; one alone is bold
    alone = build_report(runs / "more", tmp_path / "alone")
    assert alone.overview[0]["p_holm"] == 2 / 64
    assert "**" in (tmp_path / "alone" / "report.md").read_text().split("## Overview", 1)[1].split("\n## ", 1)[0]


def test_a_floor_is_reported_where_known_and_left_out_cleanly_where_not(tmp_path):
    fixed_table(tmp_path / "with", floor=[0.004, 0.005, 0.004, 0.006, 0.005, 0.006])
    report = build_report(tmp_path / "with", tmp_path / "rep")
    (row,) = report.overview
    assert row["floor"] == pytest.approx(0.005)
    assert row["diff_floor"] == pytest.approx(row["mean_diff"] / 0.005)
    assert (row["diff_floor_ci_low"], row["diff_floor_ci_high"]) == pytest.approx(
        (row["ci_low"] / 0.005, row["ci_high"] / 0.005))
    header = (tmp_path / "rep" / "overview.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("ci_high") + 1:header.index("ci_high") + 5] == [
        "floor", "diff_floor", "diff_floor_ci_low", "diff_floor_ci_high"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "arm − hard in floors [95% CI]" in md and "retrain-vs-retrain floor" in md
    assert f"| {row['diff_floor']:.2f} [{row['diff_floor_ci_low']:.2f}, {row['diff_floor_ci_high']:.2f}] |" in md
    from softtargets.report.study import arms_table, overview_arms

    table = arms_table(overview_arms(report.overview), report.overview).splitlines()
    assert table[0].startswith("| cell | floor | original | method |") and "| 0.0050 |" in table[2]
    fixed_table(tmp_path / "without")
    plain = build_report(tmp_path / "without", tmp_path / "plain")
    assert "floor" not in plain.overview[0] and "floor" not in (tmp_path / "plain" / "overview.csv").read_text()
    assert "floor" not in (tmp_path / "plain" / "report.md").read_text().split("\n", 1)[1]  # line 1: its path
    assert "floor" not in arms_table(overview_arms(plain.overview), plain.overview)


def test_holm_on_a_hand_computed_case():
    # sorted p: 0.01, 0.02, 0.03, 0.04 -> 4*0.01=0.04, 3*0.02=0.06, 2*0.03=0.06, 1*0.04=0.04 -> max so far
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_describe_on_a_hand_computed_case():
    d = describe([1.0, 2.0, 3.0, None, math.nan])
    assert d["n"] == 3 and d["mean"] == 2.0 and d["std"] == 1.0
    assert d["ci_high"] - 2.0 == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))


def test_report_files_groups_settings_and_counts_each_cell_once(tmp_path):
    runs = tmp_path / "runs"
    fixed_table(runs, lr=1e-4)
    fixed_table(runs / "more", lr=1e-3)  # a second setting of the same method, in a subfolder
    # the same cell copied elsewhere and an abandoned hidden run folder: neither may be counted
    copy = runs / "copies" / "digits-mlp-graddiff-hard-seed0-lr0.0001"
    copy.parent.mkdir()
    shutil.copytree(runs / copy.name, copy)
    write_run(runs, "hard", 9, {"acc_forget": 0.1}).rename(runs / ".digits-run.incomplete-1-abc")
    (runs / "_failed").mkdir()
    (runs / "_failed" / "x.json").write_text(json.dumps({"index": 3, "name": "x", "error": "RuntimeError: boom"}))
    report = build_report(runs, tmp_path / "rep")
    assert len(report.records) == 24
    assert report.groups == [("digits", "mlp", "graddiff", "unlearning.lr=0.0001"),
                             ("digits", "mlp", "graddiff", "unlearning.lr=0.001")]
    assert all(r["n"] == 6 for r in report.summary)
    out = tmp_path / "rep"
    md = (out / "report.md").read_text()
    assert "## digits / mlp / graddiff (unlearning.lr=0.001)" in md and "RuntimeError: boom" in md
    assert "24 runs, 24 completed" in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 5 and all(f"({p})" in md for p in pngs) and "forest.png" in pngs  # 2 per group + forest
    html = (out / "report.html").read_text()
    # the same PNGs as report.md, linked (not embedded a second time)
    assert sorted(unquote(src) for src in re.findall(r"<img alt='[^']*' src='([^']+)'>", html)) == pngs
    assert "base64" not in html
    assert "<table class='paired'>" in html
    assert "<table class='overview'>" in html
    # report.md as the docs site renders it (Python-Markdown's tables, which pad or cut every row to its header's
    # width): a |metric - ref| distance is one cell, followed by its family, not split with every value shifted
    rendered = markdown.markdown(md, extensions=["tables"])
    assert "<td>|acc_forget - ref|</td>\n<td>secondary</td>" in rendered
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 4 and {r["targets"] for r in rows} == {"hard", "soft"}  # groups x arms x metrics
    assert not list(tmp_path.glob(".rep.incomplete-*"))


def test_cli_report_formats_and_errors(cli, tmp_path):
    fixed_table(tmp_path / "runs")
    code, out, err = cli("report", str(tmp_path / "runs"), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["runs"] == 12 and len(data["paired"]) == 3 and len(data["answers"]) == 1
    code, out, _ = cli("report", str(tmp_path / "runs"), "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("dataset,architecture,method,setting,targets,metric,n")
    code, out, _ = cli("report", str(tmp_path / "runs"))
    assert code == 0 and "soft - hard" in out and (tmp_path / "runs" / "report" / "report.html").is_file()
    code, _, err = cli("report", str(tmp_path / "nothing"))
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = cli("report", str(tmp_path / "empty"))
    assert code == 2 and "no run folders" in err
    (tmp_path / "empty" / "runs.csv.xz").write_bytes(b"not xz")  # a damaged runs table: one line, nothing written
    code, _, err = cli("report", str(tmp_path / "empty"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot read" in err and "runs.csv.xz" in err, err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["runs.csv.xz"]


def test_report_skips_other_commands_folders_and_warns_about_unfinished_ones(tmp_path, cli):
    from softtargets.tracking.local import HOST

    runs = tmp_path / "runs"
    write_run(runs, "hard", 0, {"acc_forget": 0.9, "acc_distance_to_reference": 0.1, "param_change": 0.01})
    write_run(runs, "soft", 0, {"acc_forget": 0.8, "acc_distance_to_reference": 0.2, "param_change": 0.02})
    for command in ("forget-quality", "amnesia", "relearn", "lmc"):  # their result.json has no 'targets'
        other = runs / f"{command}-digits"
        other.mkdir()
        (other / "result.json").write_text(json.dumps({"status": "completed", "command": command, "seed": 0,
                                                       "dataset": "digits", "name": other.name, "metrics": {}}))
    (runs / "broken").mkdir()
    (runs / "broken" / "result.json").write_text(json.dumps({"name": "broken", "seed": "x"}))
    unfinished = runs / f".digits-run.incomplete-{HOST}-1-abcdef"  # pid 1: a live owner, kept
    unfinished.mkdir()
    built = build_report(runs)
    assert sorted(r.targets for r in built.records) == ["hard", "soft"] and built.unfinished == [unfinished]
    code, out, err = cli("report", str(runs), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert "1 unfinished run folder(s) not counted" in " ".join(err.split()) and "Traceback" not in err


def test_dz_interval_is_the_exact_noncentral_t_interval():
    from softtargets.report.stats import dz_interval

    low, high = dz_interval(0.5, 10)
    # published value for d = 0.5, n = 10 (e.g. MBESS ci.sm): [-0.17, 1.15]
    assert (round(low, 2), round(high, 2)) == (-0.17, 1.15)
    t = 0.5 * math.sqrt(10)
    assert stats.nct.cdf(t, 9, low * math.sqrt(10)) == pytest.approx(0.975, abs=1e-6)
    assert stats.nct.cdf(t, 9, high * math.sqrt(10)) == pytest.approx(0.025, abs=1e-6)
    assert dz_interval(0.0, 6)[0] == pytest.approx(-dz_interval(0.0, 6)[1])  # symmetric at 0
    assert all(math.isnan(v) for v in dz_interval(math.nan, 6) + dz_interval(1.0, 1))
    deep = dz_interval(-20.0, 6)  # deep in the tails, where scipy's nct.cdf returns nan
    assert deep[0] < -20.0 < deep[1] < 0


def write_quality(root, arm_targets: dict, F: float, null_F: float, method="graddiff", lr=1e-4):
    cfg = load_config(overrides={"unlearning.method": method, "unlearning.lr": lr, **{f"targets.{k}": v for k, v in
                                                                                       arm_targets.items()}})
    kind = arm_targets["kind"]
    name = f"forget-quality-digits-mlp-{method}-{kind}-{arm_targets.get('temperature', '')}"
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({**cfg.to_dict(), "forget_quality": {"n_models": 32}}))
    result = {"name": name, "status": "completed", "command": "forget-quality", "seed": 0, "dataset": "digits",
              "architecture": "mlp", "method": method, "n_models": 32, "finished_at": "2026-01-02",
              "split": {"spec": "class:5", "hash": "x"}, "reference": {"acc_retain": 0.99, "acc_test": 0.9},
              "kinds": {kind: {"F": F, "F_ci95": [F - 0.01, F + 0.01], "score": F * 0.9, "n_models": 32}},
              "null": {"F": null_F, "F_ci95": [null_F - 0.02, null_F + 0.02]}}
    (folder / "result.json").write_text(json.dumps(result))


def test_arms_audits_overview_and_regeneration_from_the_csvs(tmp_path):
    """soft at two temperatures are two arms; forget-quality audits join their arm; runs.csv.xz and
    forget_quality.csv alone regenerate every file of the report byte for byte, and so does a plain runs.csv (what
    reports wrote before)."""
    runs = tmp_path / "runs"
    for seed in range(6):
        write_run(runs, "hard", seed, {"js_forget_to_reference": HARD["js_forget_to_reference"][seed]})
        for t, shift in ((1.0, 0.0), (2.0, -0.005)):
            cfg_name = f"soft-T{t}"
            folder = write_run(runs, "soft", seed, {"js_forget_to_reference": SOFT["js_forget_to_reference"][seed] + shift})
            result = json.loads((folder / "result.json").read_text())
            result["targets"] = {"kind": "soft", "temperature": t, "smoothing": 0.1, "retain_kind": "soft"}
            result["name"] = f"{result['name']}-{cfg_name}"
            (folder / "result.json").write_text(json.dumps(result))
            folder.rename(folder.with_name(result["name"]))
    write_quality(runs, {"kind": "hard"}, 0.05, 0.2)
    write_quality(runs, {"kind": "soft", "temperature": 2.0}, 0.07, 0.2)
    first = build_report(runs, tmp_path / "from-folders")
    assert sorted({r.targets for r in first.records}) == ["hard", "soft T=1", "soft T=2"]
    assert [q.targets for q in first.quality] == ["hard", "soft T=2"]
    rows = {r["arm"]: r for r in first.overview}
    assert set(rows) == {"soft T=1", "soft T=2"}
    assert rows["soft T=2"]["F_hard"] == 0.05 and rows["soft T=2"]["F_other"] == 0.07
    assert rows["soft T=2"]["F_null"] == 0.2 and rows["soft T=1"]["F_other"] is None
    assert rows["soft T=2"]["original"] == pytest.approx(0.5)  # the original's distance, where unlearning starts
    d = np.array(SOFT["js_forget_to_reference"]) - 0.005 - np.array(HARD["js_forget_to_reference"])
    assert rows["soft T=2"]["mean_diff"] == pytest.approx(d.mean())
    assert rows["soft T=2"]["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert rows["soft T=2"]["dz_ci_low"] < rows["soft T=2"]["effect_dz"] < rows["soft T=2"]["dz_ci_high"] < 0
    # the overview is one family: Holm over its two rows, by hand (smaller p times 2, the larger at least that)
    small, large = sorted(rows.values(), key=lambda r: r["p"])
    assert small["p_holm"] == pytest.approx(min(1.0, 2 * small["p"]))
    assert large["p_holm"] == pytest.approx(max(small["p_holm"], large["p"]))
    # README's table: one line per group, hard first; with 6 seeds the smallest p (1/32) cannot pass Holm over 2
    # rows, so both arms read '=' (not shown) and nothing is bold although both raw p are below 0.05
    from softtargets.report.study import arms_table, overview_arms

    table = arms_table(overview_arms(first.overview), first.overview).splitlines()
    assert small["p"] < 0.05 and large["p"] < 0.05 and "**" not in "\n".join(table)
    # means by hand: hard 0.143 / 6, soft T=1 0.110 / 6, soft T=2 that less 0.005
    assert table[2:] == ["| digits mlp | 0.5000 | graddiff | hard 0.0238 · soft T=1 0.0183 = · soft T=2 0.0133 = |"]
    unpaired = [dict(first.overview[0]), dict(first.overview[1], hard=0.03)]  # an arm paired on other seeds
    with pytest.raises(ValueError, match="digits / mlp / graddiff: its arms were paired with hard on different"):
        overview_arms(unpaired)
    assert (tmp_path / "from-folders" / "forest.png").stat().st_size > 5000
    # the CSVs alone give the same report
    second = build_report(tmp_path / "from-folders" / "runs.csv.xz", tmp_path / "from-csv")
    pngs = sorted(p.name for p in (tmp_path / "from-folders").glob("*.png"))
    assert pngs == sorted(p.name for p in (tmp_path / "from-csv").glob("*.png")) and len(pngs) == 3
    for png in pngs:
        assert (tmp_path / "from-folders" / png).read_bytes() == (tmp_path / "from-csv" / png).read_bytes(), png
    table = lzma.decompress((tmp_path / "from-folders" / "runs.csv.xz").read_bytes()).decode()
    assert table.startswith("name,") and len(table.splitlines()) == 1 + 18  # a header and the 18 runs
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "runs.csv").write_text(table)
    shutil.copy(tmp_path / "from-folders" / "forget_quality.csv", legacy)
    third = build_report(legacy, tmp_path / "from-legacy")
    assert third.overview == first.overview and len(third.records) == 18
    for name in ("report.md", "runs.csv.xz", "forget_quality.csv", "summary.csv", "paired.csv", "overview.csv",
                 "report.json"):
        a, b = ((tmp_path / folder / name).read_bytes() for folder in ("from-folders", "from-csv"))
        if name == "report.json":  # names its input
            a, b = (json.loads(x) | {"runs_dir": ""} for x in (a, b))
        if name == "report.md":
            a, b = (x.split(b"\n", 1)[1] for x in (a, b))  # the title names its input
        assert a == b, name
    # overview.csv reads back as the rows it was written from, text as text, numbers exact
    from softtargets.io import clean_json
    from softtargets.report.build import read_table

    assert read_table(tmp_path / "from-csv" / "overview.csv") == [
        {k: r.get(k) for k in OVERVIEW_FIELDS} for r in clean_json(second.overview)]
    again = read_table(tmp_path / "from-csv" / "overview.csv")
    assert arms_table(overview_arms(again), again) == arms_table(overview_arms(first.overview), first.overview)
    md = (tmp_path / "from-csv" / "report.md").read_text()
    assert "## Overview: closer to the reference?" in md and "| digits | mlp | graddiff | soft T=2 | 6 |" in md


def test_the_readme_arms_table_shows_as_many_decimals_as_a_cell_needs_to_tell_its_arms_apart():
    from softtargets.report.study import arms_table

    def arm(forget, method, name, js):
        return {"dataset": "digits", "architecture": "mlp", "forget": forget, "method": method, "setting": forget,
                "arm": name, "js": js, "floor": 0.0097421, "original": 0.0125321}

    arms = [arm("class:5", "delete", "masked_pseudo", 0.12791), arm("class:5", "delete", "masked", 0.04778),
            arm("random:0.1", "delete", "masked_pseudo", 0.0125446), arm("random:0.1", "delete", "masked", 0.0125435),
            arm("random:0.1", "gradasc", "hard", 0.0136731), arm("random:0.1", "gradasc", "soft T=2", 0.0124481)]
    overview = [{"dataset": "digits", "architecture": "mlp", "method": r["method"], "setting": r["setting"],
                 "arm": r["arm"], "p_holm": 0.001, "mean_diff": -1.0} for r in arms if r["arm"] not in ("hard",
                                                                                                   "masked_pseudo")]
    lines = arms_table(arms, overview).splitlines()[2:]
    assert lines == [
        "| digits mlp class:5 | 0.0097 | 0.0125 | delete | masked_pseudo 0.1279 · **masked 0.0478 <** |",
        # 0.0125446 and 0.0125435 are one value at 4 or 5 decimals: the whole cell gets 6, floor and original included
        "| digits mlp random:0.1 | 0.009742 | 0.012532 | delete | masked_pseudo 0.012545 · **masked 0.012544 <** |",
        "| digits mlp random:0.1 | 0.009742 | 0.012532 | gradasc | hard 0.013673 · **soft T=2 0.012448 <** |"]


def test_two_arms_the_labels_cannot_tell_apart_are_refused_not_merged(tmp_path):
    """'hard, retain soft' names no temperature: runs at T = 2 and T = 4 of one seed would be one cell, and the
    report would keep whichever finished last. It refuses them instead, naming both runs and the key; runs whose
    results agree (a setting their targets do not use) are one cell as before."""
    from softtargets.errors import SoftTargetsError

    for t, finished, js in ((2.0, "2026-01-01", 0.1), (4.0, "2026-01-02", 0.2)):
        folder = write_run(tmp_path / "runs", "hard", 0, {"js_forget_to_reference": js}, finished=finished)
        folder = folder.rename(folder.with_name(f"{folder.name}-retain-soft-T{t:g}"))
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        cfg["targets"].update(retain_kind="soft", temperature=t)
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
        result = json.loads((folder / "result.json").read_text())
        result.update(name=folder.name, targets={"kind": "hard", "retain_kind": "soft", "temperature": t})
        (folder / "result.json").write_text(json.dumps(result))
    with pytest.raises(SoftTargetsError, match=r"retain-soft-T2 and .*retain-soft-T4 are both arm 'hard, retain "
                                               r"soft', seed 0, of digits / mlp / graddiff, but differ in "
                                               r"targets.temperature: the report cannot tell them apart"):
        build_report(tmp_path / "runs", tmp_path / "rep")
    assert not (tmp_path / "rep").exists()
    (later,) = tmp_path.glob("runs/*T4")
    (later / "result.json").write_text((later / "result.json").read_text().replace('"js_forget_to_reference": 0.2',
                                                                                     '"js_forget_to_reference": 0.1'))
    from softtargets.report.aggregate import collect

    (cell,) = collect(tmp_path / "runs")  # the same results: one cell, the later run
    assert cell.name.endswith("T4")


def test_two_forget_quality_audits_of_one_arm_with_different_f_are_refused_not_one_kept(tmp_path):
    from softtargets.errors import SoftTargetsError

    runs = tmp_path / "runs"
    fixed_table(runs)
    write_quality(runs, {"kind": "hard"}, 0.05, 0.2)
    (first,) = runs.glob("forget-quality-*")
    second = first.with_name(first.name + "-n64")
    shutil.copytree(first, second)
    result = json.loads((second / "result.json").read_text())
    result["name"], result["kinds"]["hard"]["F"] = second.name, 0.09
    (second / "result.json").write_text(json.dumps(result))
    with pytest.raises(SoftTargetsError, match=r"forget-quality audits .* and .* are both arm 'hard' of digits / mlp "
                                               r"/ graddiff with different F"):
        build_report(runs, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()  # refused before any file is written
    result["kinds"]["hard"]["F"] = 0.05  # the same audit found twice: one
    (second / "result.json").write_text(json.dumps(result))
    assert build_report(runs, tmp_path / "rep").overview[0]["F_hard"] == 0.05
