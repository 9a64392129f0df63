"""The recipe as data (nas.recipe): the default file, overrides, validation, and how a 224-px
architecture is adapted to the proxy's images."""

import random
from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.errors import NasError
from nas.recipe import (DEFAULT_RECIPE, Recipe, knob_names, load_recipe, proxy_arch, proxy_side,
                        recipe_to_dict)
from nas.space import load_space, random_arch


# ---------------------------------------------------------------- recipe

def test_default_recipe_file_holds_every_knob():
    data = yaml.safe_load(DEFAULT_RECIPE.read_text())
    assert set(data) == set(knob_names())
    assert recipe_to_dict(load_recipe()) == data


def test_knobs_a_file_leaves_out_take_the_default_recipes_values():
    assert Recipe() == load_recipe()


def test_override_changes_only_that_knob():
    base, changed = load_recipe(), load_recipe(epochs=7, seed=3)
    assert (changed.epochs, changed.seed) == (7, 3)
    assert replace(changed, epochs=base.epochs, seed=base.seed) == base


def test_none_override_keeps_the_file_value():
    assert load_recipe(epochs=None) == load_recipe()


def test_recipe_dict_round_trips_through_yaml(tmp_path):
    r = load_recipe(lr=0.05, optimizer="adamw", channels_last=False)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe_to_dict(r)))
    assert load_recipe(path) == r


def test_unknown_knob_in_file_names_it(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(NasError, match="epoch: unknown recipe knob"):
        load_recipe(path)


def test_unknown_override_is_rejected():
    with pytest.raises(NasError, match="learning_rate: unknown recipe knob"):
        load_recipe(learning_rate=0.1)


@pytest.mark.parametrize("knob,value", [("lr", -1.0), ("lr", 0), ("optimizer", "rmsprop"),
                                        ("momentum", 1.0), ("epochs", 0), ("epochs", 2.5),
                                        ("channels_last", "yes"), ("image_size", 4),
                                        ("augment", "mixup"), ("warmup", float("nan"))])
def test_bad_value_names_knob_and_value(knob, value):
    with pytest.raises(NasError, match=f"{knob}: .* is not allowed"):
        load_recipe(**{knob: value})


def test_missing_and_malformed_files_raise_nas_error(tmp_path):
    with pytest.raises(NasError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [3\n")
    with pytest.raises(NasError, match="malformed YAML"):
        load_recipe(bad)


# ---------------------------------------------------------------- proxy adaptation

def _strides(arch):
    return [arch.stem.stride] + [b.stride for b in arch.blocks]


def test_proxy_arch_is_a_new_arch_and_leaves_the_original(v3_small):
    before = v3_small
    p = proxy_arch(v3_small, load_recipe(image_size=32, relax_strides=2), num_classes=10)
    assert v3_small == before and v3_small.resolution == 224 and v3_small.stem.stride == 2
    assert (p.resolution, p.num_classes, p.width_mult) == (32, 10, v3_small.width_mult)
    assert _strides(p)[:3] == [1, 1, 2]  # stem and the first block relaxed


def test_proxy_arch_keeps_everything_latency_depends_on_but_strides(v3_small):
    p = proxy_arch(v3_small, load_recipe(relax_strides=1), num_classes=10)
    strip = lambda a: [replace(b, stride=0) for b in a.blocks]
    assert strip(p) == strip(v3_small)
    assert replace(p.stem, stride=2) == v3_small.stem and p.head == v3_small.head


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), relax=st.integers(0, 8))
def test_relax_strides_turns_the_first_k_stride_two_ops_into_stride_one(seed, relax):
    arch = random_arch(load_space(), random.Random(seed))
    p = proxy_arch(arch, load_recipe(relax_strides=relax), num_classes=10)
    before, after = _strides(arch), _strides(p)
    twos = [i for i, s in enumerate(before) if s == 2]
    assert [i for i, s in enumerate(after) if s == 2] == twos[relax:]


@pytest.mark.parametrize("rho,side", [(224, 32), (256, 37), (192, 27), (160, 23), (128, 18), (96, 14), (32, 8)])
def test_resolution_aware_side_is_proportional_to_rho(v3_small, rho, side):
    arch = replace(v3_small, resolution=rho)
    assert proxy_side(arch, load_recipe(image_size=32, resolution_aware=True)) == side
    assert proxy_arch(arch, load_recipe(image_size=32, resolution_aware=True), 10).resolution == side
    assert proxy_side(arch, load_recipe(image_size=32, resolution_aware=False)) == 32


