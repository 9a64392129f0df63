"""nas.data.cifar10_shipped: the JPEG copy in nas/_data/cifar10, decoded once into the cache.

The session cache (conftest `nas_cache`) holds the only full decode; every other test reads it.
"""

import shutil

import numpy as np
import pytest

from nas import data
from nas.data import cache, cifar10_shipped, load_dataset
from nas.errors import NasError
from conftest import assert_one_line


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


def test_cifar10_source_names_shipped_copy_and_cache(cifar, nas_cache):
    assert "\n" not in cifar.source
    assert "shipped JPEG copy" in cifar.source and data.SHIPPED_ARCHIVE_MD5 in cifar.source
    assert str(nas_cache) in cifar.source


def test_cifar10_cache_file_is_keyed_by_archive_md5_and_no_temp_files_remain(cifar, nas_cache):
    names = [p.name for p in nas_cache.iterdir()]
    assert f"cifar10-{data.SHIPPED_ARCHIVE_MD5}.npz" in names
    assert not [n for n in names if n.endswith(".tmp")]


def test_cifar10_second_load_reads_cache_without_decoding(cifar, nas_cache, monkeypatch):
    monkeypatch.setenv("NAS_CACHE_DIR", str(nas_cache))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache exists")

    monkeypatch.setattr(cifar10_shipped, "_decode_cifar10_jpeg", no_decoding)
    ds = load_dataset("cifar10", progress=False)
    assert ds.train_y[:10].tolist() == CIFAR_FIRST_TRAIN_LABELS
    assert "read from cache" in ds.source


def test_cifar10_archive_md5_mismatch_names_file_and_both_md5s(tmp_path, empty_cache, monkeypatch):
    damaged = tmp_path / "cifar10-jpeg.tar.gz"
    shutil.copyfile(cifar10_shipped._SHIPPED_ARCHIVE, damaged)
    with open(damaged, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(cifar10_shipped, "_SHIPPED_ARCHIVE", damaged)
    with pytest.raises(NasError) as exc:
        load_dataset("cifar10", progress=False)
    assert_one_line(exc, str(damaged), data.SHIPPED_ARCHIVE_MD5, cache.md5(damaged))


def test_cifar10_unreadable_cache_is_rebuilt(empty_cache, monkeypatch):
    empty_cache.mkdir()
    cache_file = empty_cache / f"cifar10-{data.SHIPPED_ARCHIVE_MD5}.npz"
    cache_file.write_bytes(b"half a zip file")
    tiny = {"train_x": np.zeros((2, 32, 32, 3), np.uint8), "train_y": np.array([0, 1]),
            "test_x": np.zeros((1, 32, 32, 3), np.uint8), "test_y": np.array([1])}
    monkeypatch.setattr(cifar10_shipped, "_decode_cifar10_jpeg", lambda *a, **k: tiny)
    ds = load_dataset("cifar10", progress=False)
    assert ds.train_y.tolist() == [0, 1]
    assert cache.load_npz(cache_file)["test_y"].tolist() == [1]
