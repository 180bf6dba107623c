"""Run folders: work folders of killed processes are cleaned up (or recovered when they hold a finished run), two
identical runs finishing into one --out both succeed, and no kill between renames hides the only copy of a run
(issue 18)."""

import json
import os
import subprocess
import sys
import threading

import pytest

from softtargets.tracking import local
from softtargets.tracking.local import HOST, RunFolder, clean_stale, publish


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def finished(folder, tag: str):
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"tag": tag}))
    (folder / "model.pt").write_bytes(b"weights " + tag.encode())
    return folder


def tag(folder) -> str:
    return json.loads((folder / "result.json").read_text())["tag"]


def test_two_identical_runs_finishing_together_both_succeed(tmp_path):
    runs = [RunFolder(tmp_path, "digits-run") for _ in range(2)]
    barrier = threading.Barrier(2)
    errors, paths = [], []

    def finish(folder, name):
        barrier.wait()
        try:
            paths.append(folder.finish({"tag": name}))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=finish, args=(f, str(i))) for i, f in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and paths == [tmp_path / "digits-run"] * 2
    assert tag(tmp_path / "digits-run") in ("0", "1")
    assert [p.name for p in tmp_path.iterdir()] == ["digits-run"]  # no hidden leftovers


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-fallback"])
def test_publish_replaces_an_older_run_without_leftovers(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(local, "_exchange", lambda a, b: False)
    final = finished(tmp_path / "run", "old")
    publish(finished(tmp_path / ".run.incomplete-x", "new"), final)
    assert tag(final) == "new" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_kill_between_the_renames_never_leaves_the_only_copy_hidden(tmp_path, monkeypatch):
    """The fallback (no renameat2) moves the older run aside first; a kill right then leaves it in a hidden
    .old- folder, and the work folder with the new finished run. The next run into that folder recovers the
    new run and removes the old one."""
    pid = dead_pid()
    finished(tmp_path / f".run.old-{HOST}-{pid}-abcdef", "old")
    work = finished(tmp_path / f".run.incomplete-{HOST}-{pid}-123456", "new")
    finished(tmp_path / f".other.old-{HOST}-{pid}-fedcba", "only copy")  # killed after moving it aside
    RunFolder(tmp_path, "next").abandon()
    assert tag(tmp_path / "run") == "new" and not work.exists()
    assert tag(tmp_path / "other") == "only copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "run"]


def test_stale_work_folders_are_removed_live_and_foreign_ones_kept(tmp_path):
    stale = tmp_path / f".a.incomplete-{HOST}-{dead_pid()}-abcdef"
    (stale / "model.pt").parent.mkdir()
    (stale / "model.pt").write_bytes(b"weights of a killed run")
    live = tmp_path / f".b.incomplete-{HOST}-1-abcdef"  # pid 1 is alive
    foreign = tmp_path / ".c.incomplete-otherhost-12345-abcdef"
    legacy = tmp_path / ".d.incomplete-12345-abcdef"  # a name from before the host was recorded
    for folder in (live, foreign, legacy):
        folder.mkdir()
    unknown = clean_stale(tmp_path)
    assert not stale.exists() and live.exists() and foreign.exists() and legacy.exists()
    assert sorted(unknown) == sorted([foreign, legacy])



@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to read-only folders")
def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path):
    from softtargets.errors import SoftTargetsError
    from softtargets.tracking.local import check_writable

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SoftTargetsError, match=r"--out .*locked/runs: .*locked is not writable"):
            check_writable(locked / "runs", "--out")
    finally:
        locked.chmod(0o700)
