"""Two processes never write the same output at once: a lock held by each job, and Snakemake's own locks repaired.

**Job locks** (:func:`exclusive`). A job that writes a fold or a shard holds an exclusive ``flock`` on a lock file
beside its outputs for as long as it runs. The kernel releases it when the process ends, however it ends (kill -9
included), so a lock is never stale. A second process that wants the same outputs waits; when it gets the lock it
first asks whether the first one already produced them for the same job identity, and if so keeps them instead of
computing them again (:func:`once`).

**Snakemake's locks** (:func:`install`). Snakemake 9.27.1 (the latest release, pinned in requirements.txt) writes
``.snakemake/locks/N.input.lock`` / ``N.output.lock`` for each running process, but the process that ends first
removes the whole folder, the other processes' locks included (``persistence/file.py``, ``_delete_locks``), so a
third run on the same targets starts training what the first is still training. After a kill -9 the dead process's
locks stay, and every later run refuses to start until ``snakemake --unlock``. :func:`install` (called by
``rules/common.smk``) fixes both for the file persistence backend:

* a process removes only its own lock files when it ends (and the folder only once it is empty);
* each lock file has an ``.owner`` file its process holds an ``flock`` on; a lock whose owner is gone (a killed
  run) is removed, with a message, by the next run, so no ``--unlock`` is needed after a crash;
* lock files are created with ``O_EXCL``, so two processes starting together cannot take the same number.

``snakemake --unlock`` still removes every lock, as before. On another Snakemake version the patch is not applied
(a warning says so); the job locks still keep two jobs off one output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

LOCK_NAME = ".serflow.lock"
PATCHED_SNAKEMAKE = ("9.27.1",)
T = TypeVar("T")


# --------------------------------------------------------------------------------- job locks


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
    return "another process"


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str = "") -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block runs.

    Yields True when another process held it and this one had to wait (so the caller should check whether the
    other process already did the work), False otherwise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            log.warning("%s is being written by %s: waiting for it", what or path.parent, _holder(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield waited
    finally:
        os.close(fd)  # closing releases the flock


def once(
    lock: str | os.PathLike[str],
    done: Callable[[], T | None],
    work: Callable[[], T],
    what: str = "",
) -> T:
    """``work()`` under the lock, unless another process finished the same job while this one waited for it.

    ``done()`` returns the finished job's result when the outputs are complete *and* were made for the same job
    identity (the caller compares its identity with what the outputs record), else None.
    """
    with exclusive(lock, what) as waited:
        if waited:
            result = done()
            if result is not None:
                log.warning("%s was completed by another process while this one waited: kept, not recomputed", what)
                return result
        return work()


# --------------------------------------------------------------------------------- Snakemake's locks


def _owner_path(lockfile: str) -> str:
    return lockfile + ".owner"


def _is_stale(lockfile: str) -> bool:
    """A lock whose owner file no process holds (its process died). A lock without an owner file (written by an
    unpatched Snakemake) is treated as live."""
    owner = _owner_path(lockfile)
    try:
        fd = os.open(owner, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _remove_stale(lockdir: str, warn: Callable[[str], Any] = log.warning) -> None:
    if not os.path.isdir(lockdir):
        return
    for name in sorted(os.listdir(lockdir)):
        lockfile = os.path.join(lockdir, name)
        if name.endswith(".lock.owner") and not os.path.exists(lockfile.removesuffix(".owner")):
            if _is_stale(lockfile.removesuffix(".owner")):  # an owner whose process died before writing its lock
                with contextlib.suppress(FileNotFoundError):
                    os.remove(lockfile)
            continue
        if name.endswith(".lock") and _is_stale(lockfile):
            with contextlib.suppress(FileNotFoundError):
                info = Path(_owner_path(lockfile)).read_text(encoding="utf-8").strip()
                os.remove(lockfile)
                os.remove(_owner_path(lockfile))
                warn(f"removed {lockfile}, a lock left by a Snakemake run that no longer exists ({info})")


def install() -> bool:
    """Repair Snakemake's file-persistence locks (see the module docstring). Returns whether the patch applied."""
    import snakemake
    from snakemake.logging import logger
    from snakemake.persistence.file import FilePersistence

    if getattr(FilePersistence, "_serflow_locks", False):
        return True
    if snakemake.__version__ not in PATCHED_SNAKEMAKE:
        log.warning(
            "serflow's repair of Snakemake's locks is tested on Snakemake %s, not %s: not applied",
            "/".join(PATCHED_SNAKEMAKE),
            snakemake.__version__,
        )
        return False
    original_read = FilePersistence._read_locks

    def _read_locks(self: Any) -> Iterator[tuple[str, str]]:
        _remove_stale(self._lockdir, logger.warning)
        yield from original_read(self)

    def _write_locks(self: Any, lock_type: str, keys: Any) -> None:
        keys_list = list(keys)
        if not keys_list:
            return
        os.makedirs(self._lockdir, exist_ok=True)
        owners = self.__dict__.setdefault("_serflow_owner_fds", [])
        n = 0
        while True:
            lockfile = os.path.join(self._lockdir, f"{n}.{lock_type}.lock")
            try:
                fd = os.open(_owner_path(lockfile), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                n += 1
                continue
            if os.path.exists(lockfile):  # an unpatched process's lock with this number: keep looking
                os.close(fd)
                os.remove(_owner_path(lockfile))
                n += 1
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            owners.append(fd)
            with open(lockfile + ".tmp", "w") as fh:
                print(*keys_list, sep="\n", file=fh)
            os.replace(lockfile + ".tmp", lockfile)
            self._lockfile[lock_type] = lockfile
            return

    def _delete_locks(self: Any) -> None:
        for lockfile in self._lockfile.values():
            for path in (lockfile, _owner_path(lockfile)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        self._lockfile.clear()
        for fd in self.__dict__.pop("_serflow_owner_fds", []):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):  # only once every other process's locks are gone too
            os.rmdir(self._lockdir)

    def cleanup_locks(self: Any) -> None:  # `snakemake --unlock`: every lock goes, as Snakemake intends (the
        # original called _delete_locks, which now removes only this process's own)
        import shutil

        self.__dict__.pop("_serflow_owner_fds", None)
        if os.path.exists(self._lockdir):
            shutil.rmtree(self._lockdir)
        self._lockfile.clear()

    FilePersistence._read_locks = _read_locks
    FilePersistence._write_locks = _write_locks
    FilePersistence._delete_locks = _delete_locks
    FilePersistence.cleanup_locks = cleanup_locks
    FilePersistence._serflow_locks = True
    return True
