"""nas.data.fashion_mnist: the idx files (the Debian package, when installed)."""

import numpy as np
import pytest

from nas import data
from nas.data import load_dataset
from nas.errors import NasError
from conftest import assert_one_line


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
