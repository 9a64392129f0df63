"""nas.data.split: validation sets carved out of the training images only."""

import dataclasses

import numpy as np
import pytest

from nas.data import Dataset, train_val_split
from nas.errors import NasError
from conftest import assert_one_line


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
