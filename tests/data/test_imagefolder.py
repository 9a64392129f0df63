"""nas.data.imagefolder: a folder per class, built here from real CIFAR images."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.data import Dataset, imagefolder, load_dataset
from nas.errors import NasError
from conftest import assert_one_line


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
    real_decode = imagefolder._decode_images
    monkeypatch.setattr(imagefolder, "_decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert "read from cache" in load_dataset(spec, progress=False).source
    Image.fromarray(cifar.test_x[0]).save(tmp_path / "imgs" / "dog" / "new.png")
    monkeypatch.setattr(imagefolder, "_decode_images", real_decode)
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
