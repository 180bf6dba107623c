"""`softtargets reproduce RUNS_CSV NAME`: a row reruns to exactly its values (exit 0), a changed value is named
(exit 1), bad input is one line (exit 2), and a study from a smaller instruction set reruns in a child process
whose torch kernels are pinned to it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from softtargets.report.aggregate import read_csv, run_row, write_csv
from softtargets.report.study import machine_info
from softtargets.reproduce import PINS, pinning

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--architecture", "mlp", "--mu_algo", "graddiff", "--targets", "soft", "-T", "2",
        "--epochs", "1", "--unlearn-epochs", "1", "--device", "cpu"]
AMD = {"cpu": "AMD EPYC", "cpu_capability": "AVX2", "torch": "2.15.0+cu132"}
XEON = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX2", "torch": "2.15.0+cu132"}
ATEN_ONEDNN = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
XEON_STUDY = {**XEON, "cpu_best": "AVX512", "kernel_env": ATEN_ONEDNN}  # study 2's machine.json


def study(tmp_path: Path, machine: dict, env: dict | None = None) -> tuple[Path, str]:
    """A one-row study: a tiny run (in a process with `env` set), its runs.csv.xz and the given machine.json."""
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "run", *TINY, "--out", str(runs),
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    (folder,) = runs.iterdir()
    result = json.loads((folder / "result.json").read_text())
    import yaml

    write_csv(tmp_path / "runs.csv.xz", [run_row(result, yaml.safe_load((folder / "config.yaml").read_text()))])
    (tmp_path / "machine.json").write_text(json.dumps(machine))
    return tmp_path / "runs.csv.xz", result["name"]


def reproduce(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "softtargets", "--quiet", "reproduce", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_a_row_reruns_bit_for_bit_and_a_changed_value_is_named(tmp_path, cli):
    runs_csv, name = study(tmp_path, machine_info())
    code, out, err = cli("--quiet", "reproduce", str(runs_csv), name)
    assert code == 0, err
    lines = out.splitlines()
    assert f"values identical: {name} reran bit for bit" in lines[-1]
    js = next(line for line in lines if line.startswith("unlearned.js_forget_to_reference "))
    assert js.split()[1] == js.split()[2] and js.endswith("identical")
    assert "as the study's machine did" in err

    (row,) = read_csv(runs_csv)
    row["unlearned.js_forget_to_reference"] += 1e-12
    write_csv(runs_csv, [row])
    code, out, err = cli("--quiet", "reproduce", str(runs_csv), name)
    js = next(line for line in out.splitlines() if line.startswith("unlearned.js_forget_to_reference "))
    assert code == 1 and js.endswith("differs") and f"1 of {len(lines) - 2} values differ" in err


@pytest.mark.slow  # four processes that load torch: half a minute on 2 cores
@pytest.mark.skipif(machine_info()["cpu_capability"] != "AVX512", reason="needs a CPU whose best is AVX-512")
def test_a_study_from_a_smaller_instruction_set_reruns_pinned_to_it(tmp_path):
    here = machine_info()
    runs_csv, name = study(tmp_path, {**here, "cpu_capability": "AVX2"}, env=PINS["AVX2"])
    done = reproduce(str(runs_csv), name)
    assert "kernels pinned to the study's AVX2" in done.stderr and done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "machine.json").write_text(json.dumps(here))  # the study as if it ran on AVX-512: no pins
    unpinned = reproduce(str(runs_csv), name)
    assert unpinned.returncode == 1 and "differs" in unpinned.stdout  # the pins matter on this very row


@pytest.mark.parametrize("args, message", [
    (["missing/runs.csv.xz", "x"], "no file 'missing/runs.csv.xz': give a study's folder or its runs.csv.xz"),
    (["docs", "x"], "no file 'docs/runs.csv.xz': give a study's folder or its runs.csv.xz, e.g. docs/results/study2"),
    (["docs/results", "digits-mlp-gradasc-hard-seed3"], "no run named 'digits-mlp-gradasc-hard-seed3' in "
                                                        "docs/results/runs.csv.xz: e.g. "
                                                        "digits-mlp-gradasc-hard-seed3-34fced52"),
    (["docs/results/runs.csv.xz", "nothing"], "no run named 'nothing' in docs/results/runs.csv.xz: the names are in "
                                              "its first column (1000 rows)"),
    (["docs/results/machine.json", "x"], "cannot read docs/results/machine.json"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = cli("reproduce", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("study, here, env, exact, says", [
    (AMD, {**AMD, "cpu_capability": "AVX512"}, PINS["AVX2"], True, "kernels pinned to the study's AVX2"),
    (AMD, AMD, {}, True, "as the study's machine did"),
    (AMD, {**AMD, "cpu": "Intel(R) Xeon(R)", "cpu_capability": "AVX512"}, PINS["AVX2"], False, "by CPU vendor"),
    ({**AMD, "cpu_capability": "AVX512"}, AMD, {}, False, "cannot run the study's AVX512 kernels"),
    (AMD, {**AMD, "torch": "2.16.0"}, {}, False, "torch 2.16.0 here, 2.15.0+cu132 there"),
    ({}, AMD, {}, False, "no machine.json"),
    # a study that recorded its own pins (study 2: ATen and oneDNN held to AVX2, MKL left alone) gets exactly those
    ({**AMD, "kernel_env": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}},
     {**AMD, "cpu_capability": "AVX512"}, {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, True,
     "pinned as the study ran"),
    ({**AMD, "cpu_capability": "AVX512", "kernel_env": {"ATEN_CPU_CAPABILITY": "avx512"}}, AMD, {}, False,
     "cannot run the study's AVX512 kernels"),
    # study 2 ran on an Intel Xeon with AVX-512, MKL unpinned: MKL used its AVX-512 kernels there. Measured: with
    # MKL_ENABLE_INSTRUCTIONS=AVX2 added, 9 of a digits mlp row's 58 values differ in their last digits
    (XEON_STUDY, {**XEON, "cpu_capability": "AVX512", "cpu_best": "AVX512"}, ATEN_ONEDNN, True,
     "pinned as the study ran"),
    (XEON_STUDY, {**XEON, "cpu_capability": "AVX2", "cpu_best": "AVX2"}, ATEN_ONEDNN, False,
     "MKL was not pinned in the study, so its matrix kernels ran AVX512 there; this CPU's best is AVX2"),
    ({**XEON_STUDY, "cpu_best": "AVX2"}, {**XEON, "cpu_capability": "AVX512", "cpu_best": "AVX512"},
     {**ATEN_ONEDNN, "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, True, "MKL_ENABLE_INSTRUCTIONS=AVX2"),
    # an AMD study: MKL gives AMD CPUs no AVX-512 kernels, so nothing more is pinned
    ({**AMD, "cpu_best": "AVX512", "kernel_env": ATEN_ONEDNN},
     {**AMD, "cpu_capability": "AVX512", "cpu_best": "AVX512"}, ATEN_ONEDNN, True, "pinned as the study ran"),
])
def test_pinning(study, here, env, exact, says):
    pin = pinning(study, here)
    assert (pin.env, pin.exact) == (env, exact) and says in pin.note


def test_machine_info_records_the_kernel_pins_a_study_runs_under(monkeypatch):
    from softtargets.report.study import machine_info

    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    monkeypatch.delenv("MKL_CBWR", raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine_info()["kernel_env"] == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    assert machine_info()["cpu_best"] == ("AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "DEFAULT")
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(name)
    assert "kernel_env" not in machine_info()
