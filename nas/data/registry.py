"""`load_dataset(spec)`: the one entry point that picks the loader a data set spec names."""

from __future__ import annotations

from pathlib import Path

from nas.data.cache import cache_dir
from nas.data.cifar10_original import load_cifar10_original
from nas.data.cifar10_shipped import load_cifar10_shipped
from nas.data.dataset import DEFAULT_IMAGE_SIZE, Dataset, check_image_size, check_seed, resized
from nas.data.fashion_mnist import load_fashion_mnist
from nas.data.imagefolder import IMAGEFOLDER_PREFIX, load_imagefolder
from nas.errors import NasError


def dataset_names() -> list[str]:
    """The data set specs `load_dataset` accepts, for help text and error messages."""
    return ["cifar10", "fashion-mnist", f"{IMAGEFOLDER_PREFIX}PATH"]


def load_dataset(spec: str = "cifar10", data_dir: str | Path | None = None, download: bool = False,
                 image_size: int | None = None, seed: int = 0, progress: bool = True) -> Dataset:
    """Load a data set by name.

    spec: "cifar10", "fashion-mnist" or "imagefolder:PATH" (one sub-folder of images per class).
    data_dir: where the original files are (cifar10: `cifar-10-batches-py/` or its tarball;
        fashion-mnist: the idx files). None: cifar10 uses the shipped JPEG copy, fashion-mnist
        uses /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
    download: cifar10 only; fetch the original tarball into data_dir (or the cache folder).
    image_size: side in pixels of the square images returned; None keeps the native size
        (32 for cifar10, 28 for fashion-mnist) and means 32 for image folders.
    seed: picks the test images carved out of an image folder (which has no test set of its own).
    progress: show progress bars on stderr while decoding or downloading.
    Raises NasError for any input the user can fix.
    """
    if not isinstance(spec, str):
        raise NasError(f"data set spec {spec!r} is not a string; allowed: {', '.join(dataset_names())}")
    check_image_size(image_size)
    check_seed(seed)
    name = spec.strip()
    if download and name.lower() != "cifar10":
        raise NasError(f"download=True is not allowed for data set {spec!r}; only cifar10 downloads")
    if name.lower().startswith(IMAGEFOLDER_PREFIX):
        if data_dir is not None:
            raise NasError(f"data_dir {str(data_dir)!r} is not used with {spec!r}; "
                           f"put the folder in the spec: {IMAGEFOLDER_PREFIX}PATH")
        return load_imagefolder(name[len(IMAGEFOLDER_PREFIX):], image_size or DEFAULT_IMAGE_SIZE,
                                seed, progress)
    if name.lower() == "cifar10":
        ds = _load_cifar10(data_dir, download, progress)
    elif name.lower() == "fashion-mnist":
        ds = load_fashion_mnist(data_dir, image_size, progress)
    else:
        raise NasError(f"unknown data set {spec!r}; allowed: {', '.join(dataset_names())}")
    return resized(ds, image_size, progress)


def _load_cifar10(data_dir: str | Path | None, download: bool, progress: bool) -> Dataset:
    """CIFAR-10 from the original pickles (data_dir or download) or else the shipped JPEG copy."""
    if data_dir is None and not download:
        return load_cifar10_shipped(progress)
    root = Path(data_dir).expanduser() if data_dir is not None else cache_dir()
    return load_cifar10_original(root, download, progress)
