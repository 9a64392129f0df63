"""Writing a file whole or not at all, and I/O errors as one line.

    from nas.files import write_atomic, write_text_atomic
    write_text_atomic(run / "summary.md", text)
    write_atomic(run / "checkpoints" / "trial_3.pt", lambda tmp: torch.save(data, tmp))

A writer fills a temporary file beside the destination, which then replaces the destination in
one rename; on any failure the temporary file is removed and the destination is left as it was.
An OSError (disk full, read-only folder, a path component that is a file) becomes a NasError
naming the file and the reason.

Only a regular file is ever replaced: a destination that exists and is something else (a
folder, a character or block device such as /dev/null, a FIFO, a socket) is refused with one
line before anything is written (`check_output_path`), and a symbolic link is followed, so the
file it points to is written and the link stays.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

from nas.errors import NasError


def io_error(path: str | Path, e: OSError, doing: str = "write") -> NasError:
    """The one-line NasError for an OSError met while doing `doing` to `path`."""
    reason = e.strerror or type(e).__name__
    return NasError(f"cannot {doing} {path}: {reason}")


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def not_a_file(path: str | Path) -> str | None:
    """What `path` (symbolic links followed) is when it exists and is not a regular file, e.g.
    "a character device"; None for a regular file or nothing."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), None if stat.S_ISREG(mode) else "a special file")


def check_output_path(path: str | Path, what: str = "") -> Path:
    """The file to write for output path `path`: `path` itself, or the file its symbolic link
    points to. NasError (one line, starting with `what`, e.g. "--out ") when it exists and is
    not a regular file: a device, FIFO, socket or folder is never replaced."""
    path = Path(path)
    kind = not_a_file(path)
    if kind is not None:
        raise NasError(f"{what}{path}: is {kind}, not a regular file; nas writes only regular files, "
                       "pass a file path")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def write_atomic(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp)` to fill a temporary file next to `path`, then rename it onto `path`.
    Creates missing parent folders. Returns `path`; NasError for an I/O error (nothing left
    behind, `path` unchanged) or a `path` that is not a regular file (`check_output_path`)."""
    path = Path(path)
    target = check_output_path(path)
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")  # the suffix some writers need
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        writer(tmp)
        os.replace(tmp, target)
    except OSError as e:
        _remove(tmp)
        raise io_error(path, e) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`text` (UTF-8) to `path`, whole or not at all; see `write_atomic`."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
