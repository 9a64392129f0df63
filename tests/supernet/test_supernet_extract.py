"""nas.supernet.extract and plan: the standalone subnet is exactly the supernet run as that subnet."""

import random
from dataclasses import replace

import pytest
import torch

from nas.baselines import load_baseline
from nas.builder import MobileNet
from nas.errors import NasError
from nas.recipe import load_recipe, proxy_arch
from nas.space import largest_arch, load_space, random_arch, sample_arch, smallest_arch
from nas.supernet import build_supernet, extract
from supernet_toy import randomize, tiny_recipe, toy_space_file  # noqa: F401 (fixtures)


def _same_logits(net, arch, seed=0):
    x = torch.randn(3, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = net.eval()(x, arch)
        got = extract(net, arch)(x)
    return torch.allclose(got, expected, rtol=1e-4, atol=1e-5) and expected.std() > 1e-3


def test_extracted_subnets_give_the_supernets_logits_across_the_toy_space(toy_space_file, tiny_recipe):
    space = load_space(toy_space_file)
    net = build_supernet(space, tiny_recipe, 10)
    randomize(net)
    rng = random.Random(0)
    archs = [largest_arch(space), smallest_arch(space)] + [random_arch(space, rng) for _ in range(12)]
    for arch in archs:
        assert _same_logits(net, proxy_arch(arch, tiny_recipe, 10)), arch


def test_extracted_subnets_of_the_shipped_space_and_mobilenet_v3_give_the_supernets_logits():
    recipe = load_recipe(device="cpu")
    space = load_space()
    net = build_supernet(space, recipe, 10)
    randomize(net)
    rng = random.Random(1)
    archs = [random_arch(space, rng) for _ in range(2)] + [load_baseline("mobilenet_v3_large")]
    for arch in archs:
        proxy = proxy_arch(arch, recipe, 10)
        assert _same_logits(net, proxy), arch.name


def test_the_extracted_subnet_is_the_network_the_builder_makes(toy_space_file, tiny_recipe):
    space = load_space(toy_space_file)
    arch = proxy_arch(random_arch(space, random.Random(2)), tiny_recipe, 10)
    model = extract(build_supernet(space, tiny_recipe, 10), arch)
    assert isinstance(model, MobileNet) and model.arch == arch and not model.training


def test_equal_width_stride_1_stages_split_with_the_earlier_stage_deepest(toy_space_file, tiny_recipe):
    space = load_space(toy_space_file)
    net = build_supernet(space, tiny_recipe, 10)
    picks = {"s1_depth": 1, "s1_width": 16, "s2_depth": 2, "s2_width": 16}
    arch = sample_arch(space, lambda name, choices: picks.get(name, min(choices)))
    plan = net.plan(proxy_arch(arch, tiny_recipe, 10))
    assert [len(stage) for stage in plan.stages] == [1, 2, 1]  # not the [1, 1, 2] it was sampled as


@pytest.mark.parametrize("change, message", [
    (lambda a: replace(a, blocks=a.blocks[:1]), "do not split into this supernet's stages"),
    (lambda a: replace(a, blocks=(a.blocks[0], replace(a.blocks[1], kernel=7), *a.blocks[2:])), "kernel 7"),
    (lambda a: replace(a, blocks=(*a.blocks[:-1], replace(a.blocks[-1], exp=512))), "expanded channels"),
    (lambda a: replace(a, num_classes=100), "100 classes"),
])
def test_a_network_that_is_not_a_subnet_is_refused_with_one_line(toy_space_file, tiny_recipe, change, message):
    space = load_space(toy_space_file)
    net = build_supernet(space, tiny_recipe, 10)
    arch = change(proxy_arch(largest_arch(space), tiny_recipe, 10))
    with pytest.raises(NasError, match=message) as e:
        net(torch.zeros(1, 3, 16, 16), arch)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name,message", [("fbnet_a", r"blocks\[8\]\.groups: 2 is not allowed in a supernet"),
                                          ("fbnet_b", r"a conv bias \(stem op 0\) is not allowed in a supernet")])
def test_fbnet_shuffle_blocks_and_conv_biases_are_refused_by_the_supernet(name, message):
    from nas.baselines import load_reference
    from nas.supernet.plan import split_layers
    with pytest.raises(NasError, match=message):
        split_layers(load_reference(name))
