"""The run folder: config.yaml, result.json, metrics.jsonl, plots. Built in a hidden work folder and moved into
place when complete, so an interrupted run never leaves a folder that looks finished.

Work folders are named `.NAME.incomplete-HOST-PID-TAG` (`.NAME.old-...` while an older run of the same name is
being replaced): the owner's host and process id let a later run clean up after a killed one. A work folder
of a process that is gone is removed, or moved into place when it holds a finished run (result.json) whose
final folder is missing, so a kill at any point never leaves the only copy of a run hidden.

A run that fails because its disk (or quota) is full is abandoned like any other and the failure raised again as
DiskFull: one line naming the folder, exit code DiskFull.exit_code, nothing of the run left behind.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import socket
import sys
import uuid
from pathlib import Path

import yaml

from softtargets.errors import SoftTargetsError
from softtargets.hooks import Hooks
from softtargets.io import clean_json, write_text_atomic
from softtargets.stopping import protected

log = logging.getLogger(__name__)
HOST = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"
WORK_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>incomplete|old)-(?:(?P<host>[A-Za-z0-9._]+)-)?(?P<pid>\d+)-"
                         r"(?P<tag>[0-9a-f]{6})$")


FULL = (errno.ENOSPC, errno.EDQUOT)
PROBE_BYTES = 1 << 20


class DiskFull(SoftTargetsError):
    """The disk (or the user's quota) holding a run folder is full. The CLI prints the message and exits with
    exit_code (documented with the other exit codes)."""

    exit_code = 3


def check_disk_full(err: BaseException | None, folder: str | Path) -> None:
    """Raise DiskFull naming folder when err came from a full disk or quota: an OSError with ENOSPC or EDQUOT
    anywhere in its chain, or a failed torch.save (a RuntimeError without an errno) into a folder where a
    PROBE_BYTES test write now fails that way. Any other error (or None) returns."""
    if isinstance(err, DiskFull):
        raise err
    if err is None or not (_errno_full(err) or (_failed_write(err) and not _room_for(Path(folder), PROBE_BYTES))):
        return
    raise DiskFull(f"no space left in {folder} (disk or quota full): nothing of the unfinished run was kept; free "
                   "some space or choose another --out, then run the same command again") from err


def _chain(err: BaseException) -> list[BaseException]:
    found = []
    while err is not None and len(found) < 20:
        found.append(err)
        err = err.__cause__ or err.__context__
    return found


def _errno_full(err: BaseException) -> bool:
    return any(isinstance(e, OSError) and e.errno in FULL for e in _chain(err))


def _failed_write(err: BaseException) -> bool:
    """torch.save's writer reports a failed write as a RuntimeError without an errno."""
    markers = ("PytorchStreamWriter", "inline_container", "iostream error")
    return any(isinstance(e, RuntimeError) and any(m in str(e) for m in markers) for e in _chain(err))


def _room_for(folder: Path, size: int) -> bool:
    """Whether size bytes can still be written (and synced) into folder."""
    probe = folder / f".space-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        return True
    except OSError as err:
        return err.errno not in FULL
    finally:
        probe.unlink(missing_ok=True)


def check_writable(path: str | Path, what: str) -> None:
    """Fail before any work when path cannot become a writable folder: it (or a parent) is a file, or the
    nearest existing folder is not writable."""
    path = Path(path)
    probe = path
    while not probe.exists() and not probe.is_symlink() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"is inside {probe}, a file"
        raise SoftTargetsError(f"{what} {path} {where}: give a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SoftTargetsError(f"{what} {path}: {probe} is not writable: choose another folder or fix its "
                               "permissions")


def work_path(final: Path, kind: str = "incomplete") -> Path:
    """A hidden sibling of final owned by this process: .NAME.KIND-HOST-PID-TAG."""
    return final.with_name(f".{final.name}.{kind}-{HOST}-{os.getpid()}-{uuid.uuid4().hex[:6]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def stale_work_folders(folder: Path) -> tuple[list[Path], list[Path]]:
    """Hidden work folders directly in folder: (those whose owner process on this host is gone, those whose
    owner cannot be checked from here: another host, or an old name without one)."""
    dead, unknown = [], []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return dead, unknown
    for entry in entries:
        match = WORK_FOLDER.match(entry.name)
        if not match:
            continue
        if match["host"] != HOST:
            unknown.append(Path(entry.path))
        elif int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            dead.append(Path(entry.path))
    return dead, unknown


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove the work folders of dead processes on this host in folder; one holding a finished run whose final
    folder is missing is moved into place instead (newest work first). Returns the folders left that this host
    cannot judge (other hosts), for reporting."""
    dead, unknown = stale_work_folders(Path(folder))
    dead.sort(key=lambda p: (WORK_FOLDER.match(p.name)["kind"] != "incomplete", -_mtime(p)))
    for path in dead:
        final = path.with_name(WORK_FOLDER.match(path.name)["name"])
        try:
            if (path / "result.json").is_file() and not final.exists():
                os.rename(path, final)
                log.warning("recovered the finished run %s from the work folder of a killed process", final)
                continue
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, the work folder of a process that is gone", path)
    return unknown


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported or b is missing."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def publish(work: Path, final: Path) -> None:
    """Move the complete folder work to final, replacing a run already there. Where the filesystem can, the two
    are exchanged atomically; otherwise the older run is first moved to a hidden .old- folder of this process
    (which clean_stale moves back if a kill lands in between). Two writers of one name both succeed; the later
    one's folder stays."""
    for _ in range(1000):
        try:
            os.rename(work, final)  # final is absent (or an empty folder)
            return
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        if _exchange(work, final):  # work now holds the older run
            shutil.rmtree(work, ignore_errors=True)
            return
        old = work_path(final, "old")
        try:
            os.rename(final, old)
        except FileNotFoundError:
            continue  # another writer moved it meanwhile: try again
        try:
            os.rename(work, final)
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                os.rename(old, final)
                raise
            # another writer's finished run arrived in between: final is complete, so the old copy can go
        shutil.rmtree(old, ignore_errors=True)
        if not work.exists():
            return
    raise OSError(errno.EBUSY, "could not move the run folder into place", str(final))


class RunFolder(Hooks):
    """Collects one run's files; Hooks.scalars rows go to metrics.jsonl as they arrive."""

    def __init__(self, out: str | Path, name: str):
        self.final = Path(out) / name
        self.path = work_path(self.final)
        try:
            self.path.mkdir(parents=True)
            clean_stale(self.final.parent)
            self._metrics = open(self.path / "metrics.jsonl", "a")
        except OSError as err:
            shutil.rmtree(self.path, ignore_errors=True)
            check_disk_full(err, self.final.parent)
            raise

    def scalars(self, series: str, step: int, values: dict[str, float]) -> None:
        row = clean_json({"series": series, "step": step, **values})
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def write_yaml(self, name: str, data: dict) -> None:
        write_text_atomic(self.path / name, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: dict) -> None:
        write_text_atomic(self.path / name, json.dumps(clean_json(data), indent=2) + "\n")

    def finish(self, result: dict) -> Path:
        """Write result.json last, then move the folder into place (replacing an older run of the same name). A stop
        signal waits until the folder is in place; a failure (a full disk) abandons the folder."""
        try:
            with protected():
                self._metrics.close()
                self.write_json("result.json", result)
                publish(self.path, self.final)
        except BaseException:
            self.abandon()
            raise
        return self.final

    def abandon(self, err: BaseException | None = None) -> None:
        """Remove the work folder of a run that failed before finishing. err (default: the exception being handled,
        as callers call this from their except clause): one from a full disk is raised again as DiskFull."""
        try:
            self._metrics.close()
        except OSError:
            pass  # its buffered rows could not be written either: the folder goes anyway
        shutil.rmtree(self.path, ignore_errors=True)
        check_disk_full(err or sys.exc_info()[1], self.final.parent)
