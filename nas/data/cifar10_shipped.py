"""CIFAR-10 from the JPEG copy shipped in `nas/_data/cifar10`: no network needed.

The archive is decoded once into the cache (keyed by its md5), in the original CIFAR order.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from nas.data.cache import cache_dir, cached, check_md5
from nas.data.cifar10_original import CIFAR10_CLASSES
from nas.data.dataset import Dataset, resize_rgb
from nas.errors import NasError
from nas.paths import PACKAGE_DATA
from nas.progress import bar

# The shipped copy; module attributes (not constants baked into signatures) so tests can point
# the loader at a damaged archive.
_SHIPPED_DIR = PACKAGE_DATA / "cifar10"
_SHIPPED_ARCHIVE = _SHIPPED_DIR / "cifar10-jpeg.tar.gz"
_SHIPPED_LABELS = _SHIPPED_DIR / "cifar10_original_order_labels.npz"
SHIPPED_ARCHIVE_MD5 = "67664af876dd64ad10750410502e5f72"
SHIPPED_LABELS_MD5 = "50d4019a9823fe9b85b8ecb643e58fa4"


def load_cifar10_shipped(progress: bool) -> Dataset:
    """The shipped JPEG CIFAR-10, decoded once into the cache (keyed by the archive md5)."""
    archive, labels = Path(_SHIPPED_ARCHIVE), Path(_SHIPPED_LABELS)
    cache = cache_dir() / f"cifar10-{SHIPPED_ARCHIVE_MD5}.npz"

    def build() -> dict[str, np.ndarray]:
        check_md5(archive, SHIPPED_ARCHIVE_MD5, "cifar10 archive")
        check_md5(labels, SHIPPED_LABELS_MD5, "cifar10 label file")
        return _decode_cifar10_jpeg(archive, labels, progress)

    arrays, hit = cached(cache, build)
    how = "read from cache" if hit else "decoded into cache"
    source = (f"cifar10: shipped JPEG copy ({archive.parent}, md5 {SHIPPED_ARCHIVE_MD5}; "
              f"JPEG q75, not byte-exact) {how} {cache}")
    return Dataset("cifar10", source, CIFAR10_CLASSES,
                   arrays["train_x"], arrays["train_y"].astype(np.int64),
                   arrays["test_x"], arrays["test_y"].astype(np.int64))


def _original_positions(labels: np.ndarray) -> list[np.ndarray]:
    """For each class c, the original indices of its images in order, so that
    positions[c][k] is the index of `<class c>/<k>.jpg`."""
    return [np.flatnonzero(labels == c) for c in range(len(CIFAR10_CLASSES))]


def _decode_cifar10_jpeg(archive: Path, labels_file: Path, progress: bool) -> dict[str, np.ndarray]:
    """Decode every `cifar10-jpeg/<split>/<class>/<k>.jpg` into arrays in the original CIFAR order.

    Returns train_x (50000, 32, 32, 3) uint8, train_y (50000,), test_x, test_y (10000, ...).
    """
    with np.load(labels_file) as npz:
        labels = {split: npz[f"{split}_labels"].astype(np.int64) for split in ("train", "test")}
    positions = {split: _original_positions(y) for split, y in labels.items()}
    images = {split: np.zeros((len(y), 32, 32, 3), dtype=np.uint8) for split, y in labels.items()}
    filled = {split: np.zeros(len(y), dtype=bool) for split, y in labels.items()}
    total = sum(len(y) for y in labels.values())
    with tarfile.open(archive, "r:gz") as tf, \
            bar(total=total, desc="decoding cifar10 JPEGs (once)", unit="img",
                enabled=progress) as decoded:
        for member in tf:
            if not (member.isfile() and member.name.endswith(".jpg")):
                continue
            _, split, cls, fname = member.name.split("/")
            index = positions[split][CIFAR10_CLASSES.index(cls)][int(fname[:-4])]
            with Image.open(io.BytesIO(tf.extractfile(member).read())) as img:
                images[split][index] = resize_rgb(img, 32)
            filled[split][index] = True
            decoded.update(1)
    for split, done in filled.items():
        if not done.all():
            raise NasError(f"cifar10 archive {archive} lacks {int((~done).sum())} {split} images; "
                           f"expected {len(done)}")
    return {"train_x": images["train"], "train_y": labels["train"],
            "test_x": images["test"], "test_y": labels["test"]}
