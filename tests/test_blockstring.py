import random

import pytest
from hypothesis import given, settings, strategies as st

from nas.baselines import baseline_names, load_baseline
from nas.blockstring import decode_blocks, encode_blocks
from nas.cost import arch_cost
from nas.errors import NasError
from nas.resolve import resolve_arch
from nas.space import load_space, random_arch

TIMM_V3_LARGE = ("ds_r1_k3_s1_e1_c16_nre ir_r1_k3_s2_e4_c24_nre ir_r1_k3_s1_e3_c24_nre "
                 "ir_r3_k5_s2_e3_c40_se0.25_nre ir_r1_k3_s2_e6_c80 ir_r1_k3_s1_e2.5_c80 "
                 "ir_r2_k3_s1_e2.3_c80 ir_r2_k3_s1_e6_c112_se0.25 ir_r3_k5_s2_e6_c160_se0.25")


def test_timm_v3_large_arch_def_decodes_to_our_baseline():
    assert decode_blocks(TIMM_V3_LARGE, 16) == load_baseline("mobilenet_v3_large").blocks


def test_pasted_block_string_resolves_to_a_full_network():
    assert arch_cost(resolve_arch(TIMM_V3_LARGE)).params == 5_483_032


@pytest.mark.parametrize("name", baseline_names())
def test_baseline_blocks_round_trip_through_the_string(name):
    arch = load_baseline(name)
    assert decode_blocks(encode_blocks(arch.blocks, arch.stem.out), arch.stem.out) == arch.blocks


def test_repeats_are_merged():
    arch = load_baseline("mobilenet_v1")
    assert "dsa_r6_k3_s2_c512_nre" in encode_blocks(arch.blocks, arch.stem.out)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_random_arch_blocks_round_trip(seed):
    arch = random_arch(load_space(), random.Random(seed))
    assert decode_blocks(encode_blocks(arch.blocks, 16), 16) == arch.blocks


@pytest.mark.parametrize("text,message", [
    ("xx_r1_k3_c16", "is neither"),
    ("ir_r1_k3_s1_e1_c16_nzz", "activation nzz"),
    ("ir_r1_k3_s1_e1_c16_se1.5", "se1.5"),
    ("ir_r1_k3_s1_e6_c16_sein", "needs a squeeze-excite"),
    ("dsa_r1_k3_s1_c16_noskip", "not allowed on a dsa block"),
    ("ir_r1_k3_s1_e6_c16_se0.25_sernd_seflr", "sernd and seflr both set se_round"),
    ("ir_r1_k3_s1_e1", "c is missing"),
])
def test_bad_block_string_is_a_clear_error(text, message):
    with pytest.raises(NasError, match=message):
        resolve_arch(text) if text.startswith("xx") else decode_blocks(text, 16)


# ---------------------------------------------------------------- timm tokens and our SE tokens

def test_timm_ir_e1_keeps_its_expansion_conv_and_ds_does_not():
    ir, ds = decode_blocks("ir_r1_k3_s1_e1_c16_nre", 16)[0], decode_blocks("ds_r1_k3_s1_e1_c16_nre", 16)[0]
    assert ir.exp == ds.exp == 16
    assert ir.expand_conv is True and ds.expand_conv is None


def test_swish_and_noskip_are_timms_tokens():
    b = decode_blocks("ds_r1_k3_s1_c16_noskip_nsw", 16)[0]
    assert (b.act, b.residual) == ("swish", False)


def test_se_tokens_set_the_block_fields():
    b = decode_blocks("ir_r1_k5_s2_e6_c40_se0.25_sein_seflr_sahs_sgsig", 24)[0]
    assert (b.se, b.se_base, b.se_round, b.se_act, b.se_gate, b.se_ratio) == (True, "in", "floor", "hswish",
                                                                              "sigmoid", None)
    assert decode_blocks("ir_r1_k5_s2_e6_c40_se0.5", 24)[0].se_ratio == 0.5


def test_timms_fbnetc_arch_def_gives_its_param_count():
    from nas.arch import Arch, Head, Stem
    text = ("ir_r1_k3_s1_e1_c16 ir_r1_k3_s2_e6_c24 ir_r2_k3_s1_e1_c24 ir_r1_k5_s2_e6_c32 ir_r1_k5_s1_e3_c32 "
            "ir_r1_k5_s1_e6_c32 ir_r1_k3_s1_e6_c32 ir_r1_k5_s2_e6_c64 ir_r1_k5_s1_e3_c64 ir_r2_k5_s1_e6_c64 "
            "ir_r3_k5_s1_e6_c112 ir_r1_k5_s1_e3_c112 ir_r4_k5_s2_e6_c184 ir_r1_k3_s1_e6_c352")
    arch = Arch("fbnetc", 224, 1.0, 1000, Stem(16, 3, 2, "relu"), decode_blocks(text, 16), Head(1984, None, "relu"))
    assert arch_cost(arch).params == 5_572_200  # timm fbnetc_100 (the activation costs no parameters)


_OPTIONS = st.fixed_dictionaries({}, optional={
    "se_base": st.sampled_from(["exp", "in"]), "se_ratio": st.sampled_from([0.125, 0.25, 0.5, 1]),
    "se_round": st.sampled_from(["divisible", "round", "floor"]),
    "se_act": st.sampled_from(["relu", "relu6", "hswish", "swish"]),
    "se_gate": st.sampled_from(["hsigmoid", "sigmoid"]), "residual": st.just(False)})


@settings(max_examples=40, deadline=None)
@given(st.lists(_OPTIONS, min_size=15, max_size=15), st.booleans())
def test_blocks_with_options_give_the_same_network_through_the_string(options, keep_first_conv):
    from dataclasses import replace
    arch = load_baseline("mobilenet_v3_large")
    blocks = [replace(b, se=True, **o) for b, o in zip(arch.blocks, options)]
    blocks[0] = replace(blocks[0], expand_conv=keep_first_conv or None)
    arch = replace(arch, blocks=tuple(blocks))
    back = replace(arch, blocks=decode_blocks(encode_blocks(arch.blocks, 16), 16))
    assert back.layers() == arch.layers()


# ---------------------------------------------------------------- FBNet's tokens: g<N>, bias

def test_group_and_bias_tokens_set_the_block_fields_and_round_trip():
    text = "ir_r1_k3_s2_e3_c24_bias_nre ds_r1_k5_s1_c24_g2_bias_nre ir_r1_k5_s1_e1_c24_g2_nre"
    blocks = decode_blocks(text, 16)
    assert [(b.groups, b.bias, b.expand_conv) for b in blocks] == [(None, True, None), (2, True, None),
                                                                   (2, None, True)]
    assert encode_blocks(blocks, 16) == text
    assert decode_blocks(encode_blocks(blocks, 16), 16) == blocks


@pytest.mark.parametrize("text,message", [
    ("dsa_r1_k3_s1_c16_g2", "g is not allowed on a dsa block"),
    ("dsa_r1_k3_s1_c16_bias", "bias is not allowed on a dsa block"),
    ("ds_r1_k3_s1_c24_g3_nre", "groups: 3 is not allowed"),
    ("ds_r1_k3_s1_c16_gx", "gx is not allowed"),
])
def test_bad_group_or_bias_token_is_a_clear_error(text, message):
    with pytest.raises(NasError, match=message):
        decode_blocks(text, 16)
