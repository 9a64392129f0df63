"""Image folders (`imagefolder:PATH`, one sub-folder of images per class), decoded once into the
cache (keyed by the folder listing) with a stratified test part carved out by seed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.data.cache import cache_dir, cached
from nas.data.dataset import Dataset, resize_rgb
from nas.data.split import stratified_pick
from nas.errors import NasError
from nas.progress import bar

IMAGEFOLDER_PREFIX = "imagefolder:"
IMAGEFOLDER_TEST_FRACTION = 0.2


def _image_extensions() -> set[str]:
    """File extensions (lower case, with dot) that Pillow can open."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _list_imagefolder(root: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted sub-folders) and (file, class id) for every image under them."""
    if not root.exists():
        raise NasError(f"imagefolder path {root} does not exist")
    if not root.is_dir():
        raise NasError(f"imagefolder path {root} is not a directory; "
                       f"expected one sub-folder of images per class")
    classes = tuple(sorted(p.name for p in root.iterdir()
                           if p.is_dir() and not p.name.startswith(".")))
    if len(classes) < 2:
        raise NasError(f"imagefolder path {root} has {len(classes)} class folder(s) "
                       f"{list(classes)}; expected at least 2 sub-folders of images, one per class")
    exts = _image_extensions()
    files = []
    for c, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."))
        if len(found) < 2:
            raise NasError(f"imagefolder class folder {root / name} has {len(found)} image(s); "
                           f"each class needs at least 2 (train and test)")
        files += [(p, c) for p in found]
    return classes, files


def _listing_key(root: Path, files: list[tuple[Path, int]], image_size: int) -> str:
    """A hash of the folder path, every file's name, size and mtime, and the image size (pixels)."""
    digest = hashlib.sha256(f"{root}\0{image_size}".encode())
    for path, c in files:
        st = path.stat()
        digest.update(f"\0{path.relative_to(root)}\0{c}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _decode_images(files: list[tuple[Path, int]], image_size: int, progress: bool
                   ) -> dict[str, np.ndarray]:
    """Decode and resize every file: x (N, size, size, 3) uint8, y (N,) int64."""
    x = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(bar(files, desc="decoding image folder", unit="img", enabled=progress)):
        try:
            with Image.open(path) as img:
                x[i] = resize_rgb(img, image_size)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise NasError(f"imagefolder file {path} is not a readable image "
                           f"({type(exc).__name__}: {exc})") from None
    return {"x": x, "y": np.array([c for _, c in files], dtype=np.int64)}


def load_imagefolder(path: str, image_size: int, seed: int, progress: bool) -> Dataset:
    """A folder-per-class image set, resized to image_size pixels square, with a stratified
    IMAGEFOLDER_TEST_FRACTION of each class carved out (by `seed`) as the test set."""
    if not path.strip():
        raise NasError(f"imagefolder spec has no path; use {IMAGEFOLDER_PREFIX}PATH")
    root = Path(path.strip()).expanduser().resolve()
    classes, files = _list_imagefolder(root)
    cache = cache_dir() / f"imagefolder-{_listing_key(root, files, image_size)}.npz"
    arrays, hit = cached(cache, lambda: _decode_images(files, image_size, progress))
    x, y = arrays["x"], arrays["y"]
    counts = np.bincount(y, minlength=len(classes))
    quota = np.maximum(1, np.round(counts * IMAGEFOLDER_TEST_FRACTION)).astype(np.int64)
    test = np.zeros(len(y), dtype=bool)
    test[stratified_pick(y, quota, seed)] = True
    source = (f"{IMAGEFOLDER_PREFIX}{root}: {len(y)} images in {len(classes)} classes, "
              f"resized to {image_size}x{image_size}; no separate test set, so test = "
              f"{IMAGEFOLDER_TEST_FRACTION:.0%} of each class picked with seed {seed}; "
              f"{'read from' if hit else 'decoded into'} cache {cache}")
    return Dataset(f"{IMAGEFOLDER_PREFIX}{root}", source, classes, x[~test], y[~test], x[test], y[test])
