"""The `Dataset` record every loader returns, the argument checks they share and image resizing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from nas.errors import NasError
from nas.progress import bar

DEFAULT_IMAGE_SIZE = 32
IMAGE_SIZE_RANGE = (8, 1024)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one data set, split into train and test.

    Images are uint8 (N, H, W, 3) arrays of pixels 0..255 (grey sets are repeated to 3 channels);
    labels are int64 (N,) indices into `classes`. `source` is one line naming the copy used.
    """

    name: str
    source: str
    classes: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, classes={len(self.classes)}, "
                f"train={self.train_x.shape}, test={self.test_x.shape}, source={self.source!r})")


def check_image_size(image_size: int | None) -> None:
    """Reject an image side (pixels) that is not an integer in IMAGE_SIZE_RANGE."""
    lo, hi = IMAGE_SIZE_RANGE
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not lo <= image_size <= hi:
        raise NasError(f"image_size {image_size!r} is not allowed; use an integer number of pixels "
                       f"from {lo} to {hi}")


def check_seed(seed: int) -> None:
    """Reject a random seed that is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NasError(f"seed {seed!r} is not allowed; use a non-negative integer")


def grey_to_rgb(x: np.ndarray) -> np.ndarray:
    """(N, H, W) grey uint8 -> (N, H, W, 3) by repeating the channel."""
    return np.repeat(x[..., None], 3, axis=-1)


def resize_rgb(img: Image.Image, size: int) -> np.ndarray:
    """An image as a (size, size, 3) uint8 array: RGB, squashed to a square (no crop), bilinear."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def resize_all(x: np.ndarray, size: int, desc: str, progress: bool) -> np.ndarray:
    """Resize a (N, H, W) grey or (N, H, W, 3) RGB uint8 stack to size x size pixels (bilinear)."""
    out = np.empty((len(x), size, size, *x.shape[3:]), dtype=np.uint8)
    for i in bar(range(len(x)), desc=desc, unit="img", enabled=progress, leave=False):
        out[i] = np.asarray(Image.fromarray(x[i]).resize((size, size), Image.Resampling.BILINEAR))
    return out


def resized(ds: Dataset, image_size: int | None, progress: bool) -> Dataset:
    """`ds` with images resized to image_size pixels square (unchanged if None or already so)."""
    if image_size is None or ds.train_x.shape[1:3] == (image_size, image_size):
        return ds
    return Dataset(name=ds.name, source=f"{ds.source}; resized to {image_size}x{image_size}",
                   classes=ds.classes,
                   train_x=resize_all(ds.train_x, image_size, f"resizing {ds.name} train", progress),
                   train_y=ds.train_y,
                   test_x=resize_all(ds.test_x, image_size, f"resizing {ds.name} test", progress),
                   test_y=ds.test_y)
