"""Fashion-MNIST from its four idx files (gzipped or not), grey repeated to RGB."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from nas.data.dataset import Dataset, grey_to_rgb, resize_all
from nas.errors import NasError

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {  # split -> (images, labels) file stems; ".gz" is optional
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_fashion_mnist(data_dir: str | Path | None, image_size: int | None, progress: bool
                        ) -> Dataset:
    """Fashion-MNIST from the four idx files (gzipped or not): 28x28 grey (or resized to
    image_size pixels while still grey, 3x cheaper) repeated to RGB."""
    root = Path(data_dir).expanduser() if data_dir is not None else FASHION_MNIST_DEFAULT_DIR
    arrays = {}
    for split, (image_stem, label_stem) in FASHION_MNIST_FILES.items():
        x = _read_idx(_find_idx(root, image_stem), magic=2051)
        y = _read_idx(_find_idx(root, label_stem), magic=2049).astype(np.int64)
        if len(x) != len(y):
            raise NasError(f"fashion-mnist {split} files in {root} hold {len(x)} images "
                           f"but {len(y)} labels")
        if image_size is not None and image_size != x.shape[1]:
            x = resize_all(x, image_size, f"resizing fashion-mnist {split}", progress)
        arrays[split] = (grey_to_rgb(x), y)
    size = arrays["train"][0].shape[1]
    resized = f"; resized to {size}x{size}" if size != 28 else ""
    return Dataset("fashion-mnist", f"fashion-mnist: original idx files in {root}{resized}",
                   FASHION_MNIST_CLASSES, *arrays["train"], *arrays["test"])


def _find_idx(root: Path, stem: str) -> Path:
    """`root/stem.gz` or `root/stem`, whichever exists."""
    for path in (root / f"{stem}.gz", root / stem):
        if path.is_file():
            return path
    expected = ", ".join(f"{a}.gz" for pair in FASHION_MNIST_FILES.values() for a in pair)
    raise NasError(f"fashion-mnist data_dir {root} lacks {stem}[.gz]; expected {expected} "
                   f"(Debian: apt-get install dataset-fashion-mnist puts them in "
                   f"{FASHION_MNIST_DEFAULT_DIR})")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An idx file (big-endian int32 magic, dims, then uint8 data) as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        header = np.frombuffer(raw[:4], dtype=">i4")
        ndim = magic - 2048
        if len(header) != 1 or header[0] != magic:
            raise ValueError(f"magic {header[0] if len(header) else None}, expected {magic}")
        dims = tuple(int(d) for d in np.frombuffer(raw[4:4 + 4 * ndim], dtype=">i4"))
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    except (OSError, EOFError, ValueError) as exc:
        raise NasError(f"fashion-mnist file {path} is not a readable idx file ({exc})") from None
