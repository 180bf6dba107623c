"""File locks that name their owner: one process trains a model (or runs a sweep cell) while the others wait for
it (or skip the cell), on one machine or across the nodes of a cluster sharing a filesystem.

A lock is flock(2) on PATH, and PATH holds its owner: host, pid, the process's start time (so a reused pid is not
taken for the owner), since when and what for. The kernel releases the lock when the owner ends however it ends
(kill -9 included); on NFS the server releases a dead client's lock when its lease runs out. The owner refreshes
PATH's modification time every HEARTBEAT seconds, so a lock whose owner is gone but still looks held (an NFS server
that never heard of the client's death) is recognised: on this host by its pid, on another host by a heartbeat older
than STALE seconds. A waiter stops waiting for such a lock and goes on without it.

PATH is removed by its owner while still holding it, and a new owner checks that the file it locked is still the
one at PATH, so a lock file exists only while some process holds (or held, then died holding) it. On NFS, Linux
carries flock over as a POSIX lock, which belongs to the whole process and ends when the process closes any
descriptor of the file: a holder never opens its own lock file a second time (owner() is for the others).

Where the filesystem has no working locks (flock fails with ENOLCK, EOPNOTSUPP or ENOSYS; some FUSE and parallel
filesystems) or the lock file cannot be created (a read-only or full folder), acquiring answers UNSUPPORTED or
UNAVAILABLE instead of waiting: callers go on without the lock (docs/hpc.md says what that costs).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from softtargets.stopping import protected

log = logging.getLogger(__name__)
HOST = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"
HEARTBEAT = 30.0  # seconds between the owner's refreshes of the lock file's modification time
STALE = 600.0  # a lock on another host without a heartbeat for this long belongs to a dead owner
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)

HELD, BUSY, STALE_OWNER, UNSUPPORTED, UNAVAILABLE = "held", "busy", "stale", "unsupported", "unavailable"


def process_start(pid: int) -> str | None:
    """The start time of process pid in clock ticks since boot (/proc/PID/stat field 22), None where unknown."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_alive(owner: dict, mtime: float, now: float | None = None) -> bool:
    """Whether the owner recorded in a lock file may still hold it: on this host its pid runs with the same start
    time; on another host the heartbeat is younger than STALE. An unreadable owner counts as alive until its
    heartbeat is stale."""
    now = time.time() if now is None else now
    if owner.get("host") != HOST or not isinstance(owner.get("pid"), int):
        return now - mtime < STALE
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    started = owner.get("process_start")
    return started is None or process_start(owner["pid"]) in (None, started)


class FileLock:
    """An exclusive lock on path for `purpose` (a few words: 'training the original model'). Not reentrant, one
    holder per object."""

    def __init__(self, path: str | Path, purpose: str):
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None
        self._beat: threading.Event | None = None
        self._mutex = threading.Lock()  # the heartbeat never touches a descriptor release() has closed

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> str:
        """Take the lock if free: HELD, BUSY (another live process holds it), STALE_OWNER (held, but by an owner that
        is gone), UNSUPPORTED or UNAVAILABLE."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        with protected():  # a stop signal must not leave a half-taken lock behind
            for _ in range(100):  # retries only while other owners remove the file between open and flock
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as err:
                    log.debug("cannot create lock file %s: %s", self.path, err)
                    return UNAVAILABLE
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    return BUSY if self._owner_alive() else STALE_OWNER
                except OSError as err:
                    os.close(fd)
                    if err.errno in NO_LOCKS:
                        return UNSUPPORTED
                    raise
                if self._is_current(fd):
                    self._own(fd)
                    return HELD
                os.close(fd)  # locked a file its owner had just removed: try the new one
        return BUSY

    def acquire(self, on_wait: Callable[[dict], None] | None = None, poll: float = 1.0) -> str:
        """Wait until the lock is HELD, or answer STALE_OWNER, UNSUPPORTED or UNAVAILABLE (go on without it).
        on_wait(owner) is called once when the lock is busy, with the owner it waits for."""
        waited = False
        while True:
            state = self.try_acquire()
            if state != BUSY:
                return state
            if not waited and on_wait is not None:
                on_wait(self.owner())
            waited = True
            time.sleep(poll)  # a stop signal (softtargets.stopping) ends the wait here

    def release(self) -> None:
        """Remove the lock file and release the lock (in this order: no one can lock a file that is gone)."""
        if self._fd is None:
            return
        with protected(), self._mutex:
            self._beat.set()
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = self._beat = None

    def owner(self) -> dict:
        """The owner recorded in the lock file ({} when there is none or it is being written)."""
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def _owner_alive(self, checks: int = 3, pause: float = 0.5) -> bool:
        """Whether the holder may be alive. A dead-looking owner is looked at again: a new owner records itself
        a moment after it took the lock, so the file may still name its dead predecessor."""
        seen = None
        for check in range(checks):
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                return True  # released meanwhile: the next try decides
            owner = self.owner()
            if owner_alive(owner, mtime) or (seen is not None and owner != seen):
                return True
            seen = owner
            if check + 1 < checks:
                time.sleep(pause)
        return False

    def __enter__(self) -> str:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _is_current(self, fd: int) -> bool:
        try:
            now, mine = os.stat(self.path), os.fstat(fd)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)

    def _own(self, fd: int) -> None:
        pid = os.getpid()
        owner = {"host": HOST, "pid": pid, "process_start": process_start(pid),
                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "purpose": self.purpose}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
        except OSError as err:  # a full disk: the lock holds all the same, only its owner is not written
            log.debug("cannot record the owner of %s: %s", self.path, err)
        self._fd, self._beat = fd, threading.Event()
        threading.Thread(target=self._heartbeat, args=(fd, self._beat), name=f"lock {self.path.name}",
                         daemon=True).start()

    def _heartbeat(self, fd: int, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT):
            with self._mutex:
                if stop.is_set():
                    return
                try:
                    os.utime(fd)
                except OSError:
                    return


def describe(owner: dict) -> str:
    """'host vm pid 123 since 2026-12-05T08:00:00+0000 (training the original model)', for messages."""
    if not owner:
        return "another process"
    return (f"host {owner.get('host', '?')} pid {owner.get('pid', '?')} since {owner.get('since', '?')}"
            + (f" ({owner['purpose']})" if owner.get("purpose") else ""))
