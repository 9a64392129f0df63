import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from nas.arch import (arch_from_dict, arch_to_dict, dumps_arch, load_arch, loads_arch, make_divisible,
                      save_arch)
from nas.baselines import baseline_names, load_baseline
from nas.errors import NasError
from nas.paths import BASELINES
from nas.space import load_space, random_arch


def v3_large_dict():
    return json.loads((BASELINES / "mobilenet_v3_large.json").read_text())


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_baseline_file_round_trips_byte_for_byte(name):
    text = (BASELINES / f"{name}.json").read_text()
    assert dumps_arch(loads_arch(text)) == text


def test_baselines_are_the_four_mobilenets():
    assert baseline_names() == ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_random_space_arch_round_trips_through_json(seed):
    arch = random_arch(load_space(), random.Random(seed))
    assert loads_arch(dumps_arch(arch)) == arch
    assert arch_to_dict(arch_from_dict(arch_to_dict(arch))) == arch_to_dict(arch)


def test_save_then_load_gives_the_same_arch(tmp_path):
    arch = load_baseline("mobilenet_v1")
    assert load_arch(save_arch(arch, tmp_path / "a.json")) == arch


def test_ds_block_without_exp_and_se_round_trips():
    arch = load_baseline("mobilenet_v1")
    assert "exp" not in arch_to_dict(arch)["blocks"][0]
    assert arch.blocks[0].exp is None


@pytest.mark.parametrize("value,expected", [(16, 16), (20, 24), (3.5, 8), (91, 88), (83, 80), (12, 16), (72 * 0.75, 56)])
def test_make_divisible_rounds_to_nearest_multiple_of_8_within_90_percent(value, expected):
    assert make_divisible(value, 8) == expected


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["blocks"][0].update(kernel=4), "blocks[0].kernel"),
    (lambda d: d["blocks"][1].update(stride=3), "blocks[1].stride"),
    (lambda d: d["blocks"][2].update(out=0), "blocks[2].out"),
    (lambda d: d["blocks"][2].update(exp="72"), "blocks[2].exp"),
    (lambda d: d["blocks"][0].update(act="gelu"), "blocks[0].act"),
    (lambda d: d["blocks"][0].update(se="yes"), "blocks[0].se"),
    (lambda d: d["blocks"][0].update(colour=1), "blocks[0].colour"),
    (lambda d: d.update(depth=3), "arch.depth"),
    (lambda d: d.update(resolution=-1), "resolution"),
    (lambda d: d.update(width_mult=0), "width_mult"),
    (lambda d: d["head"].update(dropout=1.5), "head.dropout"),
    (lambda d: d["stem"].update(out=True), "stem.out"),
    (lambda d: d["blocks"][0].pop("type"), "blocks[0].type"),
    (lambda d: d.update(blocks=[]), "blocks"),
])
def test_bad_field_is_named_in_one_line(mutate, field):
    d = v3_large_dict()
    mutate(d)
    with pytest.raises(NasError) as e:
        arch_from_dict(d)
    message = str(e.value)
    assert message.startswith(field) and "\n" not in message


def test_ds_block_with_exp_other_than_input_is_rejected():
    d = json.loads((BASELINES / "mobilenet_v1.json").read_text())
    d["blocks"][0]["exp"] = 64
    with pytest.raises(NasError, match=r"blocks\[0\]\.exp: 64 .*input channels \(32\)"):
        arch_from_dict(d)


def test_malformed_json_names_line_and_column():
    with pytest.raises(NasError, match="malformed JSON at line 1 column"):
        loads_arch('{"name": ')


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(NasError, match="no such architecture file"):
        load_arch(tmp_path / "nope.json")


def test_overrides_set_alpha_and_rho_without_touching_the_original():
    arch = load_baseline("mobilenet_v2")
    small = arch.with_overrides(width=0.75, resolution=160)
    assert (small.width_mult, small.resolution) == (0.75, 160)
    assert (arch.width_mult, arch.resolution) == (1.0, 224)


def test_width_mult_scales_every_channel_count():
    layers = load_baseline("mobilenet_v3_large").with_overrides(width=0.5).layers()
    assert layers[0].cout == 8  # stem 16 -> 8
    assert layers[1].exp == 8 and layers[-3].cout == 480 and layers[-2].cout == 640


def test_layer_key_is_canonical():
    layer = load_baseline("mobilenet_v3_large").layers()[4]
    assert layer.key == "ir-56x56x24-e72-o40-k5-s2-se1-relu"


# ---------------------------------------------------------------- block options (issue 34)

def _with_options(**block_fields):
    d = v3_large_dict()
    d["blocks"][3].update(block_fields)  # ir 24 -> 40, exp 72, se true, stride 2
    return d


def test_a_block_without_the_new_fields_keeps_mobilenet_v3s_meaning():
    arch = load_baseline("mobilenet_v3_large")
    b = arch.blocks[3]
    assert (b.se_base, b.se_ratio, b.se_round, b.se_act, b.se_gate, b.expand_conv, b.residual) == (None,) * 7
    layer = arch.layers()[4]
    assert (layer.squeeze, layer.se_act, layer.se_gate, layer.expand_conv, layer.skip) == (
        make_divisible(72 // 4, 8), "relu", "hsigmoid", False, True)


def test_every_new_field_round_trips_byte_for_byte():
    d = _with_options(se_base="in", se_ratio=0.5, se_round="floor", se_act="swish", se_gate="sigmoid")
    d["blocks"][0].update(expand_conv=True, residual=False)
    d["head"]["hidden_bias"] = False
    d["blocks"][1]["act"] = "swish"
    text = dumps_arch(arch_from_dict(d))
    assert dumps_arch(loads_arch(text)) == text
    assert '"se_base": "in"' in text and '"hidden_bias": false' in text and '"residual": false' in text


@pytest.mark.parametrize("base,ratio,rounding,expected", [
    (None, None, None, 24),          # exp 72: make_divisible(72 // 4, 8)
    ("in", None, "round", 6),        # input 24: round(24 * 0.25)
    ("in", None, None, 8),           # make_divisible(6, 8)
    (None, 0.1, "floor", 7),         # int(72 * 0.1)
    (None, 0.1, "round", 7),         # round(7.2)
    (None, 0.5, None, 40),           # make_divisible(36, 8)
])
def test_se_width_follows_base_ratio_and_rounding(base, ratio, rounding, expected):
    fields = {k: v for k, v in (("se_base", base), ("se_ratio", ratio), ("se_round", rounding)) if v is not None}
    assert arch_from_dict(_with_options(**fields)).layers()[4].squeeze == expected


@pytest.mark.parametrize("fields,where", [
    ({"se_base": "mid"}, "blocks[3].se_base"), ({"se_ratio": 0}, "blocks[3].se_ratio"),
    ({"se_ratio": 1.5}, "blocks[3].se_ratio"), ({"se_ratio": True}, "blocks[3].se_ratio"),
    ({"se_round": "ceil"}, "blocks[3].se_round"), ({"se_act": "tanh"}, "blocks[3].se_act"),
    ({"se_gate": "relu"}, "blocks[3].se_gate"), ({"expand_conv": True}, "blocks[3].expand_conv"),
    ({"expand_conv": 1}, "blocks[3].expand_conv"), ({"residual": True}, "blocks[3].residual"),
    ({"act": "mish"}, "blocks[3].act"),
])
def test_bad_block_option_is_named(fields, where):
    with pytest.raises(NasError, match=where.replace("[", r"\[").replace("]", r"\]")):
        arch_from_dict(_with_options(**fields))


def test_block_options_are_refused_on_a_v1_block():
    d = json.loads((BASELINES / "mobilenet_v1.json").read_text())
    d["blocks"][0]["residual"] = False
    with pytest.raises(NasError, match=r"blocks\[0\].residual: not allowed on a \"ds\" block"):
        arch_from_dict(d)


def test_head_hidden_bias_must_be_a_bool():
    d = v3_large_dict()
    d["head"]["hidden_bias"] = "no"
    with pytest.raises(NasError, match="head.hidden_bias"):
        arch_from_dict(d)


def test_expand_conv_and_residual_reach_the_resolved_layer():
    d = v3_large_dict()
    d["blocks"][0].update(expand_conv=True, residual=False)
    layer = arch_from_dict(d).layers()[1]
    assert layer.has_expand and not layer.residual


_BLOCK_OPTION_VALUES = st.fixed_dictionaries({}, optional={
    "se_base": st.sampled_from(["exp", "in"]), "se_ratio": st.sampled_from([0.125, 0.25, 0.5, 1]),
    "se_round": st.sampled_from(["divisible", "round", "floor"]),
    "se_act": st.sampled_from(["relu", "relu6", "hswish", "swish"]),
    "se_gate": st.sampled_from(["hsigmoid", "sigmoid"]), "residual": st.just(False),
    "groups": st.sampled_from([1, 2, 4, 8]), "bias": st.booleans(),
    "act": st.sampled_from(["relu", "hswish", "swish"])})


@settings(max_examples=40, deadline=None)
@given(st.lists(_BLOCK_OPTION_VALUES, min_size=15, max_size=15), st.sampled_from([None, True, False]))
def test_random_block_options_round_trip_through_json(options, hidden_bias):
    d = v3_large_dict()
    for block, extra in zip(d["blocks"], options):
        block.update(extra)
    if hidden_bias is not None:
        d["head"]["hidden_bias"] = hidden_bias
    arch = arch_from_dict(d)
    text = dumps_arch(arch)
    assert loads_arch(text) == arch and dumps_arch(loads_arch(text)) == text


# ---------------------------------------------------------------- FBNet's options: groups, conv biases

def test_fbnet_options_left_out_keep_todays_meaning():
    arch = load_baseline("mobilenet_v3_large")
    assert (arch.stem.bias, arch.blocks[3].groups, arch.blocks[3].bias, arch.head.conv_bias) == (None,) * 4
    assert all(l.groups == 1 and not l.conv_bias for l in arch.layers())


def test_groups_and_biases_round_trip_byte_for_byte():
    d = v3_large_dict()
    d["blocks"][1].update(groups=2, bias=True)  # ir 16 -> 24, exp 64
    d["stem"]["bias"] = True
    d["head"]["conv_bias"] = True
    text = dumps_arch(arch_from_dict(d))
    assert dumps_arch(loads_arch(text)) == text
    assert '"groups": 2, "bias": true' in text and '"act": "hswish", "bias": true}' in text
    assert '"conv_bias": true' in text
    layers = loads_arch(text).layers()
    head_conv = next(l for l in layers if l.kind == "conv")
    assert (layers[0].conv_bias, layers[2].groups, layers[2].conv_bias, head_conv.conv_bias) == (True, 2, True, True)


@pytest.mark.parametrize("fields,message", [
    ({"groups": 0}, r"blocks\[3\]\.groups: 0 is not allowed"),
    ({"groups": 5}, r"blocks\[3\]\.groups: 5 .*input channels do not divide"),
    ({"groups": 2.0}, r"blocks\[3\]\.groups"),
    ({"groups": 3}, r"blocks\[3\]\.groups: 3 .*output channels do not divide"),
    ({"groups": 65}, r"blocks\[3\]\.groups: 65 is not allowed; expected an integer from 1 to 64"),
    ({"bias": "yes"}, r"blocks\[3\]\.bias"),
])
def test_bad_groups_or_bias_is_named(fields, message):
    with pytest.raises(NasError, match=message):
        arch_from_dict(_with_options(**fields))


def test_groups_are_refused_on_a_v1_block_and_when_the_width_breaks_them():
    d = json.loads((BASELINES / "mobilenet_v1.json").read_text())
    d["blocks"][0]["groups"] = 2
    with pytest.raises(NasError, match=r"blocks\[0\].groups: not allowed on a \"ds\" block"):
        arch_from_dict(d)
    d = v3_large_dict()
    d["blocks"][13]["groups"] = 16  # 160 -> 160 with exp 960; at 0.75: 120, 720, 120
    with pytest.raises(NasError, match=r"blocks\[13\]\.groups: 16 is not allowed at width_mult 0.75"):
        arch_from_dict(d).with_overrides(width=0.75)


def test_stem_and_head_biases_must_be_bools():
    for part, key in (("stem", "bias"), ("head", "conv_bias")):
        d = v3_large_dict()
        d[part][key] = 1
        with pytest.raises(NasError, match=f"{part}.{key}"):
            arch_from_dict(d)
