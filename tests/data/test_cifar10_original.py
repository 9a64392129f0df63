"""nas.data.cifar10_original: the python pickle layout (built here from real CIFAR images) and
the download."""

import io
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nas import data
from nas.data import Dataset, load_dataset
from nas.errors import NasError
from conftest import assert_one_line


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
