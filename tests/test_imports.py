"""The command line imports only what a command uses, and every module imports on its own."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "sklearn", "scipy", "matplotlib")

# runs the CLI in a fresh interpreter and reports the exit code and which heavy packages got imported
PROBE = """
import json, sys
from softtargets.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as stop:
    code = stop.code if isinstance(stop.code, int) else 1
loaded = [m for m in {heavy!r} if m in sys.modules]
with open({report!r}, "w") as f:
    json.dump({{"code": code, "loaded": loaded}}, f)
"""


def run_cli(tmp_path, *args: str) -> dict:
    report = tmp_path / "probe.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY, report=str(report)), *args], cwd=tmp_path,
                   env=env, capture_output=True, timeout=120, check=False)
    return json.loads(report.read_text())


@pytest.mark.parametrize("args, code", [
    (["--help"], 0),
    (["list"], 0),
    (["list", "methods"], 0),
    (["run", "--help"], 0),
    (["run", "--seeds", "3"], 2),  # a usage error (Typer)
    (["run", "--param", "alpha"], 2),  # a flag checked by the CLI
    (["--dataset", "digits", "--mu_algo", "nope"], 2),  # a config error (load_config)
    (["compare", "--seeds", "x"], 2),
    (["compare", "--workers", "0"], 2),
    (["forget-quality", "--workers", "0"], 2),
    (["relearn", "--k", "-1"], 2),
    (["sweep", "missing.yaml", "--workers", "0"], 2),
    (["report", "no-such-folder"], 2),
    (["reproduce", "no-such.csv", "x"], 2),
])
def test_light_commands_never_import_torch(tmp_path, args, code):
    probe = run_cli(tmp_path, *args)
    assert probe == {"code": code, "loaded": []}, args


def test_report_imports_its_statistics_and_plots_but_not_torch(tmp_path):
    for seed in range(3):
        for kind, acc in (("hard", 0.5 + seed / 100), ("soft", 0.4 + seed / 50)):
            run = tmp_path / "runs" / f"digits-mlp-gradasc-{kind}-seed{seed}"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(f"seed: {seed}\ntargets:\n  kind: {kind}\n")
            (run / "result.json").write_text(json.dumps({
                "name": run.name, "status": "completed", "dataset": "digits", "architecture": "mlp",
                "method": "gradasc", "seed": seed, "targets": {"kind": kind},
                "metrics": {"unlearned": {"acc_forget": acc}, "reference": {"acc_forget": 0.45}}}))
    probe = run_cli(tmp_path, "report", str(tmp_path / "runs"))
    assert probe == {"code": 0, "loaded": ["scipy", "matplotlib"]}
    assert "acc_forget" in (tmp_path / "runs" / "report" / "report.md").read_text()


EACH_MODULE = """
import importlib, pkgutil, sys
import softtargets

names = [m.name for m in pkgutil.walk_packages(softtargets.__path__, "softtargets.")
         if m.name != "softtargets.__main__"]
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "softtargets" or m.startswith("softtargets.")]:
        del sys.modules[loaded]  # third-party packages stay loaded: only our import order is under test
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{name}: {type(err).__name__}: {err}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_on_its_own():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", EACH_MODULE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, *failed = done.stdout.strip().split("\n")
    assert int(count) > 80 and failed == [], failed


def import_graph(package: Path = ROOT / "softtargets") -> dict[str, set[str]]:
    """module -> softtargets modules it imports anywhere: at the top, in functions, under `if TYPE_CHECKING:`,
    absolute or relative. (The method registry's importlib.import_module of each method file is no edge: the
    method files import softtargets.methods.base, which imports none of them.)"""
    files = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in files.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            targets |= {n for n in names if n in files and n != module}
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module."""
    reach = {m: set() for m in graph}
    for start in graph:
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m not in reach[start]:
                reach[start].add(m)
                todo += graph[m]
    found = []
    for m in graph:
        component = {m} | {o for o in reach[m] if m in reach[o]}
        if len(component) > 1 and component not in found:
            found.append(component)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert not {"softtargets.methods.base", "softtargets.protocols", "softtargets.models"} & graph["softtargets.config"]
    assert not {m for m in graph["softtargets.data.files"] if m.startswith("softtargets.training")}  # writes: io
    assert cycles(graph) == []


def test_the_graph_sees_hidden_and_relative_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.x import X\n")
    (tmp_path / "pkg" / "x.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.y import Y\n")
    (tmp_path / "pkg" / "y.py").write_text("def f():\n    from . import x\n")
    graph = import_graph(tmp_path / "pkg")
    assert graph == {"pkg": {"pkg.x"}, "pkg.x": {"pkg.y"}, "pkg.y": {"pkg", "pkg.x"}}
    assert cycles(graph) == [{"pkg", "pkg.x", "pkg.y"}]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
