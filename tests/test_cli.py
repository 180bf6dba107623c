import json
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--epochs", "2", "--unlearn-epochs", "1", "--device", "cpu"]


def paths(tmp_path):
    return ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]


def test_run_with_original_flags_writes_result(cli, tmp_path):
    code, out, err = cli("run", "--dataset", "digits", "--mu_algo", "graddiff", "--architecture", "cnn",
                         "--softtargets", *FAST, *paths(tmp_path))
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    result = json.loads((folder / "result.json").read_text())
    assert result["targets"]["kind"] == "soft" and result["architecture"] == "cnn"
    assert "acc_forget" in out and str(folder) in out.replace("\n", "")


def test_no_command_means_run_as_in_the_docker_image(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "--dataset", "digits", "--mu-algo",
                           "gradasc", *FAST, *paths(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())["method"] == "gradasc"


@pytest.mark.parametrize("args, message", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--architecture", "transformer"], "unknown architecture 'transformer'"),
    (["--mu_algo", "magic"], "unknown method 'magic'"),
    (["--targets", "fuzzy"], "unknown target kind 'fuzzy'"),
    (["--forget", "class:1:0.5:high_mem:2"], "malformed forget spec"),
    (["--forget", "class:0,1,2,3,4,5,6,7,8,9"], "leaves fewer than 2 classes"),
    (["--forget", "random:0"], "between 0 and 1"),
    (["--temperature", "0"], "temperature must be a finite number > 0"),
    (["--param", "alpha"], "KEY=VALUE"),
    (["--mu_algo", "no/such/file.py:Thing"], "plugin file no/such/file.py not found"),
    (["--mu_algo", "json:NoClass"], "'json' has no attribute 'NoClass'"),
])
def test_bad_input_one_line_exit_2_nothing_written(cli, tmp_path, args, message):
    code, out, err = cli("run", *args, *FAST, *paths(tmp_path))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_invalid_yaml_names_file(cli, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("unlearning:\n  epocs: 3\n")
    code, _, err = cli("run", "--config", str(cfg), *paths(tmp_path))
    assert code == 2 and "exp.yaml: unknown key 'epocs' in section 'unlearning'" in err


def test_debug_shows_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "softtargets", "--debug", "run", "--dataset", "nope",
                           *paths(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_diverging_run_is_recorded_and_reported(cli, tmp_path):
    cfg = tmp_path / "diverge.yaml"  # plain SGD gradient ascent at a huge rate overflows within an epoch
    cfg.write_text("unlearning:\n  method: gradasc\n  optimizer: sgd\n  lr: 1.0e+4\n  epochs: 20\n")
    code, out, err = cli("run", "--config", str(cfg), "--epochs", "1", "--device", "cpu", *paths(tmp_path))
    assert code == 1 and "diverged" in err
    result = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert result["status"] == "diverged" and result["unlearning"]["stopped"]


def test_compare_writes_markdown_table(cli, tmp_path):
    code, out, err = cli("compare", "--seeds", "0,2", "--mu_algo", "gradasc", *FAST, *paths(tmp_path))
    assert code == 0, err
    (folder,) = (tmp_path / "runs").glob("compare-*")
    md = (folder / "comparison.md").read_text()
    lines = md.splitlines()
    # the one-line answer leads; what 2 seeds cannot show, and the degenerate soft arm, are said up front
    assert lines[2].startswith("**no significant difference between soft and hard on js_forget_to_reference")
    assert "with 2 differing paired seeds the smallest possible p is 0.5 > 0.05" in md and "use at least 6 seeds" in md
    assert "soft targets give forget_ce no gradient at the original weights (2 of 2 seeds)" in md
    assert "Holm p: primary: the primary test alone: adjusted p = p; secondary: Holm over this comparison's" in md
    assert "| \\|acc_forget - ref\\| | secondary |" in md  # the pipes escaped: it stays one cell and "| acc_forget |" in md and "seeds (0, 2)" in md
    summary = json.loads((folder / "comparison.json").read_text())
    assert summary["seeds"] == [0, 2] and len(summary["runs"]["soft"]) == 2
    assert summary["comparison"]["n"] == 2 and summary["comparison"]["rows"][0]["family"] == "primary"
    assert len(list((folder / "runs").iterdir())) == 4
    assert "|acc_forget - ref|" in out and "no significant difference" in out


def test_list_shows_methods_with_target_use(cli):
    code, out, _ = cli("list", "methods")
    assert code == 0 and "graddiff" in out and "retain term" in out
