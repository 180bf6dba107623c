"""Rerunning one published row of a study's runs table, and comparing what comes back with what was published.

A CPU run's last bits depend, besides the code, the seed and the thread count, on the kernels torch picks for the
processor's instruction set (AVX2, AVX-512) and on torch's version; training amplifies a different last bit into
a different model. A study's machine.json records the instruction set its torch used (`cpu_capability`). On a
processor that also runs a larger one, the kernels of torch (ATEN_CPU_CAPABILITY), of oneDNN (convolutions,
ONEDNN_MAX_CPU_ISA) and of MKL (matrix products, MKL_ENABLE_INSTRUCTIONS) can be held to the study's. All three
are read once, when torch loads, so the rerun goes to a child process started with them set.

What pinning gives, measured: study 1 (AMD EPYC, AVX2) reran bit for bit on an AMD CPU with AVX-512. On an Intel
Xeon with AVX-512 its rows came back within about 1e-8 of the published values but not bit for bit: MKL picks its
own kernels by CPU vendor, beyond what these variables hold. So a rerun is expected to be exact only on a CPU of
the study's vendor. A study that pinned torch and oneDNN but not MKL (study 2, on an Intel Xeon with AVX-512) ran
MKL's kernels at its CPU's own best (machine.json `cpu_best`): with MKL held to AVX2 instead, 9 of a digits mlp
row's 58 values differ in their last digits, so such a study is exact only where MKL can run that best.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from softtargets.errors import SoftTargetsError, brief

# torch's name of an instruction set -> the variables that hold torch's CPU kernels to it
PINS = {
    "AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
}
X86 = ("DEFAULT", "AVX2", "AVX512")  # torch's x86 capabilities, each running on every CPU of a later one
COMPARED = ("status", "targets.terms")  # besides every column of these prefixes:
COMPARED_PREFIXES = ("original.", "reference.", "unlearned.", "split.", "unlearning.")


@dataclass(frozen=True)
class Pinning:
    env: dict[str, str]  # set in the rerun's process before torch loads
    exact: bool  # whether the rerun is expected to give the published bits
    note: str  # one sentence saying which kernels the rerun uses and why


def published(runs_csv: str | Path, name: str) -> tuple[dict, dict]:
    """The row NAME of RUNS_CSV (a runs table, or a study folder holding one), and the machine.json beside it ({}
    where there is none)."""
    from softtargets.report.aggregate import RUNS_CSV, read_csv, runs_table

    path = Path(runs_csv)
    if path.is_dir():
        path = runs_table(path) or path / RUNS_CSV
    if not path.is_file():
        raise SoftTargetsError(f"no file {brief(str(path))}: give a study's folder or its runs.csv.xz, e.g. "
                               "docs/results/study2")
    rows = read_csv(path)
    found = [r for r in rows if r.get("name") == name]
    if not found:
        names = [r.get("name", "") for r in rows]
        near = [n for n in names if n.startswith(name)][:3] or [n for n in names if n.startswith(
            name.split("-seed")[0] + "-seed")][:3]
        hint = f"e.g. {', '.join(near)}" if near else f"the names are in its first column ({len(rows)} rows)"
        raise SoftTargetsError(f"no run named {brief(name)} in {path}: {hint}")
    if not isinstance(found[0].get("config"), dict):
        raise SoftTargetsError(f"{path}: run {name} has no recorded configuration to rerun")
    machine = path.parent / "machine.json"
    try:
        return found[0], json.loads(machine.read_text()) if machine.is_file() else {}
    except ValueError as err:
        raise SoftTargetsError(f"cannot read {machine}: {err}") from None


def vendor(cpu: str) -> str:
    return next((v for v in ("AMD", "Intel") if v.lower() in cpu.lower()), "")


def pinning(study: dict, here: dict) -> Pinning:
    """Which kernels a rerun on this machine can hold to the study's machine, and whether the published bits are
    to be expected. Both are machine_info() dictionaries: the study's from its machine.json, this machine's."""
    wanted, capability = study.get("cpu_capability"), here["cpu_capability"]
    caveats = []
    if study.get("torch") and study["torch"] != here["torch"]:
        caveats.append(f"torch {here['torch']} here, {study['torch']} there: the kernels themselves differ")
    if vendor(study.get("cpu", "")) != vendor(here["cpu"]):
        caveats.append(f"the study ran on {study.get('cpu') or 'an unrecorded CPU'}, this is {here['cpu']}: MKL picks "
                       f"its matrix kernels by CPU vendor, so the last bits may differ")
    if not wanted:
        return Pinning({}, False, "; ".join(["the study has no machine.json with its cpu_capability: kernels not "
                                             "pinned, the last bits may differ"] + caveats))
    recorded = study.get("kernel_env")  # the pins the study itself ran under: set exactly those, nothing else
    if recorded and capability in X86 and wanted in X86 and X86.index(wanted) <= X86.index(capability):
        env, mkl_caveat = _with_mkl(dict(recorded), study, here)
        caveats += [mkl_caveat] if mkl_caveat else []
        pins = " ".join(f"{k}={v}" for k, v in env.items())
        note = f"kernels pinned as the study ran ({pins}; this CPU's best is {capability})"
        return Pinning(env, not caveats, "; ".join([note] + caveats))
    if wanted == capability:
        note = f"this CPU runs {wanted} kernels, as the study's machine did"
        return Pinning({}, not caveats, "; ".join([note] + caveats))
    if wanted in PINS and capability in X86 and X86.index(wanted) < X86.index(capability):
        env = " ".join(f"{k}={v}" for k, v in PINS[wanted].items())
        note = f"kernels pinned to the study's {wanted} ({env}; this CPU's best is {capability})"
        return Pinning(PINS[wanted], not caveats, "; ".join([note] + caveats))
    return Pinning({}, False, "; ".join([f"this CPU cannot run the study's {wanted} kernels (its best is "
                                         f"{capability}): the last bits will differ"] + caveats))


def _with_mkl(env: dict, study: dict, here: dict) -> tuple[dict, str]:
    """A study that pinned torch's and oneDNN's kernels but not MKL's ran MKL's matrix kernels at its CPU's own
    best (`cpu_best`; on Intel CPUs: AMD's get no AVX-512 kernels from MKL). Where that is recorded, hold MKL to
    it on a CPU that runs more; on one that runs less, say the last bits may differ. Returns the pins and the
    caveat ('' for none)."""
    best, mine = study.get("cpu_best"), here.get("cpu_best")
    intel = vendor(study.get("cpu", "")) == "Intel"
    if "MKL_ENABLE_INSTRUCTIONS" in env or best not in PINS or mine not in X86 or not intel:
        return env, ""
    if X86.index(best) > X86.index(mine):
        return env, (f"MKL was not pinned in the study, so its matrix kernels ran {best} there; this CPU's best is "
                     f"{mine}: the last bits may differ")
    if best != mine:
        env["MKL_ENABLE_INSTRUCTIONS"] = PINS[best]["MKL_ENABLE_INSTRUCTIONS"]
    return env, ""


def rerun(row: dict, out: str | Path | None = None, hooks=None) -> dict:
    """Run the row's recorded configuration again from scratch (its original and reference trained anew in a
    temporary model cache: a cached model may come from other kernels); the run folder goes to `out`, or to a
    temporary folder removed afterwards. Returns result.json's content."""
    from softtargets.config import config_from_dict, replace
    from softtargets.experiment import run_experiment

    cfg = config_from_dict(row["config"], "the runs table")
    with tempfile.TemporaryDirectory(prefix="softtargets-reproduce-") as scratch:
        cfg = replace(cfg, out=str(out or Path(scratch) / "runs"), cache_dir=str(Path(scratch) / "cache"))
        return run_experiment(cfg, hooks)


def compared(row: dict, result: dict) -> list[tuple[str, object, object]]:
    """(column, published, rerun) for every compared column of the row: the status, the loss-term probe, the
    split and the unlearning outcome, and every metric of the original, the reference and the unlearned model.
    The rerun's values go through the runs table's own encoding (non-finite numbers as None, tuples as lists)."""
    from softtargets.report.aggregate import finite_or_none, run_row

    again = run_row(result, {})
    keys = [k for k in row if k in COMPARED or k.startswith(COMPARED_PREFIXES)]
    return [(k, row[k], json.loads(json.dumps(finite_or_none(again.get(k))))) for k in keys]
