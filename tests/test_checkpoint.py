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
from nas.rundir import load_checkpoint


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
