"""ClearML tracking (issue 3) with the real clearml SDK: offline session zips, the online path against a local
HTTP stand-in (tests/clearml_server.py), an unreachable server, clearml-agent parameter read-back, and no
ClearML cost with --tracker none.

The CLI runs in subprocesses: the SDK reads its configuration once per process and keeps global state (the
main Task, offline mode), and each test must be isolated from any real ~/clearml.conf.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from softtargets.tracking.clearml import _restore_none, configured, result_values

pytest.importorskip("clearml")
pytest.importorskip("jwt")
from clearml_server import FakeClearML  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "2", "--unlearn-epochs", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """One model cache for the module: the original and reference are trained once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def env(tmp_path, model_cache):
    """An environment with no ClearML configuration at all (HOME, config file and cache all under tmp_path)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    return {**clean, "HOME": str(tmp_path / "home"), "CLEARML_CONFIG_FILE": str(tmp_path / "no-clearml.conf"),
            "CLEARML_CACHE_DIR": str(tmp_path / "clearml-cache"), "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT / "tests"), "SOFTTARGETS_TEST_CACHE": str(model_cache)}


def softtargets(env: dict, tmp_path: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "softtargets", "--quiet", *args, "--out", str(tmp_path / "runs"),
           "--cache-dir", env["SOFTTARGETS_TEST_CACHE"]]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def only_run_folder(tmp_path: Path) -> Path:
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    return folder


def read_session(zip_path: Path) -> tuple[dict, list[dict], zipfile.ZipFile]:
    """An offline session: task.json and the events of metrics.jsonl (one JSON list per line)."""
    z = zipfile.ZipFile(zip_path)
    events = [e for line in z.read("metrics.jsonl").decode().splitlines() if line.strip() for e in json.loads(line)]
    return json.loads(z.read("task.json")), events, z


def scalars(events: list[dict], metric: str) -> dict[tuple[str, int], float]:
    return {(e["variant"], e["iter"]): e["value"] for e in events
            if e["type"] == "training_stats_scalar" and e["metric"] == metric}


def curves(run: Path, series: str) -> dict[tuple[str, int], float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {(k, r["step"]): v for r in rows if r["series"] == series for k, v in r.items()
            if k not in ("series", "step")}


# ----- pure functions ------------------------------------------------------------------------------------

def test_result_values_flattens_numeric_metrics_and_timings_only():
    result = {"status": "completed", "seed": 3,
              "metrics": {"unlearned": {"acc_forget": 0.25, "per_class_test_acc": [0.1, 0.2], "flag": True},
                          "reference": {"acc_forget": 0.5, "nan": float("nan")}},
              "timings": {"unlearn_s": 1.5, "original_cached": False}}
    assert result_values(result) == {"unlearned/acc_forget": 0.25, "reference/acc_forget": 0.5,
                                     "timings/unlearn_s": 1.5}


def test_restore_none_turns_empty_values_back_into_none():
    local = {"clip_grad": None, "lr": 0.1, "retain_floor": None, "params": {"alpha": None}}
    remote = {"clip_grad": "", "lr": 0.2, "retain_floor": "0.5", "params": {"alpha": "None"}}
    assert _restore_none(local, remote) == {"clip_grad": None, "lr": 0.2, "retain_floor": "0.5",
                                            "params": {"alpha": None}}


def test_configured_reads_the_same_places_as_the_sdk(tmp_path, monkeypatch):
    for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "clearml.conf"))
    assert not configured()
    (tmp_path / "clearml.conf").write_text("api {}\n")
    assert configured()
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "other.conf"))
    assert not configured()
    monkeypatch.setenv("CLEARML_API_HOST", "http://clearml.example:8008")
    assert configured()


def test_tracker_clearml_without_configuration_fails_before_work(cli, tmp_path, monkeypatch):
    for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_TASK_ID", "CLEARML_OFFLINE_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "missing.conf"))
    code, _, err = cli("run", "--tracker", "clearml", "--out", str(tmp_path / "runs"), "--device", "cpu")
    assert code == 2
    assert "ClearML is not configured" in err and "clearml-init" in err
    assert not (tmp_path / "runs").exists()
    code, _, err = cli("run", "--tracker", "wandb", "--out", str(tmp_path / "runs"))
    assert code == 2 and "unknown --tracker 'wandb'" in err


# ----- real runs -----------------------------------------------------------------------------------------

def test_tracker_none_and_unconfigured_auto_never_import_clearml(env, tmp_path):
    script = ("import sys\nfrom softtargets.cli import main\nfrom softtargets.tracking import open_tracker\nfrom softtargets.tracking.base import Tracker\n"
              "assert type(open_tracker('auto', name='x', tags=[])) is Tracker  # nothing configured\n"
              "try:\n    main(['--quiet', 'run', '--tracker', 'none', *sys.argv[1:]])\n"
              "except SystemExit as e:\n    assert not e.code, e.code\n"
              "assert 'clearml' not in sys.modules\nprint('NO-CLEARML')\n")
    proc = subprocess.run([sys.executable, "-c", script, *FAST, "--out", str(tmp_path / "runs"),
                           "--cache-dir", env["SOFTTARGETS_TEST_CACHE"]],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "NO-CLEARML" in proc.stdout and (only_run_folder(tmp_path) / "result.json").is_file()
    assert not (tmp_path / "clearml-cache").exists()  # no offline session, no SDK cache either


def test_offline_session_zip_holds_scalars_values_plots_parameters_and_artifacts(env, tmp_path):
    proc = softtargets(env, tmp_path, "run", "--tracker", "clearml", "--clearml-offline", "--targets", "soft",
                       "--temperature", "2", "--seed", "1", *FAST)
    assert proc.returncode == 0, proc.stderr
    (zip_path,) = (tmp_path / "clearml-cache" / "offline").glob("*.zip")
    assert f"ClearML offline session: {zip_path}" in proc.stderr  # the command says where it is
    run = only_run_folder(tmp_path)
    task, events, z = read_session(zip_path)

    assert task["name"] == "digits-mlp-graddiff-soft-seed1" and task["project_name"] == "softtargets"
    assert set(task["tags"]) == {"digits", "mlp", "graddiff", "soft", "seed1"}
    params = {s: {k: p["value"] for k, p in v.items()} for s, v in task["hyperparams"].items()}
    assert {"data", "training", "unlearning", "targets", "run"} <= set(params)
    assert params["targets"]["kind"] == "soft" and float(params["targets"]["temperature"]) == 2.0
    assert params["unlearning"]["epochs"] == "2" and params["training"]["epochs"] == "2"
    assert params["unlearning"]["params/alpha"] != "" and params["run"]["seed"] == "1"

    # per-epoch scalars: exactly the run folder's curves, each (series, step) once
    for series in ("original", "reference", "unlearn"):
        assert curves(run, series) and scalars(events, series) == pytest.approx(curves(run, series)), series
        sent = [e for e in events if e["type"] == "training_stats_scalar" and e["metric"] == series]
        assert len(sent) == len(curves(run, series)), series

    # single values: result.json's metrics
    result = json.loads((run / "result.json").read_text())
    summary = scalars(events, "Summary")
    assert summary[("unlearned/acc_forget", -2**31)] == pytest.approx(result["metrics"]["unlearned"]["acc_forget"])
    assert summary[("reference/acc_test", -2**31)] == pytest.approx(result["metrics"]["reference"]["acc_test"])

    # plots: every PNG of the run folder, byte for byte
    images = {e["metric"]: e["key"] for e in events if e["type"] == "training_debug_image"}
    assert set(images) == {p.stem for p in run.glob("*.png")} >= {"per_class_accuracy", "unlearning_curves"}
    stored = {n.rsplit("/", 1)[-1]: n for n in z.namelist()}
    assert z.read(stored[images["per_class_accuracy"].rsplit("/", 1)[-1]]) == \
        (run / "per_class_accuracy.png").read_bytes()

    # artifacts: result.json and config.yaml as written locally; no weights without --log-models
    artifacts = {a["key"]: a for a in task["execution"]["artifacts"]}
    assert {"result.json", "config.yaml"} <= set(artifacts) and "model.pt" not in artifacts
    assert z.read(stored["result.json"]) == (run / "result.json").read_bytes()
    assert yaml.safe_load(z.read(stored["config.yaml"]))["targets"]["kind"] == "soft"


def test_close_does_not_wait_for_a_reporting_subprocess_even_if_the_users_config_asks_for_one(env, tmp_path):
    """ClearML reports from a forked subprocess on Linux by default; Task.close() then waits ~17 s for it
    (measured on digits). The tracker turns that off whatever clearml.conf says."""
    conf = tmp_path / "clearml.conf"
    conf.write_text("sdk { development { report_use_subprocess: true } }\n")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"metrics": {"unlearned": {"acc_forget": 0.5}}}))
    script = ("import sys, time\nfrom pathlib import Path\nfrom softtargets.tracking import open_tracker\n"
              "t = open_tracker('clearml', name='close-timing', tags=[], offline=True)\n"
              "t.scalars('unlearn', 1, {'loss': 0.5})\nt.mirror(Path(sys.argv[1]))\n"
              "start = time.perf_counter()\nt.close()\nprint('CLOSE', time.perf_counter() - start)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(folder)], env={**env, "CLEARML_CONFIG_FILE": str(conf)},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    close_s = float(proc.stdout.split("CLOSE")[1])
    assert close_s < 5.0
    (zip_path,) = (tmp_path / "clearml-cache" / "offline").glob("*.zip")
    _, events, _ = read_session(zip_path)
    assert scalars(events, "unlearn") == {("loss", 1): 0.5}
    assert scalars(events, "Summary") == {("unlearned/acc_forget", -2**31): 0.5}


def clearml_env(env: dict, server: FakeClearML) -> dict:
    return {**env, "CLEARML_API_HOST": server.api, "CLEARML_WEB_HOST": server.api,
            "CLEARML_FILES_HOST": server.files, "CLEARML_API_ACCESS_KEY": "test-key",
            "CLEARML_API_SECRET_KEY": "test-secret"}


def test_online_run_creates_a_task_sends_parameters_events_uploads_and_completes(env, tmp_path):
    """Why: the offline test never talks HTTP. This one runs the SDK's online path (auth, tasks.create,
    hyperparameters, event batches, the file-server upload, the completed status) against a local server."""
    with FakeClearML() as server:
        proc = softtargets(clearml_env(env, server), tmp_path, "run", "--project", "unlearning/tests",
                           "--log-models", *FAST)
    assert proc.returncode == 0, proc.stderr
    run = only_run_folder(tmp_path)
    assert server.endpoints()[0] == "auth.login"
    assert "Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=" in server.auth_headers  # base64 of test-key:test-secret
    (created,) = server.bodies("tasks.create")
    assert created["name"] == "digits-mlp-graddiff-hard-seed0" and created["type"] == "training"
    assert server.bodies("projects.create")[0]["name"] == "unlearning/tests"
    task = server.tasks[next(iter(server.tasks))]
    assert task["status"] == "completed" and "tasks.completed" in server.endpoints()
    assert set(task["tags"]) >= {"digits", "mlp", "graddiff", "hard", "seed0"}
    assert task["hyperparams"]["unlearning"]["epochs"]["value"] == "2"
    assert scalars(server.events, "unlearn") == pytest.approx(curves(run, "unlearn"))
    assert {e["metric"] for e in server.events if e["type"] == "training_debug_image"} >= {"per_class_accuracy"}
    keys = {a["key"] for a in task["execution"]["artifacts"]}
    assert {"result.json", "config.yaml", "model.pt"} <= keys  # --log-models adds the weights
    uploaded = b"".join(server.uploads)
    assert (run / "result.json").read_bytes() in uploaded
    assert (run / "model.pt").read_bytes()[:64] in uploaded
    assert f"ClearML task: {server.api}" in proc.stderr


def test_unreachable_server_warns_once_and_keeps_local_results(env, tmp_path):
    with FakeClearML() as gone:  # a port that was just free: nothing listens there any more
        api = gone.api
    proc = softtargets({**env, "CLEARML_API_HOST": api, "CLEARML_API_ACCESS_KEY": "k",
                        "CLEARML_API_SECRET_KEY": "s"}, tmp_path, "run", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("unreachable") == 1 and api in proc.stderr
    run = only_run_folder(tmp_path)
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    assert {"config.yaml", "metrics.jsonl", "per_class_accuracy.png"} <= {p.name for p in run.iterdir()}


@pytest.mark.slow
def test_under_clearml_agent_the_edited_task_parameters_become_the_config(env, tmp_path):
    def param(section, name, value):
        return {"section": section, "name": name, "value": value}

    edited = {"targets": {"kind": param("targets", "kind", "smooth"),
                          "smoothing": param("targets", "smoothing", "0.3")},
              "unlearning": {"epochs": param("unlearning", "epochs", "1"),
                             "params/alpha": param("unlearning", "params/alpha", "0.25"),
                             "clip_grad": param("unlearning", "clip_grad", "")}}
    task = {"id": "agent-task", "name": "cloned", "status": "in_progress", "project": "p", "type": "training",
            "hyperparams": edited, "configuration": {}, "execution": {"artifacts": []}, "tags": [], "output": {}}
    with FakeClearML(tasks={"agent-task": task}) as server:
        proc = softtargets({**clearml_env(env, server), "CLEARML_TASK_ID": "agent-task"}, tmp_path,
                           "run", "--tracker", "clearml", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "tasks.create" not in server.endpoints()  # the agent's Task is used, not a new one
    cfg = yaml.safe_load((only_run_folder(tmp_path) / "config.yaml").read_text())
    assert cfg["targets"]["kind"] == "smooth" and cfg["targets"]["smoothing"] == 0.3
    assert cfg["unlearning"]["epochs"] == 1 and cfg["unlearning"]["params"]["alpha"] == 0.25
    assert cfg["unlearning"]["clip_grad"] is None and cfg["training"]["epochs"] == 2  # unedited: as given


@pytest.mark.slow
def test_compare_offline_one_task_per_run_and_a_table_linking_them(env, tmp_path):
    proc = softtargets(env, tmp_path, "compare", "--seeds", "1", "--clearml-offline", *FAST)
    assert proc.returncode == 0, proc.stderr
    sessions = [read_session(p) for p in (tmp_path / "clearml-cache" / "offline").glob("*.zip")]
    by_name = {task["name"]: (task, events) for task, events, _ in sessions}
    assert set(by_name) == {"digits-mlp-graddiff-hard-seed0", "digits-mlp-graddiff-soft-seed0",
                            "compare-digits-mlp-graddiff-hard-vs-soft-seeds0-0"}
    compare_task, events = by_name["compare-digits-mlp-graddiff-hard-vs-soft-seeds0-0"]
    tables = {e["metric"]: json.loads(e["plot_str"])["data"][0] for e in events if e["type"] == "plot"}
    paired = tables["hard vs soft"]
    assert paired["header"]["values"][0] == "tested" and "|acc_forget - ref|" in paired["cells"]["values"][0]
    links = tables["runs"]["cells"]["values"]
    assert links[0] == ["hard", "soft"] and all(link.endswith(".zip") and Path(link).is_file()
                                                 for link in links[3])
    assert "comparison.md" in {a["key"] for a in compare_task["execution"]["artifacts"]}
    for name in ("digits-mlp-graddiff-hard-seed0", "digits-mlp-graddiff-soft-seed0"):
        assert "compare-digits-mlp-graddiff-hard-vs-soft-seeds0-0" in by_name[name][0]["tags"]
