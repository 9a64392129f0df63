import pytest
import torch

from nas.baselines import baseline_names, load_baseline
from nas.builder import build


@pytest.mark.parametrize("name", baseline_names())
@pytest.mark.parametrize("width,resolution", [(1.0, 224), (0.75, 160), (0.5, 128), (1.25, 96)])
def test_every_baseline_builds_and_gives_logits(name, width, resolution):
    arch = load_baseline(name).with_overrides(width=width, resolution=resolution, num_classes=10)
    model = build(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, resolution, resolution))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_residual_only_where_stride_1_and_channels_match():
    model = build(load_baseline("mobilenet_v2"))
    flags = [b.residual for b in model.blocks]
    assert flags[:4] == [False, False, True, False]
    assert sum(flags) == 10


def test_no_expansion_conv_when_exp_equals_input():
    first = build(load_baseline("mobilenet_v3_large")).blocks[0]
    assert len(first.body) == 2  # depthwise + projection
