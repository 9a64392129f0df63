"""Image classification data sets as uint8 numpy arrays: CIFAR-10, Fashion-MNIST, image folders.

`load_dataset(spec)` returns a `Dataset` whose images are always (N, H, W, 3) uint8 and whose
labels are int64, whatever the source; `train_val_split` carves a validation set out of the
training images only. The default `cifar10` needs no network: it decodes the JPEG copy shipped in
`nas/_data/cifar10` once and caches the arrays (see `cache_dir`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from nas.errors import NasError
from nas.paths import PACKAGE_DATA

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# The shipped copy; module attributes (not constants baked into signatures) so tests can point
# the loader at a damaged archive.
_SHIPPED_DIR = PACKAGE_DATA / "cifar10"
_SHIPPED_ARCHIVE = _SHIPPED_DIR / "cifar10-jpeg.tar.gz"
_SHIPPED_LABELS = _SHIPPED_DIR / "cifar10_original_order_labels.npz"
SHIPPED_ARCHIVE_MD5 = "67664af876dd64ad10750410502e5f72"
SHIPPED_LABELS_MD5 = "50d4019a9823fe9b85b8ecb643e58fa4"

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
CIFAR10_TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCH_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {  # split -> (images, labels) file stems; ".gz" is optional
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IMAGEFOLDER_PREFIX = "imagefolder:"
IMAGEFOLDER_TEST_FRACTION = 0.2
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
    progress: show tqdm bars on stderr while decoding or downloading.
    Raises NasError for any input the user can fix.
    """
    if not isinstance(spec, str):
        raise NasError(f"data set spec {spec!r} is not a string; allowed: {', '.join(dataset_names())}")
    _check_image_size(image_size)
    _check_seed(seed)
    name = spec.strip()
    if download and name.lower() != "cifar10":
        raise NasError(f"download=True is not allowed for data set {spec!r}; only cifar10 downloads")
    if name.lower().startswith(IMAGEFOLDER_PREFIX):
        if data_dir is not None:
            raise NasError(f"data_dir {str(data_dir)!r} is not used with {spec!r}; "
                           f"put the folder in the spec: {IMAGEFOLDER_PREFIX}PATH")
        return _load_imagefolder(name[len(IMAGEFOLDER_PREFIX):], image_size or DEFAULT_IMAGE_SIZE,
                                 seed, progress)
    if name.lower() == "cifar10":
        ds = _load_cifar10(data_dir, download, progress)
    elif name.lower() == "fashion-mnist":
        ds = _load_fashion_mnist(data_dir, image_size, progress)
    else:
        raise NasError(f"unknown data set {spec!r}; allowed: {', '.join(dataset_names())}")
    return _resized(ds, image_size, progress)


def train_val_split(ds: Dataset, val_size: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve `val_size` images, stratified by class, out of `ds.train_*` (never the test set).

    Returns (train_x, train_y, val_x, val_y); the two parts are disjoint, cover ds.train_* and
    keep the original order. The same seed always picks the same images.
    """
    _check_seed(seed)
    n = len(ds.train_y)
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) \
            or not 0 <= val_size < n:
        raise NasError(f"val_size {val_size!r} is not allowed; use an integer from 0 to {n - 1} "
                       f"(the training set of {ds.name} has {n} images)")
    val_idx = _stratified_pick(ds.train_y, _per_class_quota(ds.train_y, int(val_size)), seed)
    keep = np.ones(n, dtype=bool)
    keep[val_idx] = False
    return ds.train_x[keep], ds.train_y[keep], ds.train_x[val_idx], ds.train_y[val_idx]


def cache_dir() -> Path:
    """The folder for decoded arrays: $NAS_CACHE_DIR, else $XDG_CACHE_HOME/nas, else ~/.cache/nas."""
    if os.environ.get("NAS_CACHE_DIR"):
        return Path(os.environ["NAS_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "nas"
    return Path.home() / ".cache" / "nas"


# --- checks and small helpers -------------------------------------------------------------------

def _check_image_size(image_size: int | None) -> None:
    """Reject an image side (pixels) that is not an integer in IMAGE_SIZE_RANGE."""
    lo, hi = IMAGE_SIZE_RANGE
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not lo <= image_size <= hi:
        raise NasError(f"image_size {image_size!r} is not allowed; use an integer number of pixels "
                       f"from {lo} to {hi}")


def _check_seed(seed: int) -> None:
    """Reject a random seed that is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NasError(f"seed {seed!r} is not allowed; use a non-negative integer")


def _md5(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_md5(path: Path, expected: str, what: str) -> None:
    """Raise NasError naming `path` unless its md5 is `expected`."""
    if not path.is_file():
        raise NasError(f"{what} {path} is missing; expected a file with md5 {expected}")
    actual = _md5(path)
    if actual != expected:
        raise NasError(f"{what} {path} has md5 {actual}, expected {expected}; the file is damaged "
                       f"or a different version, replace it")


def _save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write arrays to `path` (.npz, uncompressed) via a temp file + rename, so a killed process
    never leaves a half-written cache. Returns False (with a warning) if the folder is not writable."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".tmp",
                                         delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # temp files are created 0600; a cache is an ordinary file
        os.replace(tmp, path)
        return True
    except OSError as exc:
        warnings.warn(f"nas: could not write cache {path} ({exc}); "
                      f"data will be decoded again next time", stacklevel=3)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return False


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Read every array of a cache file, or None if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _cached(path: Path, build: Callable[[], dict[str, np.ndarray]]
            ) -> tuple[dict[str, np.ndarray], bool]:
    """The arrays in cache file `path`, building and saving them first on a miss.
    Returns (arrays, was_cache_hit)."""
    arrays = _load_npz(path)
    if arrays is not None:
        return arrays, True
    arrays = build()
    _save_npz_atomic(path, arrays)
    return arrays, False


def _grey_to_rgb(x: np.ndarray) -> np.ndarray:
    """(N, H, W) grey uint8 -> (N, H, W, 3) by repeating the channel."""
    return np.repeat(x[..., None], 3, axis=-1)


def _resize_rgb(img: Image.Image, size: int) -> np.ndarray:
    """An image as a (size, size, 3) uint8 array: RGB, squashed to a square (no crop), bilinear."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _resize_all(x: np.ndarray, size: int, desc: str, progress: bool) -> np.ndarray:
    """Resize a (N, H, W) grey or (N, H, W, 3) RGB uint8 stack to size x size pixels (bilinear)."""
    out = np.empty((len(x), size, size, *x.shape[3:]), dtype=np.uint8)
    for i in tqdm(range(len(x)), desc=desc, unit="img", disable=not progress, leave=False):
        out[i] = np.asarray(Image.fromarray(x[i]).resize((size, size), Image.Resampling.BILINEAR))
    return out


def _resized(ds: Dataset, image_size: int | None, progress: bool) -> Dataset:
    """`ds` with images resized to image_size pixels square (unchanged if None or already so)."""
    if image_size is None or ds.train_x.shape[1:3] == (image_size, image_size):
        return ds
    return Dataset(name=ds.name, source=f"{ds.source}; resized to {image_size}x{image_size}",
                   classes=ds.classes,
                   train_x=_resize_all(ds.train_x, image_size, f"resizing {ds.name} train", progress),
                   train_y=ds.train_y,
                   test_x=_resize_all(ds.test_x, image_size, f"resizing {ds.name} test", progress),
                   test_y=ds.test_y)


def _per_class_quota(y: np.ndarray, total: int) -> np.ndarray:
    """How many of `total` picks each class gets, proportional to its count in `y`
    (largest remainder, ties to the lower class id). Sums to exactly `total`."""
    counts = np.bincount(y)
    exact = total * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
    quota[order[: total - quota.sum()]] += 1
    return quota


def _stratified_pick(y: np.ndarray, quota: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of `quota[c]` random images of each class c, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in enumerate(quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


# --- CIFAR-10: the shipped JPEG copy --------------------------------------------------------------

def _load_cifar10(data_dir: str | Path | None, download: bool, progress: bool) -> Dataset:
    """CIFAR-10 from the original pickles (data_dir or download) or else the shipped JPEG copy."""
    if data_dir is None and not download:
        return _load_cifar10_shipped(progress)
    root = Path(data_dir).expanduser() if data_dir is not None else cache_dir()
    return _load_cifar10_original(root, download, progress)


def _load_cifar10_shipped(progress: bool) -> Dataset:
    """The shipped JPEG CIFAR-10, decoded once into the cache (keyed by the archive md5)."""
    archive, labels = Path(_SHIPPED_ARCHIVE), Path(_SHIPPED_LABELS)
    cache = cache_dir() / f"cifar10-{SHIPPED_ARCHIVE_MD5}.npz"

    def build() -> dict[str, np.ndarray]:
        _check_md5(archive, SHIPPED_ARCHIVE_MD5, "cifar10 archive")
        _check_md5(labels, SHIPPED_LABELS_MD5, "cifar10 label file")
        return _decode_cifar10_jpeg(archive, labels, progress)

    arrays, hit = _cached(cache, build)
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
            tqdm(total=total, desc="decoding cifar10 JPEGs (once)", unit="img",
                 disable=not progress) as bar:
        for member in tf:
            if not (member.isfile() and member.name.endswith(".jpg")):
                continue
            _, split, cls, fname = member.name.split("/")
            index = positions[split][CIFAR10_CLASSES.index(cls)][int(fname[:-4])]
            with Image.open(io.BytesIO(tf.extractfile(member).read())) as img:
                images[split][index] = _resize_rgb(img, 32)
            filled[split][index] = True
            bar.update(1)
    for split, done in filled.items():
        if not done.all():
            raise NasError(f"cifar10 archive {archive} lacks {int((~done).sum())} {split} images; "
                           f"expected {len(done)}")
    return {"train_x": images["train"], "train_y": labels["train"],
            "test_x": images["test"], "test_y": labels["test"]}


# --- CIFAR-10: the original python pickles --------------------------------------------------------

def _batch_folder(root: Path) -> Path | None:
    """The folder holding data_batch_1..5 and test_batch: root itself or root/cifar-10-batches-py."""
    for folder in (root, root / CIFAR10_BATCH_DIR):
        if all((folder / name).is_file() for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)):
            return folder
    return None


def _load_cifar10_original(root: Path, download: bool, progress: bool) -> Dataset:
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
        _check_md5(tarball, CIFAR10_TARBALL_MD5, "cifar10 tarball")
        _extract(tarball, root)
        folder = _batch_folder(root)
        if folder is None:
            raise NasError(_missing_batches_message(root))
    train = [_read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_BATCHES]
    test_x, test_y = _read_cifar_batch(folder / CIFAR10_TEST_BATCH)
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


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _download(url: str, dest: Path, md5: str, root: Path, progress: bool) -> None:
    """Fetch `url` into `dest` (temp file + rename) with a tqdm bar, checking its md5."""
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
    actual = _md5(tmp)
    if actual != md5:
        tmp.unlink(missing_ok=True)
        raise NasError(f"downloaded {url} has md5 {actual}, expected {md5}; try again or put "
                       f"{CIFAR10_TARBALL} into {root} by hand")
    os.replace(tmp, dest)


def _copy_with_bar(src: BinaryIO, dst: BinaryIO, total_bytes: int, desc: str, progress: bool) -> None:
    """Copy a byte stream in 1 MiB chunks, showing bytes done of `total_bytes` (0: unknown)."""
    with tqdm(total=total_bytes or None, desc=desc, unit="B", unit_scale=True,
              disable=not progress) as bar:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk)
            bar.update(len(chunk))


def _extract(tarball: Path, root: Path) -> None:
    """Unpack a tar.gz into `root`, refusing members that would land outside it."""
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            tf.extractall(root, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise NasError(f"cannot extract {tarball} into {root} ({exc})") from None


# --- Fashion-MNIST ----------------------------------------------------------------------------------

def _load_fashion_mnist(data_dir: str | Path | None, image_size: int | None, progress: bool
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
            x = _resize_all(x, image_size, f"resizing fashion-mnist {split}", progress)
        arrays[split] = (_grey_to_rgb(x), y)
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


# --- image folders --------------------------------------------------------------------------------

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
    bar = tqdm(files, desc="decoding image folder", unit="img", disable=not progress)
    for i, (path, _) in enumerate(bar):
        try:
            with Image.open(path) as img:
                x[i] = _resize_rgb(img, image_size)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise NasError(f"imagefolder file {path} is not a readable image "
                           f"({type(exc).__name__}: {exc})") from None
    return {"x": x, "y": np.array([c for _, c in files], dtype=np.int64)}


def _load_imagefolder(path: str, image_size: int, seed: int, progress: bool) -> Dataset:
    """A folder-per-class image set, resized to image_size pixels square, with a stratified
    IMAGEFOLDER_TEST_FRACTION of each class carved out (by `seed`) as the test set."""
    if not path.strip():
        raise NasError(f"imagefolder spec has no path; use {IMAGEFOLDER_PREFIX}PATH")
    root = Path(path.strip()).expanduser().resolve()
    classes, files = _list_imagefolder(root)
    cache = cache_dir() / f"imagefolder-{_listing_key(root, files, image_size)}.npz"
    arrays, hit = _cached(cache, lambda: _decode_images(files, image_size, progress))
    x, y = arrays["x"], arrays["y"]
    counts = np.bincount(y, minlength=len(classes))
    quota = np.maximum(1, np.round(counts * IMAGEFOLDER_TEST_FRACTION)).astype(np.int64)
    test = np.zeros(len(y), dtype=bool)
    test[_stratified_pick(y, quota, seed)] = True
    source = (f"{IMAGEFOLDER_PREFIX}{root}: {len(y)} images in {len(classes)} classes, "
              f"resized to {image_size}x{image_size}; no separate test set, so test = "
              f"{IMAGEFOLDER_TEST_FRACTION:.0%} of each class picked with seed {seed}; "
              f"{'read from' if hit else 'decoded into'} cache {cache}")
    return Dataset(f"{IMAGEFOLDER_PREFIX}{root}", source, classes, x[~test], y[~test], x[test], y[test])
