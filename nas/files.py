"""Writing a file whole or not at all, and I/O errors as one line.

    from nas.files import write_atomic, write_text_atomic
    write_text_atomic(run / "summary.md", text)
    write_atomic(run / "checkpoints" / "trial_3.pt", lambda tmp: torch.save(data, tmp))

A writer fills a temporary file beside the destination, which then replaces the destination in
one rename; on any failure the temporary file is removed and the destination is left as it was.
An OSError (disk full, read-only folder, a path component that is a file) becomes a NasError
naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from nas.errors import NasError


def io_error(path: str | Path, e: OSError, doing: str = "write") -> NasError:
    """The one-line NasError for an OSError met while doing `doing` to `path`."""
    reason = e.strerror or type(e).__name__
    return NasError(f"cannot {doing} {path}: {reason}")


def write_atomic(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp)` to fill a temporary file next to `path`, then rename it onto `path`.
    Creates missing parent folders. Returns `path`; NasError for an I/O error (nothing left
    behind, `path` unchanged)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(tmp)
        os.replace(tmp, path)
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
