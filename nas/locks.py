"""Locks that keep two processes from writing one thing at once: a run folder (`nas search`), a
latency table (`nas latency build`), a study storage while its tables and study are created.

    with locked(run_folder, held="--out runs/x: another nas search is running in it"):
        ...

They are `flock` locks: advisory, between processes of one machine (and NFS clients, which
emulate them), and dropped by the kernel when the holder dies, kill -9 included, so a lock left
behind by a crash never blocks the next run.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nas.errors import NasError
from nas.files import io_error

SUFFIX = ".nas-lock"  # a lock file beside what it guards (Optuna's journal uses ".lock" itself)


def lock_file(path: str | Path) -> Path:
    """The lock file that guards `path`: `<path>.nas-lock` beside it."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


@contextmanager
def locked(path: str | Path, held: str | None = None, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `path`: a folder (locked itself, nothing is created) or a lock
    file (created if missing). `held`: NasError message when another process holds it; None
    waits for it instead. `remove`: delete the lock file on release (a process that opened the
    old file then finds it gone and locks the new one, so removing is safe). NasError naming
    `path` when the lock file cannot be created; a file system without locks is not locked."""
    path = Path(path)
    while True:
        try:
            fd = os.open(path, os.O_RDONLY) if path.is_dir() else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise io_error(path, e, "create the lock file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if held else 0))
        except BlockingIOError:
            os.close(fd)
            raise NasError(held) from None
        except OSError:  # e.g. ENOLCK on a file system without locks: go on unguarded
            break
        if _still_there(fd, path):
            break
        os.close(fd)  # its holder removed it while this process waited: lock the new one
    try:
        yield
    finally:
        if remove:
            path.unlink(missing_ok=True)
        os.close(fd)


def _still_there(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
