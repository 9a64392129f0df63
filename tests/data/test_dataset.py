"""nas.data.dataset: the record, its argument checks and resizing."""

import dataclasses

import pytest

from nas.data import dataset, load_dataset
from nas.errors import NasError
from conftest import assert_one_line


def test_image_size_resizes_every_image(cifar):
    small = dataclasses.replace(cifar, train_x=cifar.train_x[:20], train_y=cifar.train_y[:20],
                                test_x=cifar.test_x[:10], test_y=cifar.test_y[:10])
    resized = dataset.resized(small, 24, progress=False)
    assert resized.train_x.shape == (20, 24, 24, 3) and resized.test_x.shape == (10, 24, 24, 3)
    assert "resized to 24x24" in resized.source


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
