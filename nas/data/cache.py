"""The cache of decoded arrays (one .npz per decoded copy) and md5 checks of the source files."""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from nas.errors import NasError
from nas.files import write_atomic


def cache_dir() -> Path:
    """The folder for decoded arrays: $NAS_CACHE_DIR, else $XDG_CACHE_HOME/nas, else ~/.cache/nas."""
    if os.environ.get("NAS_CACHE_DIR"):
        return Path(os.environ["NAS_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "nas"
    return Path.home() / ".cache" / "nas"


def md5(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: Path, expected: str, what: str) -> None:
    """Raise NasError naming `path` unless its md5 is `expected`."""
    if not path.is_file():
        raise NasError(f"{what} {path} is missing; expected a file with md5 {expected}")
    actual = md5(path)
    if actual != expected:
        raise NasError(f"{what} {path} has md5 {actual}, expected {expected}; the file is damaged "
                       f"or a different version, replace it")


_warned: set[Path] = set()  # cache folders already reported unusable by this process


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write arrays to `path` (.npz, uncompressed) whole or not at all (`nas.files.write_atomic`),
    so a killed process never leaves a half-written cache. Returns False when the cache folder is
    unusable (not writable, a file, under a HOME that is a file): the data is then used uncached,
    with one warning line on stderr per folder and process."""
    try:
        write_atomic(path, lambda tmp: _savez(tmp, arrays))
        return True
    except NasError as e:
        if path.parent not in _warned:
            _warned.add(path.parent)
            print(f"warning: data cache unusable ({e}); training uncached, decoding again next time; "
                  "set NAS_CACHE_DIR to a writable folder to keep it", file=sys.stderr)
        return False


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Read every array of a cache file, or None if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def cached(path: Path, build: Callable[[], dict[str, np.ndarray]]
           ) -> tuple[dict[str, np.ndarray], bool]:
    """The arrays in cache file `path`, building and saving them first on a miss.
    Returns (arrays, was_cache_hit)."""
    arrays = load_npz(path)
    if arrays is not None:
        return arrays, True
    arrays = build()
    save_npz_atomic(path, arrays)
    return arrays, False
