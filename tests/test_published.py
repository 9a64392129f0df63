"""The published NAS networks of latency_tables/published_archs/ reproduce their sources to the
parameter (sources: latency_tables/published_archs/README.md)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nas.arch import dumps_arch
from nas.baselines import load_baseline, load_reference
from nas.blockstring import decode_blocks, encode_blocks
from nas.builder import build
from nas.cli import main
from nas.cost import arch_cost
from nas.paths import PUBLISHED_ARCHS
from nas.transforms import apply_variant, scale_like
from test_cost import hook_madds

# parameters as the source's own code builds them; multiply-adds in millions (one decimal), ours
PUBLISHED = {
    "mnasnet_a1": (3_887_038, 311.6),       # timm semnasnet_100
    "efficientnet_b0": (5_288_548, 385.8),  # timm efficientnet_b0
    "fbnet_c": (5_572_200, 385.0),          # timm fbnetc_100
    "moga_a": (5_159_802, 304.0),           # xiaomi-automl/MoGA models/MoGA_A.py
    "moga_b": (5_506_236, 248.6),
    "moga_c": (5_488_200, 221.1),
    "hardcorenas_a": (5_260_232, 224.2),    # timm hardcorenas_a .. _f
    "hardcorenas_b": (5_176_544, 251.8),
    "hardcorenas_c": (5_521_224, 270.1),
    "hardcorenas_d": (7_500_208, 287.8),
    "hardcorenas_e": (8_070_992, 338.7),
    "hardcorenas_f": (8_199_688, 341.9),
    "spnasnet": (4_421_616, 333.5),         # timm spnasnet_100
    "proxylessnas_cpu": (4_361_648, 439.2), # osmr/imgclsmob pytorchcv proxylessnas_cpu (its assert)
    "mobilenet_v3_large_minimalistic": (3_924_288, 209.1),  # timm tf_mobilenetv3_large_minimal_100
    "mobilenet_v3_small_minimalistic": (2_044_736, 52.3),   # timm tf_mobilenetv3_small_minimal_100
    "fbnet_a": (4_321_232, 244.5),          # facebookresearch/mobile-vision fbnet_a (its README: 244.5 MFLOPs)
    "fbnet_b": (4_818_216, 291.0),          # same, fbnet_b
    "ofa_note8_lat22": (4_304_592, 67.2),   # mit-han-lab/once-for-all OFAMobileNetV3, mmrazor's subnet choices
    "ofa_note8_lat31": (4_595_536, 100.5),
}
ALL = PUBLISHED
COUNT_SOURCES = Path(__file__).resolve().parents[1] / "experiments" / "published_archs" / "count_sources.py"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_network_has_its_sources_param_count(name):
    cost = arch_cost(load_reference(name))
    assert (cost.params, round(cost.madds / 1e6, 1)) == PUBLISHED[name]


def test_source_layer_shapes_rebuilt_in_pytorch_give_our_counts():
    # experiments/published_archs/count_sources.py: mobile-vision's FBNet and OFA's MobileNetV3
    # subnets rebuilt layer by layer from their sources (checked there against the sources' code)
    spec = importlib.util.spec_from_file_location("count_sources", COUNT_SOURCES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counts = module.source_counts()
    assert counts == {"fbnet_a": 4_321_232, "fbnet_b": 4_818_216, "fbnet_c": 5_592_784,
                      "ofa_note8_lat22": 4_304_592, "ofa_note8_lat31": 4_595_536}
    for name in ("fbnet_a", "fbnet_b", "ofa_note8_lat22", "ofa_note8_lat31"):
        assert arch_cost(load_reference(name)).params == counts[name] == PUBLISHED[name][0]


def test_ofa_subnets_match_mmrazors_rounded_params():
    assert round(arch_cost(load_reference("ofa_note8_lat22")).params / 1e6, 1) == 4.3
    assert round(arch_cost(load_reference("ofa_note8_lat31")).params / 1e6, 1) == 4.6


@pytest.mark.parametrize("width,params", [(0.5, 2_082_006), (0.75, 2_912_278), (1.4, 6_105_992)])
def test_mnasnet_a1_widths_have_timms_param_counts(width, params):
    # timm semnasnet_050 / _075 / _140: every layer scaled but the 1280 head conv
    assert arch_cost(scale_like(load_reference("mnasnet_a1"), width, "mnasnet")).params == params


@pytest.mark.parametrize("base", ["mobilenet_v3_large", "mobilenet_v3_small"])
def test_minimalistic_file_is_the_minimalistic_variant_of_its_baseline(base):
    # the architecture file and `variant: minimalistic` of a networks file are one network
    variant = apply_variant(load_baseline(base), "minimalistic")
    assert load_reference(f"{base}_minimalistic").blocks == variant.blocks
    assert arch_cost(load_reference(f"{base}_minimalistic")) == arch_cost(variant)


@pytest.mark.parametrize("name", sorted(ALL))
def test_published_file_round_trips_byte_for_byte(name):
    text = (PUBLISHED_ARCHS / f"{name}.json").read_text()
    assert dumps_arch(load_reference(name)) == text


@pytest.mark.parametrize("name", sorted(ALL))
def test_built_module_matches_the_counted_cost(name):
    arch = load_reference(name).with_overrides(resolution=64)
    model = build(arch).eval()
    assert sum(p.numel() for p in model.parameters()) == arch_cost(arch).params
    assert hook_madds(model, 64) == arch_cost(arch).madds
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 64, 64))).all()


@pytest.mark.parametrize("name", sorted(ALL))
def test_published_blocks_survive_the_block_string(name):
    arch = load_reference(name)
    assert decode_blocks(encode_blocks(arch.blocks, arch.stem.out), arch.stem.out) == arch.blocks


def test_timms_efficientnet_b0_string_with_our_se_tokens_gives_the_published_blocks():
    se = "se0.25_sein_sernd_sasw_sgsig_nsw"
    text = (f"ds_r1_k3_s1_e1_c16_{se} ir_r2_k3_s2_e6_c24_{se} ir_r2_k5_s2_e6_c40_{se} ir_r3_k3_s2_e6_c80_{se} "
            f"ir_r3_k5_s1_e6_c112_{se} ir_r4_k5_s2_e6_c192_{se} ir_r1_k3_s1_e6_c320_{se}")
    assert decode_blocks(text, 32) == load_reference("efficientnet_b0").blocks


@pytest.mark.parametrize("name", ["mnasnet_a1", "efficientnet_b0", "moga_a", "ofa_note8_lat22", "fbnet_a"])
def test_nas_show_knows_the_published_network_by_name(name):
    result = CliRunner().invoke(main, ["show", name])
    assert result.exit_code == 0, result.output
    assert f"{arch_cost(load_reference(name)).params:,} parameters" in result.output


def test_fbnet_a_has_mobile_visions_shuffle_blocks():
    arch = load_reference("fbnet_a")
    grouped = [(i, b.kernel, b.out) for i, b in enumerate(arch.blocks) if b.groups]
    assert grouped == [(8, 5, 64), (11, 5, 112), (13, 3, 112)]  # ir_k5_g2 64, ir_k5_g2 112, ir_k3_g2 112
    assert all(arch.blocks[i].exp == arch.blocks[i].out and arch.blocks[i].groups == 2 for i, _, _ in grouped)
    assert all(b.bias for b in arch.blocks) and arch.stem.bias and arch.head.conv_bias


def test_nas_show_gives_the_groups_of_a_grouped_network_only():
    grouped = json.loads(CliRunner().invoke(main, ["show", "fbnet_a", "--json"]).output)["blocks"]
    assert sorted({r["groups"] for r in grouped}) == [1, 2]
    assert "groups" in CliRunner().invoke(main, ["show", "fbnet_a"]).output.splitlines()[1]
    plain = json.loads(CliRunner().invoke(main, ["show", "mobilenet_v3_large", "--json"]).output)["blocks"]
    assert all("groups" not in r for r in plain)
