"""What the supernet tests share: a toy space of three stages (and its file), the smallest recipe
that trains a supernet, random weights. A module of its own, not a conftest.py: the tests of
tests/ import their conftest by name."""

import pytest
import torch

from nas.recipe import load_recipe

TOY_SPACE = """\
name: toy
num_classes: 10
resolution: [192, 224]
width_mult: [0.5, 1.0]
stem: {out: 8, kernel: 3, stride: 2, act: hswish}
block: {kernel: [3, 5], expand: [1, 3], se: [false, true], act: [relu, hswish]}
stages:
  - {stride: 1, depth: [1], width: [8], expand: [1], se: [false]}
  - {stride: 2, depth: [1, 2], width: [8, 16]}
  - {stride: 1, depth: [1, 2], width: [16, 24]}
head: {conv_ratio: 4, hidden: [32, 64], act: hswish, dropout: 0.2}
"""

# A supernet epoch of a second: 128 images in 4 steps, sides 14 and 16 px.
TINY = dict(train_subset=128, val_size=64, bn_recalibrate=64, image_size=16, epochs=1, batch_size=32,
            eval_batch_size=64, device="cpu", threads=1)


@pytest.fixture
def toy_space_file(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(TOY_SPACE)
    return path


@pytest.fixture
def tiny_recipe():
    return load_recipe(**TINY)


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Every weight and BatchNorm statistic drawn at random (running variances positive), so that
    a slice taken from the wrong place shows in the logits."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if t.is_floating_point():
                values = torch.rand(t.shape, generator=gen) + 0.5 if "running_var" in name else \
                    torch.randn(t.shape, generator=gen) * 0.3
                t.copy_(values)
