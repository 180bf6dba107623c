"""File locks with owners (softtargets.locks) and clean stops on signals (softtargets.stopping): one holder at a
time, the owner recorded, a lock of a killed process free at once, a dead owner on another host recognised by its
missing heartbeat, filesystems without locks answered instead of waited on, signals held back in protected
sections."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from softtargets import locks
from softtargets.stopping import Stopped, check, protected, stop_on

HOLD = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
if len(sys.argv) > 2:  # pretend to be an owner on another host whose heartbeat stopped at mtime argv[2]
    os.pwrite(fd, json.dumps({"host": "node-elsewhere", "pid": 4242, "since": "then", "purpose": "test"}).encode(), 0)
    os.utime(sys.argv[1], (float(sys.argv[2]), float(sys.argv[2])))
print("held", flush=True)
time.sleep(600)
"""


def holder(path, *args):
    """A process holding the flock on path until killed; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), *map(str, args)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_one_holder_at_a_time_and_the_owner_is_recorded(tmp_path):
    path = tmp_path / "entry.lock"
    first, second = locks.FileLock(path, "training the original model"), locks.FileLock(path, "x")
    assert first.try_acquire() == locks.HELD
    owner = json.loads(path.read_text())
    assert owner["host"] == locks.HOST and owner["pid"] == os.getpid() and owner["purpose"].startswith("training")
    assert owner["process_start"] == locks.process_start(os.getpid()) and owner["since"][:2] == "20"
    assert second.try_acquire() == locks.BUSY  # flock is per open file: a second object in this process waits too
    first.release()
    assert not path.exists()  # the lock file lives only while held
    assert second.try_acquire() == locks.HELD
    second.release()


def test_the_lock_of_a_killed_owner_is_free_at_once_and_taken_over(tmp_path):
    path = tmp_path / "entry.lock"
    proc = holder(path)
    try:
        lock = locks.FileLock(path, "after the kill")
        assert lock.try_acquire() == locks.BUSY
        proc.kill()  # SIGKILL: no chance to clean up; the lock file stays behind
        proc.wait()
        assert path.exists()
        assert lock.acquire(poll=0.1) == locks.HELD
        assert json.loads(path.read_text())["pid"] == os.getpid()
        lock.release()
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_held_for_an_owner_without_heartbeat_on_another_host_is_stale(tmp_path):
    """What an NFS client that died without the server noticing looks like: the lock stays held, but the owner's
    heartbeat (the file's modification time) stopped."""
    path = tmp_path / "entry.lock"
    proc = holder(path, time.time() - locks.STALE - 60)
    try:
        lock = locks.FileLock(path, "x")
        assert lock.acquire() == locks.STALE_OWNER and not lock.held
        assert lock.owner()["host"] == "node-elsewhere"
        os.utime(path)  # a fresh heartbeat: alive, so wait
        assert lock.try_acquire() == locks.BUSY
    finally:
        proc.kill()
        proc.wait()


def test_owner_alive_checks_pid_start_time_and_heartbeat():
    me = {"host": locks.HOST, "pid": os.getpid(), "process_start": locks.process_start(os.getpid())}
    now = time.time()
    assert locks.owner_alive(me, now - 10 * locks.STALE)  # this host: the process decides, not the heartbeat
    assert not locks.owner_alive({**me, "process_start": "1"}, now)  # the pid was reused by another process
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not locks.owner_alive({"host": locks.HOST, "pid": proc.pid}, now)
    assert locks.owner_alive({"host": "elsewhere", "pid": 1}, now - 60)
    assert not locks.owner_alive({"host": "elsewhere", "pid": 1}, now - locks.STALE - 1)


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_filesystem_without_locks_is_answered_not_waited_on(tmp_path, monkeypatch, code):
    def no_locks(fd, operation):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert locks.FileLock(tmp_path / "a.lock", "x").acquire() == locks.UNSUPPORTED
    assert locks.FileLock(tmp_path / "missing" / "a.lock", "x").acquire() == locks.UNAVAILABLE


def test_the_heartbeat_refreshes_the_lock_file(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "HEARTBEAT", 0.05)
    path = tmp_path / "a.lock"
    lock = locks.FileLock(path, "x")
    assert lock.try_acquire() == locks.HELD
    os.utime(path, (0, 0))
    time.sleep(0.5)
    assert time.time() - path.stat().st_mtime < 5
    lock.release()


def test_a_signal_raises_stopped_but_waits_for_a_protected_section():
    steps = []
    with stop_on():
        with pytest.raises(Stopped) as stopped:
            with protected():
                os.kill(os.getpid(), signal.SIGUSR1)
                steps.append("the section finished")
        assert stopped.value.signum == signal.SIGUSR1 and steps == ["the section finished"]
        with pytest.raises(Stopped) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted: the handler raises at once outside protected sections
        assert stopped.value.signum == signal.SIGTERM
        check()  # nothing pending any more
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_a_signal_in_a_section_that_fails_is_raised_at_the_next_check():
    with stop_on():
        with pytest.raises(ValueError):
            with protected():
                os.kill(os.getpid(), signal.SIGUSR1)
                raise ValueError("the section's own error wins")
        with pytest.raises(Stopped):
            check()


def test_after_the_warning_work_goes_on_for_the_grace_then_stops():
    """SIGUSR1 with a grace (the time left before the limit, less a margin): no stop at once, Stopped when it ends."""
    with stop_on(grace=lambda: 0.5):
        start = time.monotonic()
        with pytest.raises(Stopped) as stopped:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.2)
            reached = time.monotonic() - start  # still working after the warning
            time.sleep(5)
        assert stopped.value.signum == signal.SIGUSR1 and reached >= 0.2
        assert 0.4 < time.monotonic() - start < 3
    with stop_on(grace=lambda: None):  # time left unknown: stop at once
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(5)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
