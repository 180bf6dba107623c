"""A full disk (issue 25): a run whose --out fills up ends with one line naming the folder and exit code 3, leaves
nothing of itself behind, and the model cache stays sound; a cache that fills up costs warnings, never a partial
entry. On a real small tmpfs, so these need root (mount)."""

import hashlib
import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB tmpfs: room for a few cache entries or run files, not for a whole run folder."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], capture_output=True)  # detached even while a file is open


def softtargets(*args):
    return subprocess.run([sys.executable, "-m", "softtargets", *args], capture_output=True, text=True, timeout=300)


RUN = ["--quiet", "run", "--epochs", "1", "--unlearn-epochs", "1", "--device", "cpu", "--tracker", "none"]


def sound_entries(cache) -> list[str]:
    """The cache's entries, each checked complete (weights and metadata) and matching its checksum."""
    models = cache / "models"
    names = sorted(p.name for p in models.iterdir())
    assert not [n for n in names if n.endswith((".tmp", ".lock")) or n.startswith(".")], names
    weights = [n for n in names if n.endswith(".pt")]
    assert sorted(n[:-3] for n in weights) == sorted(n[:-5] for n in names if n.endswith(".json"))
    for name in weights:
        meta = json.loads((models / name.replace(".pt", ".json")).read_text())
        assert meta["sha256"] == hashlib.sha256((models / name).read_bytes()).hexdigest()
    return weights


def test_a_run_filling_its_out_folder_is_one_line_exit_3_and_leaves_nothing(cli, small_disk, tmp_path):
    cache = tmp_path / "cache"
    code, _, err = cli(*RUN, "--out", str(tmp_path / "first"), "--cache-dir", str(cache))
    assert code == 0, err
    entries = sound_entries(cache)
    code, out, err = cli(*RUN, "--out", str(small_disk / "runs"), "--cache-dir", str(cache))
    assert code == 3, err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err and not out.strip()
    assert err.startswith(f"error: no space left in {small_disk / 'runs'} (disk or quota full)")
    assert list((small_disk / "runs").iterdir()) == []  # no run folder, no hidden work folder
    assert sound_entries(cache) == entries
    code, _, err = cli(*RUN, "--out", str(tmp_path / "second"), "--cache-dir", str(cache))
    assert code == 0 and "WARNING" not in err
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "second").glob("*/result.json")]
    assert result["timings"]["original_cached"] and result["timings"]["reference_cached"]


def test_a_sweep_on_a_full_disk_stops_at_once_with_exit_3(small_disk, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("name: full\nbase: {training: {epochs: 1}, unlearning: {epochs: 1}, device: cpu}\n"
                    "axes:\n  targets: [hard, soft]\n  seed: [0, 1]\n")
    proc = softtargets("--quiet", "sweep", str(grid), "--out", str(small_disk / "runs"), "--cache-dir",
                       str(tmp_path / "cache"))
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING")]
    assert errors == [f"error: no space left in {small_disk / 'runs'} (disk or quota full): nothing of the "
                      "unfinished run was kept; free some space or choose another --out, then run the same command "
                      "again"]
    runs = small_disk / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["_claims", "_sweeps"]  # no run folder, no _failed records
    assert not list((runs / "_claims").iterdir())


def test_a_cache_filling_its_disk_keeps_only_whole_entries(small_disk, tmp_path):
    proc = softtargets(*RUN, "--out", str(tmp_path / "runs"), "--cache-dir", str(small_disk / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert "could not write cache entry" in proc.stderr and "No space left on device" in proc.stderr
    assert len(list((tmp_path / "runs").glob("*/result.json"))) == 1
    sound_entries(small_disk / "cache")


def test_a_failed_torch_save_is_recognised_by_a_probe_write(small_disk, tmp_path):
    """torch.save reports a full disk as a RuntimeError without an errno."""
    import torch

    from softtargets.tracking.local import DiskFull, check_disk_full

    with pytest.raises(RuntimeError) as failed:
        torch.save({"w": torch.zeros(200_000)}, small_disk / "model.pt")
    assert getattr(failed.value, "errno", None) is None
    with pytest.raises(DiskFull, match=f"no space left in {small_disk}"):
        check_disk_full(failed.value, small_disk)
    assert [p.name for p in small_disk.iterdir()] == ["model.pt"]  # the probe leaves nothing
    check_disk_full(failed.value, tmp_path)  # the same error where there is room: not a full disk
    check_disk_full(RuntimeError("an unrelated failure"), small_disk)
