"""The one .pt writer: what it stores, that nas.load and load_checkpoint read it, and that a
failed write leaves nothing behind."""

import pytest
import torch

import nas
from nas.arch import arch_to_dict
from nas.baselines import load_baseline
from nas.builder import build
from nas.checkpoint import save_checkpoint
from nas.errors import NasError
from nas.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def small():
    return load_baseline("mobilenet_v3_small").with_overrides(width=0.35, resolution=96)


def test_a_checkpoint_holds_the_arch_dicts_weights_and_fields(tmp_path, small):
    model = build(small)
    path = save_checkpoint(tmp_path / "c.pt", small, model.state_dict(), proxy_arch=small, accuracy=0.5, trial=3)
    data = torch.load(path, weights_only=True)
    assert data["arch"] == data["proxy_arch"] == arch_to_dict(small)
    assert data["accuracy"] == 0.5 and data["trial"] == 3
    assert load_checkpoint(path).trial == 3
    reloaded = nas.load(path)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))


def test_a_write_that_fails_leaves_no_file(tmp_path, small):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(NasError):
        save_checkpoint(tmp_path / "checkpoints" / "c.pt", small, build(small).state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoints"]


def test_the_input_normalisation_round_trips_and_older_checkpoints_have_none(tmp_path, small):
    norm = {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}
    state = build(small).state_dict()
    with_norm = save_checkpoint(tmp_path / "a.pt", small, state, proxy_arch=small, normalisation=norm)
    older = save_checkpoint(tmp_path / "b.pt", small, state, proxy_arch=small)
    bad = save_checkpoint(tmp_path / "c.pt", small, state, proxy_arch=small, normalisation={"mean": [1, 2]})
    assert load_checkpoint(with_norm).normalisation == norm
    assert load_checkpoint(older).normalisation is None and load_checkpoint(bad).normalisation is None


def test_a_trained_model_comes_with_the_normalisation_of_its_training_data(v3_small):
    from nas.recipe import load_recipe
    from nas.train import train_arch

    result = train_arch(v3_small, load_recipe(train_subset=256, val_size=200, epochs=1, batch_size=64))
    mean, std = result.normalisation["mean"], result.normalisation["std"]
    assert len(mean) == len(std) == 3
    assert all(0.3 < m < 0.6 for m in mean) and all(0.15 < s < 0.35 for s in std)  # CIFAR-10's
