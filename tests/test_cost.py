import random

import pytest
import torch
from torch import nn

from nas.baselines import load_baseline
from nas.builder import build
from nas.cost import arch_cost
from nas.space import load_space, random_arch

PUBLISHED = {  # parameters, multiply-adds in millions (one decimal)
    "mobilenet_v1": (4_231_976, 568.7),
    "mobilenet_v2": (3_504_872, 300.8),
    "mobilenet_v3_large": (5_483_032, 216.6),
    "mobilenet_v3_small": (2_542_856, 56.5),
}


def hook_madds(model: nn.Module, resolution: int) -> int:
    """Multiply-adds of conv and linear layers measured on a forward pass."""
    total = 0

    def on_forward(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += k * (module.in_channels // module.groups) * output.numel()
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(on_forward) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", PUBLISHED)
def test_baseline_has_published_params_and_madds(name):
    params, madds = PUBLISHED[name]
    cost = arch_cost(load_baseline(name))
    assert cost.params == params
    assert round(cost.madds / 1e6, 1) == madds


@pytest.mark.parametrize("name", PUBLISHED)
def test_analytic_params_match_the_built_module(name):
    arch = load_baseline(name).with_overrides(width=0.75, resolution=160)
    assert arch_cost(arch).params == sum(p.numel() for p in build(arch).parameters())


@pytest.mark.parametrize("seed", range(6))
def test_analytic_madds_match_forward_hooks_on_random_architectures(seed):
    arch = random_arch(load_space(), random.Random(seed)).with_overrides(resolution=96)
    model = build(arch)
    assert arch_cost(arch).madds == hook_madds(model, arch.resolution)
    assert arch_cost(arch).params == sum(p.numel() for p in model.parameters())


def test_width_and_resolution_shrink_cost():
    full = arch_cost(load_baseline("mobilenet_v3_large"))
    small = arch_cost(load_baseline("mobilenet_v3_large").with_overrides(width=0.75, resolution=160))
    assert small.madds < full.madds / 2 and small.params < full.params
