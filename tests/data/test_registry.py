"""nas.data.registry: which specs `load_dataset` accepts and which arguments go with them."""

import pytest

from nas.data import dataset_names, load_dataset
from nas.errors import NasError
from conftest import assert_one_line


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
