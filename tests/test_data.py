"""Tests for nas.data: the shipped CIFAR-10 copy, its cache, the other loaders and the splits.

The shipped JPEG archive is decoded once per session (fixture `cifar_cache`); every other CIFAR
test reads that cache. Image-folder and pickle-layout tests are built from real CIFAR images.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas import data
from nas.data import Dataset, dataset_names, load_dataset, train_val_split
from nas.errors import NasError

CIFAR_FIRST_TRAIN_LABELS = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
CIFAR_FIRST_TEST_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
# Per-image mean R, G, B of the first 10 images of the ORIGINAL data_batch_1 and test_batch,
# computed from the raw pixels left in the truncated pickles described in nas/_data/cifar10/README.md.
# JPEG moves them by < 1; neighbouring images differ by > 3, so these pin the image order.
CIFAR_FIRST_TRAIN_MEANS = [[141.2, 105.1, 64.0], [130.2, 130.4, 130.5], [133.5, 135.2, 132.6],
                           [100.0, 83.3, 57.4], [92.0, 102.4, 116.0], [142.4, 70.8, 57.8],
                           [120.5, 152.9, 85.4], [132.5, 134.8, 97.9], [109.2, 156.2, 189.0],
                           [78.1, 71.6, 61.8]]
CIFAR_FIRST_TEST_MEANS = [[110.0, 110.8, 104.4], [150.6, 154.1, 160.6], [121.0, 133.2, 143.5],
                          [152.1, 150.6, 161.8], [107.9, 122.1, 92.2], [135.2, 88.2, 70.1],
                          [106.2, 62.2, 58.5], [98.4, 98.0, 63.9], [173.4, 161.4, 144.4],
                          [138.0, 136.0, 158.5]]


@pytest.fixture(scope="session")
def cifar_cache(tmp_path_factory) -> Path:
    """A cache folder holding the decoded shipped CIFAR-10 (the only full decode of the session)."""
    folder = tmp_path_factory.mktemp("nas-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_CACHE_DIR", str(folder))
        load_dataset("cifar10", progress=False)
    return folder


@pytest.fixture
def cifar(cifar_cache, monkeypatch) -> Dataset:
    """The shipped CIFAR-10, read from the session cache."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(cifar_cache))
    return load_dataset("cifar10", progress=False)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache folder for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("NAS_CACHE_DIR", str(folder))
    return folder


def assert_one_line(exc: pytest.ExceptionInfo, *parts: str) -> None:
    """The error message is one line and names every part."""
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# --- shipped CIFAR-10 ------------------------------------------------------------------------------

def test_cifar10_arrays_have_documented_shapes_and_dtypes(cifar):
    assert cifar.train_x.shape == (50000, 32, 32, 3) and cifar.train_x.dtype == np.uint8
    assert cifar.test_x.shape == (10000, 32, 32, 3) and cifar.test_x.dtype == np.uint8
    assert cifar.train_y.shape == (50000,) and cifar.train_y.dtype == np.int64
    assert cifar.test_y.shape == (10000,) and cifar.test_y.dtype == np.int64


def test_cifar10_has_5000_train_and_1000_test_images_per_class(cifar):
    assert cifar.classes == data.CIFAR10_CLASSES
    assert np.bincount(cifar.train_y).tolist() == [5000] * 10
    assert np.bincount(cifar.test_y).tolist() == [1000] * 10


def test_cifar10_first_labels_follow_original_order(cifar):
    assert cifar.train_y[:10].tolist() == CIFAR_FIRST_TRAIN_LABELS
    assert cifar.test_y[:10].tolist() == CIFAR_FIRST_TEST_LABELS


def test_cifar10_first_images_match_original_pixels(cifar):
    def channel_means(x):
        return x[:10].reshape(10, -1, 3).mean(axis=1)

    assert np.abs(channel_means(cifar.train_x) - CIFAR_FIRST_TRAIN_MEANS).max() < 1.5
    assert np.abs(channel_means(cifar.test_x) - CIFAR_FIRST_TEST_MEANS).max() < 1.5


def test_cifar10_mean_pixel_matches_original(cifar):
    assert abs(cifar.train_x.mean() - 120.7) < 0.1


def test_cifar10_source_names_shipped_copy_and_cache(cifar, cifar_cache):
    assert "\n" not in cifar.source
    assert "shipped JPEG copy" in cifar.source and data.SHIPPED_ARCHIVE_MD5 in cifar.source
    assert str(cifar_cache) in cifar.source


def test_cifar10_cache_file_is_keyed_by_archive_md5_and_no_temp_files_remain(cifar_cache):
    assert sorted(p.name for p in cifar_cache.iterdir()) == [f"cifar10-{data.SHIPPED_ARCHIVE_MD5}.npz"]


def test_cifar10_second_load_reads_cache_without_decoding(cifar_cache, monkeypatch):
    monkeypatch.setenv("NAS_CACHE_DIR", str(cifar_cache))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache exists")

    monkeypatch.setattr(data, "_decode_cifar10_jpeg", no_decoding)
    ds = load_dataset("cifar10", progress=False)
    assert ds.train_y[:10].tolist() == CIFAR_FIRST_TRAIN_LABELS
    assert "read from cache" in ds.source


def test_cifar10_archive_md5_mismatch_names_file_and_both_md5s(tmp_path, empty_cache, monkeypatch):
    damaged = tmp_path / "cifar10-jpeg.tar.gz"
    shutil.copyfile(data._SHIPPED_ARCHIVE, damaged)
    with open(damaged, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(data, "_SHIPPED_ARCHIVE", damaged)
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", progress=False)
    assert_one_line(exc, str(damaged), data.SHIPPED_ARCHIVE_MD5, data._md5(damaged))


def test_cifar10_unreadable_cache_is_rebuilt(empty_cache, monkeypatch):
    empty_cache.mkdir()
    cache = empty_cache / f"cifar10-{data.SHIPPED_ARCHIVE_MD5}.npz"
    cache.write_bytes(b"half a zip file")
    tiny = {"train_x": np.zeros((2, 32, 32, 3), np.uint8), "train_y": np.array([0, 1]),
            "test_x": np.zeros((1, 32, 32, 3), np.uint8), "test_y": np.array([1])}
    monkeypatch.setattr(data, "_decode_cifar10_jpeg", lambda *a, **k: tiny)
    ds = load_dataset("cifar10", progress=False)
    assert ds.train_y.tolist() == [0, 1]
    assert data._load_npz(cache)["test_y"].tolist() == [1]


def test_cache_write_that_fails_midway_leaves_no_cache_file(tmp_path, monkeypatch):
    def savez_then_die(f, **arrays):
        f.write(b"PK partial")
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(data.np, "savez", savez_then_die)
    target = tmp_path / "x.npz"
    with pytest.raises(RuntimeError):
        data._save_npz_atomic(target, {"a": np.zeros(3)})
    assert not target.exists()


def test_cache_dir_prefers_nas_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert data.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("NAS_CACHE_DIR")
    assert data.cache_dir() == tmp_path / "b" / "nas"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "nas"


def test_image_size_resizes_every_image(cifar):
    small = dataclasses.replace(cifar, train_x=cifar.train_x[:20], train_y=cifar.train_y[:20],
                                test_x=cifar.test_x[:10], test_y=cifar.test_y[:10])
    resized = data._resized(small, 24, progress=False)
    assert resized.train_x.shape == (20, 24, 24, 3) and resized.test_x.shape == (10, 24, 24, 3)
    assert "resized to 24x24" in resized.source


# --- train_val_split ---------------------------------------------------------------------------------

@pytest.fixture
def indexed(cifar) -> Dataset:
    """CIFAR-10 with each train image replaced by its index, to trace where it went."""
    return dataclasses.replace(cifar, train_x=np.arange(len(cifar.train_y)))


def test_train_val_split_is_deterministic_by_seed(indexed):
    _, _, a, _ = train_val_split(indexed, 1000, seed=3)
    _, _, b, _ = train_val_split(indexed, 1000, seed=3)
    _, _, c, _ = train_val_split(indexed, 1000, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_val_split_is_stratified_by_class(indexed):
    _, train_y, _, val_y = train_val_split(indexed, 5000, seed=0)
    assert np.bincount(val_y).tolist() == [500] * 10
    assert np.bincount(train_y).tolist() == [4500] * 10


def test_train_val_split_odd_size_is_exact(indexed):
    _, _, val_x, val_y = train_val_split(indexed, 1234, seed=0)
    assert len(val_x) == len(val_y) == 1234
    assert np.bincount(val_y).max() - np.bincount(val_y).min() <= 1


def test_train_val_split_parts_are_disjoint_and_cover_train_only(indexed):
    train_x, train_y, val_x, val_y = train_val_split(indexed, 5000, seed=1)
    assert len(np.intersect1d(train_x, val_x)) == 0
    assert np.array_equal(np.sort(np.concatenate([train_x, val_x])), np.arange(50000))
    assert np.array_equal(indexed.train_y[val_x], val_y)
    assert np.array_equal(indexed.train_y[train_x], train_y)


def test_train_val_split_rejects_val_size_out_of_range(indexed):
    with pytest.raises(NasError) as exc:
        train_val_split(indexed, 50000, seed=0)
    assert_one_line(exc, "val_size", "50000", "0 to 49999")


# --- imagefolder -------------------------------------------------------------------------------------

def write_imagefolder(root: Path, cifar: Dataset, per_class: dict[str, int]
                      ) -> dict[str, list[np.ndarray]]:
    """Write real CIFAR images as PNGs into root/<class>/; returns the arrays written per class."""
    written = {}
    for name, n in per_class.items():
        label = cifar.classes.index(name)
        images = cifar.test_x[cifar.test_y == label][:n]
        (root / name).mkdir(parents=True)
        for k, img in enumerate(images):
            Image.fromarray(img).save(root / name / f"{k:03d}.png")
        written[name] = list(images)
    return written


def test_imagefolder_loads_classes_sorted_and_carves_stratified_test(cifar, tmp_path, empty_cache):
    written = write_imagefolder(tmp_path / "imgs", cifar, {"ship": 10, "cat": 10, "frog": 5})
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image, skipped")
    ds = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", progress=False)
    assert ds.classes == ("cat", "frog", "ship")
    assert ds.train_x.shape == (20, 32, 32, 3) and ds.test_x.shape == (5, 32, 32, 3)
    assert np.bincount(ds.test_y).tolist() == [2, 1, 2]
    assert "no separate test set" in ds.source and "\n" not in ds.source
    first_cat = ds.train_x[ds.train_y == 0][0]
    assert any(np.array_equal(first_cat, img) for img in written["cat"])


def test_imagefolder_resizes_to_image_size(cifar, tmp_path, empty_cache):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 3, "dog": 3})
    ds = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", image_size=20, progress=False)
    assert ds.train_x.shape[1:] == (20, 20, 3) and ds.train_x.dtype == np.uint8


def test_imagefolder_test_split_is_deterministic_by_seed(cifar, tmp_path, empty_cache):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 10, "dog": 10})
    spec = f"imagefolder:{tmp_path / 'imgs'}"
    a = load_dataset(spec, seed=5, progress=False)
    b = load_dataset(spec, seed=5, progress=False)
    assert np.array_equal(a.test_x, b.test_x)
    others = [load_dataset(spec, seed=s, progress=False).test_x for s in range(6, 10)]
    assert any(not np.array_equal(a.test_x, o) for o in others)


def test_imagefolder_second_load_uses_cache_until_folder_changes(cifar, tmp_path, empty_cache,
                                                                  monkeypatch):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 3, "dog": 3})
    spec = f"imagefolder:{tmp_path / 'imgs'}"
    load_dataset(spec, progress=False)
    real_decode = data._decode_images
    monkeypatch.setattr(data, "_decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert "read from cache" in load_dataset(spec, progress=False).source
    Image.fromarray(cifar.test_x[0]).save(tmp_path / "imgs" / "dog" / "new.png")
    monkeypatch.setattr(data, "_decode_images", real_decode)
    changed = load_dataset(spec, progress=False)
    assert len(changed.train_y) + len(changed.test_y) == 7
    assert "decoded into cache" in changed.source


def test_imagefolder_missing_path_is_an_error(tmp_path, empty_cache):
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    assert_one_line(exc, str(tmp_path / "nope"), "does not exist")


def test_imagefolder_file_instead_of_folder_is_an_error(tmp_path, empty_cache):
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'file.png'}")
    assert_one_line(exc, "not a directory")


def test_imagefolder_without_class_folders_is_an_error(tmp_path, empty_cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    assert_one_line(exc, str(tmp_path / "empty"), "at least 2")


def test_imagefolder_with_one_class_is_an_error(cifar, tmp_path, empty_cache):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 3})
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    assert_one_line(exc, "1 class folder", "at least 2")


def test_imagefolder_class_with_no_images_is_an_error(cifar, tmp_path, empty_cache):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 3})
    (tmp_path / "imgs" / "dog").mkdir()
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    assert_one_line(exc, str(tmp_path / "imgs" / "dog"), "0 image")


def test_imagefolder_unreadable_image_is_an_error(cifar, tmp_path, empty_cache):
    write_imagefolder(tmp_path / "imgs", cifar, {"cat": 3, "dog": 3})
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}", progress=False)
    assert_one_line(exc, "broken.png", "not a readable image")


# --- CIFAR-10 original pickle layout and download --------------------------------------------------

def write_pickle_layout(folder: Path, cifar: Dataset, per_batch: int = 4) -> None:
    """Write data_batch_1..5 and test_batch in the original format from real CIFAR images."""
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": slice((i - 1) * per_batch, i * per_batch) for i in range(1, 6)}
    for name, rows in batches.items():
        write_batch(folder / name, cifar.train_x[rows], cifar.train_y[rows])
    write_batch(folder / "test_batch", cifar.test_x[:per_batch], cifar.test_y[:per_batch])


def write_batch(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """One batch as CIFAR pickles it: b'data' (N, 3072) uint8 rows of CHW pixels, b'labels' list."""
    batch = {b"batch_label": b"test", b"data": x.transpose(0, 3, 1, 2).reshape(len(x), 3072).copy(),
             b"labels": [int(v) for v in y]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def test_pickle_layout_under_data_dir_is_read(cifar, tmp_path):
    write_pickle_layout(tmp_path / "cifar-10-batches-py", cifar)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert np.array_equal(ds.train_x, cifar.train_x[:20])
    assert np.array_equal(ds.train_y, cifar.train_y[:20])
    assert np.array_equal(ds.test_x, cifar.test_x[:4]) and ds.test_y.dtype == np.int64
    assert "original python batches" in ds.source


def test_pickle_layout_folder_itself_can_be_data_dir(cifar, tmp_path):
    write_pickle_layout(tmp_path / "batches", cifar)
    ds = load_dataset("cifar10", data_dir=tmp_path / "batches")
    assert ds.train_y.tolist() == cifar.train_y[:20].tolist()


def test_pickle_layout_missing_files_names_folder_and_expected_files(tmp_path):
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", data_dir=tmp_path)
    assert_one_line(exc, str(tmp_path), "data_batch_1", "test_batch")


def test_pickle_batch_that_is_not_a_pickle_is_an_error(cifar, tmp_path):
    write_pickle_layout(tmp_path / "cifar-10-batches-py", cifar)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", data_dir=tmp_path)
    assert_one_line(exc, "data_batch_3")


def test_download_offline_says_it_failed_and_where_to_put_files(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", data_dir=tmp_path / "dl", download=True, progress=False)
    assert_one_line(exc, "download", data.CIFAR10_URL, str(tmp_path / "dl"), "cifar-10-python.tar.gz")
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_with_wrong_md5_is_rejected_and_not_kept(tmp_path, monkeypatch):
    class FakeResponse(io.BytesIO):
        headers = {"Content-Length": "11"}

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"wrong bytes"))
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", data_dir=tmp_path, download=True, progress=False)
    assert_one_line(exc, data.CIFAR10_TARBALL_MD5)
    assert list(tmp_path.iterdir()) == []


# --- Fashion-MNIST ------------------------------------------------------------------------------------

FASHION_DIR = data.FASHION_MNIST_DEFAULT_DIR


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_is_grey_repeated_to_three_channels_in_original_order():
    ds = load_dataset("fashion-mnist")
    assert ds.train_x.shape == (60000, 28, 28, 3) and ds.test_x.shape == (10000, 28, 28, 3)
    assert np.array_equal(ds.train_x[..., 0], ds.train_x[..., 2])
    assert ds.train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(ds.train_y).tolist() == [6000] * 10


def test_fashion_mnist_missing_files_names_expected_files(tmp_path):
    with pytest.raises(NasError) as exc:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert_one_line(exc, str(tmp_path), "train-images-idx3-ubyte.gz")


# --- specs and arguments ----------------------------------------------------------------------------

def test_unknown_spec_lists_known_names():
    with pytest.raises(NasError) as exc:
        load_dataset("imagenet")
    assert_one_line(exc, "imagenet", *dataset_names())


def test_download_for_other_than_cifar10_is_an_error(tmp_path):
    with pytest.raises(NasError) as exc:
        load_dataset("fashion-mnist", data_dir=tmp_path, download=True)
    assert_one_line(exc, "download", "fashion-mnist", "only cifar10")


def test_data_dir_with_imagefolder_is_an_error(tmp_path):
    with pytest.raises(NasError) as exc:
        load_dataset(f"imagefolder:{tmp_path}", data_dir=tmp_path)
    assert_one_line(exc, "data_dir", "imagefolder:PATH")


def test_dataset_names_lists_every_loader():
    assert dataset_names() == ["cifar10", "fashion-mnist", "imagefolder:PATH"]


@pytest.mark.parametrize("size", [0, 3, 5000, 32.0, True])
def test_bad_image_size_is_an_error(size):
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", image_size=size)
    assert_one_line(exc, "image_size", repr(size))


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_an_error(seed):
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", seed=seed)
    assert_one_line(exc, "seed", repr(seed))
