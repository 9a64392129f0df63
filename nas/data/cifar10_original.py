"""CIFAR-10 from the original python pickles (`cifar-10-batches-py/`), extracted from
cifar-10-python.tar.gz and, if asked, downloaded first. The pickles are read by an unpickler that
builds numpy arrays and plain containers only.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nas.data.cache import check_md5, md5
from nas.data.dataset import Dataset
from nas.errors import NasError
from nas.files import check_output_path
from nas.progress import bar

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
CIFAR10_TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCH_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


def _batch_folder(root: Path) -> Path | None:
    """The folder holding data_batch_1..5 and test_batch: root itself or root/cifar-10-batches-py."""
    for folder in (root, root / CIFAR10_BATCH_DIR):
        if all((folder / name).is_file() for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)):
            return folder
    return None


def load_cifar10_original(root: Path, download: bool, progress: bool) -> Dataset:
    """CIFAR-10 from the python-pickle layout under `root`, extracting (and with `download`,
    first fetching) cifar-10-python.tar.gz there when the batches are not present."""
    if root.exists() and not root.is_dir():
        raise NasError(f"cifar10 data_dir {root} is not a directory")
    folder = _batch_folder(root)
    how = "original python batches"
    if folder is None:
        tarball = root / CIFAR10_TARBALL
        if not tarball.is_file():
            if not download:
                raise NasError(_missing_batches_message(root))
            _download(CIFAR10_URL, tarball, CIFAR10_TARBALL_MD5, root, progress)
            how += f", downloaded from {CIFAR10_URL}"
        check_md5(tarball, CIFAR10_TARBALL_MD5, "cifar10 tarball")
        _extract(tarball, root)
        folder = _batch_folder(root)
        if folder is None:
            raise NasError(_missing_batches_message(root))
    train = [read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_BATCHES]
    test_x, test_y = read_cifar_batch(folder / CIFAR10_TEST_BATCH)
    return Dataset("cifar10", f"cifar10: {how} in {folder}", _cifar_classes(folder),
                   np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   test_x, test_y)


def _missing_batches_message(root: Path) -> str:
    """One line saying which CIFAR-10 files were expected in `root`."""
    names = ", ".join((*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH))
    return (f"cifar10 data_dir {root} has no {CIFAR10_BATCH_DIR}/ with {names} "
            f"(nor {CIFAR10_TARBALL}); put them there, pass download=True, "
            f"or give no data_dir to use the shipped copy")


# What a CIFAR-10 python batch may name: numpy's array and scalar reconstruction (protocol 5
# uses _frombuffer), under its numpy 1 and numpy 2 module names, and the latin-1 bytes encoder
# that protocol-2 pickles written by Python 3 use. Anything else (os.system, builtins.eval, ...)
# is refused unrun.
_PICKLE_ALLOWED = {(f"numpy{core}.{module}", name) for core in (".core", "._core")
                   for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                                        ("numeric", "_frombuffer"))} \
    | {("numpy", "ndarray"), ("numpy", "dtype")}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles call it for bytes, and only for latin-1."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, dicts, lists, bytes and numbers, and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module[:60]}.{name[:60]}, which a CIFAR-10 batch "
                                     f"never does; refused without running it")


def _unpickle(path: Path) -> object:
    """A CIFAR-10 pickle file decoded by `_CifarUnpickler` (bytes keys, as the originals)."""
    with open(path, "rb") as f:
        return _CifarUnpickler(f, encoding="bytes").load()


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch ({b'data': (N, 3072) uint8 rows of CHW pixels, b'labels': [N ints]})
    as (N, 32, 32, 3) uint8 images and (N,) int64 labels. The pickle may only build numpy
    arrays and plain containers (see `_CifarUnpickler`)."""
    try:
        batch = _unpickle(path)
        if not isinstance(batch, dict):
            raise TypeError(f"a {type(batch).__name__}, not a dict")
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"b'data' is {data.dtype} {data.shape}")
        data = data.reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        if labels.ndim != 1:
            raise ValueError(f"b'labels' has shape {labels.shape}")
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, IndexError,
            AttributeError, OverflowError, MemoryError) as exc:
        raise NasError(f"cifar10 batch {path} is not a CIFAR-10 python pickle with b'data' (N, 3072) "
                       f"and b'labels' ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    if len(labels) != len(data) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise NasError(f"cifar10 batch {path} has {len(data)} images but {len(labels)} labels, "
                       f"or labels outside 0..9")
    return data.transpose(0, 2, 3, 1).copy(), labels


def _cifar_classes(folder: Path) -> tuple[str, ...]:
    """Class names from batches.meta when present and sane, else the standard ten."""
    try:
        names = tuple(n.decode() for n in _unpickle(folder / "batches.meta")[b"label_names"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, AttributeError,
            IndexError, OverflowError, MemoryError):
        # batches.meta is optional; its absence or damage changes only the class names
        return CIFAR10_CLASSES
    return names if len(names) == len(CIFAR10_CLASSES) else CIFAR10_CLASSES


def _download(url: str, dest: Path, expected_md5: str, root: Path, progress: bool) -> None:
    """Fetch `url` into `dest` (temp file + rename) with a progress bar, checking its md5."""
    dest = check_output_path(dest)  # never renamed over a device, FIFO or folder
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response, \
                tempfile.NamedTemporaryFile(dir=root, suffix=".part", delete=False) as out:
            tmp = Path(out.name)
            _copy_with_bar(response, out, int(response.headers.get("Content-Length") or 0),
                           dest.name, progress)
    except OSError as exc:  # urllib.error.URLError is an OSError
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise NasError(f"download of {url} failed ({exc}); put {CIFAR10_TARBALL} or the extracted "
                       f"{CIFAR10_BATCH_DIR}/ into {root} instead, or give no data_dir to use the "
                       f"shipped copy") from None
    actual = md5(tmp)
    if actual != expected_md5:
        tmp.unlink(missing_ok=True)
        raise NasError(f"downloaded {url} has md5 {actual}, expected {expected_md5}; try again or put "
                       f"{CIFAR10_TARBALL} into {root} by hand")
    os.replace(tmp, dest)


def _copy_with_bar(src: BinaryIO, dst: BinaryIO, total_bytes: int, desc: str, progress: bool) -> None:
    """Copy a byte stream in 1 MiB chunks, showing bytes done of `total_bytes` (0: unknown)."""
    with bar(total=total_bytes or None, desc=desc, unit="B", unit_scale=True,
             enabled=progress) as copied:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk)
            copied.update(len(chunk))


def _extract(tarball: Path, root: Path) -> None:
    """Unpack a tar.gz into `root`, refusing members that would land outside it."""
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            tf.extractall(root, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise NasError(f"cannot extract {tarball} into {root} ({exc})") from None
