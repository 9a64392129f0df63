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
    ("ir_r1_k3_s1_e1_c16_se0.5", "se0.5"),
    ("ir_r1_k3_s1_e1", "c is missing"),
])
def test_bad_block_string_is_a_clear_error(text, message):
    with pytest.raises(NasError, match=message):
        resolve_arch(text) if text.startswith("xx") else decode_blocks(text, 16)
