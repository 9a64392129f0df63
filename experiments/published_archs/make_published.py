"""Write the published networks of this folder that come from a block string or a config table
(MnasNet-A1, EfficientNet-B0, FBNet-A/B/C, MoGA-A/B/C, the two Once-for-All Note8 subnets,
HardCoRe-NAS A-F, Single-Path NAS, ProxylessNAS-CPU, MobileNetV3-Large/Small minimalistic).

Run from the repository root: `python experiments/published_archs/make_published.py`; it writes
latency_tables/published_archs/<name>.json. Sources and parameter counts:
latency_tables/published_archs/README.md; tests/test_published.py checks them.
"""

from __future__ import annotations

from pathlib import Path

from dataclasses import replace

from nas.arch import Arch, Block, Head, Stem, save_arch, validate
from nas.baselines import load_baseline
from nas.blockstring import decode_blocks
from nas.transforms import apply_variant

OUT = Path(__file__).resolve().parents[2] / "latency_tables" / "published_archs"

# timm's EfficientNet-class squeeze-excite (se_from_exp=False, round(), nn.Sigmoid gate): our
# tokens sein, sernd, sgsig
_SE_IN = "se0.25_sein_sernd_sgsig"

# timm efficientnet.py _gen_mnasnet_a1, arch_def (act ReLU, stem 32, head conv 1280)
MNASNET_A1 = ("ds_r1_k3_s1_e1_c16_noskip_nre ir_r2_k3_s2_e6_c24_nre "
              f"ir_r3_k5_s2_e3_c40_{_SE_IN}_nre ir_r4_k3_s2_e6_c80_nre ir_r2_k3_s1_e6_c112_{_SE_IN}_nre "
              f"ir_r3_k5_s2_e6_c160_{_SE_IN}_nre ir_r1_k3_s1_e6_c320_nre")
# timm efficientnet.py _gen_efficientnet, arch_def at depth 1.0 (act swish, SE with the block's
# activation inside and a sigmoid gate)
_EFF_SE = f"{_SE_IN}_sasw_nsw"
EFFICIENTNET_B0 = (f"ds_r1_k3_s1_e1_c16_{_EFF_SE} ir_r2_k3_s2_e6_c24_{_EFF_SE} ir_r2_k5_s2_e6_c40_{_EFF_SE} "
                   f"ir_r3_k3_s2_e6_c80_{_EFF_SE} ir_r3_k5_s1_e6_c112_{_EFF_SE} "
                   f"ir_r4_k5_s2_e6_c192_{_EFF_SE} ir_r1_k3_s1_e6_c320_{_EFF_SE}")
# timm efficientnet.py _gen_fbnetc, arch_def (act ReLU, stem 16, head conv 1984); timm's ir
# blocks keep their 1x1 expansion conv at e1
FBNET_C = ("ir_r1_k3_s1_e1_c16_nre ir_r1_k3_s2_e6_c24_nre ir_r2_k3_s1_e1_c24_nre ir_r1_k5_s2_e6_c32_nre "
           "ir_r1_k5_s1_e3_c32_nre ir_r1_k5_s1_e6_c32_nre ir_r1_k3_s1_e6_c32_nre ir_r1_k5_s2_e6_c64_nre "
           "ir_r1_k5_s1_e3_c64_nre ir_r2_k5_s1_e6_c64_nre ir_r3_k5_s1_e6_c112_nre ir_r1_k5_s1_e3_c112_nre "
           "ir_r4_k5_s2_e6_c184_nre ir_r1_k3_s1_e6_c352_nre")
# FBNet-A and FBNet-B of facebookresearch/mobile-vision mobile_cv/arch/fbnet_v2/
# fbnet_modeldef_cls_fbnet.py (the definitions its model zoo loads the pretrained weights into):
# `use_bias` on every block (all three convs biased: our `bias`), IRFBlock without a 1x1 "pw"
# conv at e1 (our `ds`), "skip" blocks (identities) left out, `ir_k*_g2` with pwl_groups 2 (pw
# and pwl in 2 groups, a channel shuffle before the depthwise conv: our `g2`). Stem 16 and head
# conv (1504 / 1984) with nn.Conv2d's default bias, ReLU; no dropout (ClsConvHead has none).
_B = "bias_nre"
FBNET_A = (f"ir_k3_s2_e3_c24_{_B} ds_k3_c24_{_B} "
           f"ir_k5_s2_e6_c32_{_B} ir_k3_e3_c32_{_B} ds_k5_c32_{_B} ir_k3_e3_c32_{_B} "
           f"ir_k5_s2_e6_c64_{_B} ir_k5_e3_c64_{_B} ds_k5_c64_g2_{_B} ir_k5_e6_c64_{_B} "
           f"ir_k3_e6_c112_{_B} ds_k5_c112_g2_{_B} ir_k5_e3_c112_{_B} ds_k3_c112_g2_{_B} "
           f"ir_k5_s2_e6_c184_{_B} ir_k5_e6_c184_{_B} ir_k5_e3_c184_{_B} ir_k5_e6_c184_{_B} ir_k5_e6_c352_{_B}")
FBNET_B = (f"ds_k3_c16_{_B} "
           f"ir_k3_s2_e6_c24_{_B} ds_k5_c24_{_B} ds_r2_k3_c24_{_B} "
           f"ir_k5_s2_e6_c32_{_B} ir_k5_e3_c32_{_B} ir_k3_e6_c32_{_B} ir_k5_e6_c32_{_B} "
           f"ir_k5_s2_e6_c64_{_B} ir_k5_e6_c64_{_B} ir_k5_e3_c64_{_B} "
           f"ir_k5_e6_c112_{_B} ds_k3_c112_{_B} ds_k5_c112_{_B} ir_k5_e3_c112_{_B} "
           f"ir_k5_s2_e6_c184_{_B} ds_k5_c184_{_B} ir_r2_k5_e6_c184_{_B} ir_k3_e6_c352_{_B}")

# timm hardcorenas.py arch_def of hardcorenas_a..f (= Alibaba-MIIL/HardCoReNAS README strings),
# stages flattened, the 'cn_r1_k1_s1_c960' head conv left to the Head. timm builds them with its
# MobileNetV3 class: blocks without `nre` are h-swish (also our block string's default), SE of the
# expanded channels with make_divisible, ReLU inside, hard-sigmoid gate (our plain `se0.25`)
HARDCORENAS = {
    "hardcorenas_a": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k5_s2_e3_c40_nre ir_r1_k5_s1_e6_c40_nre_se0.25 ir_r1_k5_s2_e6_c80_se0.25 "
                     "ir_r1_k5_s1_e6_c80_se0.25 ir_r1_k5_s1_e6_c112_se0.25 ir_r1_k5_s1_e6_c112_se0.25 "
                     "ir_r1_k5_s2_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25",
    "hardcorenas_b": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k3_s1_e3_c24_nre ir_r1_k5_s2_e3_c40_nre ir_r1_k5_s1_e3_c40_nre ir_r1_k5_s1_e3_c40_nre "
                     "ir_r1_k5_s2_e3_c80 ir_r1_k5_s1_e3_c80 ir_r1_k3_s1_e3_c80 ir_r1_k3_s1_e3_c80 "
                     "ir_r1_k5_s1_e3_c112 ir_r1_k3_s1_e3_c112 ir_r1_k3_s1_e3_c112 ir_r1_k3_s1_e3_c112 "
                     "ir_r1_k5_s2_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25 ir_r1_k3_s1_e3_c192_se0.25",
    "hardcorenas_c": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k5_s2_e3_c40_nre ir_r1_k5_s1_e3_c40_nre ir_r1_k5_s1_e3_c40_nre ir_r1_k5_s1_e3_c40_nre "
                     "ir_r1_k5_s2_e4_c80 ir_r1_k5_s1_e6_c80_se0.25 ir_r1_k3_s1_e3_c80 ir_r1_k3_s1_e3_c80 "
                     "ir_r1_k5_s1_e6_c112_se0.25 ir_r1_k3_s1_e3_c112 ir_r1_k3_s1_e3_c112 ir_r1_k3_s1_e3_c112 "
                     "ir_r1_k5_s2_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25 ir_r1_k3_s1_e3_c192_se0.25",
    "hardcorenas_d": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre_se0.25 ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k5_s2_e3_c40_nre_se0.25 ir_r1_k5_s1_e4_c40_nre_se0.25 ir_r1_k3_s1_e3_c40_nre_se0.25 "
                     "ir_r1_k5_s2_e4_c80_se0.25 ir_r1_k3_s1_e3_c80_se0.25 ir_r1_k3_s1_e3_c80_se0.25 "
                     "ir_r1_k3_s1_e3_c80_se0.25 ir_r1_k3_s1_e4_c112_se0.25 ir_r1_k5_s1_e4_c112_se0.25 "
                     "ir_r1_k3_s1_e3_c112_se0.25 ir_r1_k5_s1_e3_c112_se0.25 ir_r1_k5_s2_e6_c192_se0.25 "
                     "ir_r1_k5_s1_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25 ir_r1_k3_s1_e6_c192_se0.25",
    "hardcorenas_e": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre_se0.25 ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k5_s2_e6_c40_nre_se0.25 ir_r1_k5_s1_e4_c40_nre_se0.25 ir_r1_k5_s1_e4_c40_nre_se0.25 "
                     "ir_r1_k3_s1_e3_c40_nre_se0.25 ir_r1_k5_s2_e4_c80_se0.25 ir_r1_k3_s1_e6_c80_se0.25 "
                     "ir_r1_k5_s1_e6_c112_se0.25 ir_r1_k5_s1_e6_c112_se0.25 ir_r1_k5_s1_e6_c112_se0.25 "
                     "ir_r1_k5_s1_e3_c112_se0.25 ir_r1_k5_s2_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25 "
                     "ir_r1_k5_s1_e6_c192_se0.25 ir_r1_k3_s1_e6_c192_se0.25",
    "hardcorenas_f": "ds_r1_k3_s1_e1_c16_nre ir_r1_k5_s2_e3_c24_nre_se0.25 ir_r1_k5_s1_e3_c24_nre_se0.25 "
                     "ir_r1_k5_s2_e6_c40_nre_se0.25 ir_r1_k5_s1_e6_c40_nre_se0.25 ir_r1_k5_s2_e6_c80_se0.25 "
                     "ir_r1_k5_s1_e6_c80_se0.25 ir_r1_k3_s1_e3_c80_se0.25 ir_r1_k3_s1_e3_c80_se0.25 "
                     "ir_r1_k3_s1_e6_c112_se0.25 ir_r1_k5_s1_e6_c112_se0.25 ir_r1_k5_s1_e6_c112_se0.25 "
                     "ir_r1_k3_s1_e3_c112_se0.25 ir_r1_k5_s2_e6_c192_se0.25 ir_r1_k5_s1_e6_c192_se0.25 "
                     "ir_r1_k3_s1_e6_c192_se0.25 ir_r1_k3_s1_e6_c192_se0.25",
}
# timm efficientnet.py _gen_spnasnet, arch_def (EfficientNet class: ReLU everywhere, so `nre` on
# every block here; stem 32, head conv 1280)
SPNASNET = ("ds_r1_k3_s1_c16_noskip_nre ir_r3_k3_s2_e3_c24_nre ir_r1_k5_s2_e6_c40_nre ir_r3_k3_s1_e3_c40_nre "
            "ir_r1_k5_s2_e6_c80_nre ir_r3_k3_s1_e3_c80_nre ir_r1_k5_s1_e6_c96_nre ir_r3_k5_s1_e3_c96_nre "
            "ir_r4_k5_s2_e6_c192_nre ir_r1_k3_s1_e6_c320_noskip_nre")
# ProxylessNAS-CPU (mit-han-lab/proxylessnas proxyless_cpu.config, as osmr/imgclsmob
# pytorch/pytorchcv/models/proxylessnas.py get_proxylessnas("cpu") tables it): per block
# (expand ratio, kernel, out channels, stride); the two zero (skipped) blocks of the 88-channel
# stage left out; stem 40, head conv 1432, ReLU6; hidden = round(input x ratio)
PROXYLESSNAS_CPU = [(1, 3, 24, 1),
                    (6, 3, 32, 2), (3, 3, 32, 1), (3, 3, 32, 1), (3, 3, 32, 1),
                    (6, 3, 48, 2), (3, 3, 48, 1), (3, 3, 48, 1), (3, 5, 48, 1),
                    (6, 3, 88, 2), (3, 3, 88, 1), (6, 5, 104, 1), (3, 3, 104, 1), (3, 3, 104, 1),
                    (3, 3, 104, 1),
                    (6, 5, 216, 2), (3, 5, 216, 1), (3, 5, 216, 1), (3, 3, 216, 1), (6, 5, 360, 1)]

# xiaomi-automl/MoGA models/MoGA_{A,B,C}.py mb_config: expansion, out, kernel, stride, h-swish, se
MOGA = {
    "moga_a": [(6, 24, 5, 2, 0, 0), (6, 24, 7, 1, 0, 0), (6, 40, 3, 2, 0, 0), (6, 40, 3, 1, 0, 1),
               (3, 40, 3, 1, 0, 1), (6, 80, 3, 2, 1, 1), (6, 80, 3, 1, 1, 0), (6, 80, 7, 1, 1, 0),
               (3, 80, 7, 1, 1, 1), (6, 112, 7, 1, 1, 0), (6, 112, 3, 1, 1, 0), (6, 160, 3, 2, 1, 0),
               (6, 160, 5, 1, 1, 1), (6, 160, 5, 1, 1, 1)],
    "moga_b": [(3, 24, 3, 2, 0, 0), (3, 24, 3, 1, 0, 0), (6, 40, 7, 2, 0, 0), (3, 40, 3, 1, 0, 0),
               (6, 40, 5, 1, 0, 0), (6, 80, 3, 2, 1, 1), (6, 80, 5, 1, 1, 1), (3, 80, 3, 1, 1, 0),
               (6, 80, 7, 1, 1, 1), (6, 112, 7, 1, 1, 0), (3, 112, 5, 1, 1, 0), (6, 160, 7, 2, 1, 1),
               (6, 160, 7, 1, 1, 1), (6, 160, 3, 1, 1, 1)],
    "moga_c": [(3, 24, 5, 2, 0, 0), (3, 24, 3, 1, 0, 0), (3, 40, 5, 2, 0, 0), (3, 40, 3, 1, 0, 0),
               (3, 40, 5, 1, 0, 0), (3, 80, 5, 2, 1, 0), (6, 80, 5, 1, 1, 1), (3, 80, 5, 1, 1, 0),
               (3, 80, 5, 1, 1, 0), (6, 112, 3, 1, 1, 0), (6, 112, 3, 1, 1, 1), (6, 160, 3, 2, 1, 1),
               (6, 160, 3, 1, 1, 1), (6, 160, 3, 1, 1, 1)],
}

# open-mmlab/mmrazor configs/nas/mmcls/onceforall/OFA_SUBNET_NOTE8_LAT{22,31}.yaml: per stage
# (out, stride, act, se) of the OFA MobileNetV3 supernet, then the chosen (expand, kernel) of the
# first `depth` blocks of each stage, and the input side
OFA_STAGES = [(24, 2, "relu", False), (40, 2, "relu", True), (80, 2, "hswish", False),
              (112, 1, "hswish", True), (160, 2, "hswish", True)]
OFA = {
    "ofa_note8_lat22": (140, [[(3, 3), (3, 3)], [(3, 5), (3, 5)], [(4, 7), (3, 3)], [(3, 5), (4, 3)],
                              [(6, 3), (6, 7)]]),
    "ofa_note8_lat31": (152, [[(3, 5), (3, 3)], [(4, 5), (3, 5)], [(4, 3), (4, 3), (4, 5)],
                              [(4, 3), (3, 5), (4, 7)], [(6, 3), (3, 3), (3, 5), (3, 5)]]),
}


def _from_string(name: str, text: str, stem: int, act: str, head_conv: int) -> Arch:
    return validate(Arch(name, 224, 1.0, 1000, Stem(stem, 3, 2, act), decode_blocks(text, stem),
                         Head(head_conv, None, act, 0.2)))


def fbnet(name: str, text: str, head_conv: int) -> Arch:
    """FBNet as mobile-vision builds it: stem 16 and head conv with biases, ReLU, no dropout."""
    return validate(Arch(name, 224, 1.0, 1000, Stem(16, 3, 2, "relu", bias=True), decode_blocks(text, 16),
                         Head(head_conv, None, "relu", 0.0, conv_bias=True)))


def moga(name: str) -> Arch:
    """MoGA: stem 16 h-swish; a 16->16 separable block without residual; inverted residuals with
    the SE of the block's activation, channel // 4 wide; 960 conv; a bias-free 1280 layer."""
    blocks, cin = [Block("ir", 3, 16, 1, "relu", exp=16, se=False, residual=False)], 16
    for t, c, k, s, hs, se in MOGA[name]:
        act = "hswish" if hs else "relu"
        opts = dict(se_round="floor", se_act=act) if se else {}
        blocks.append(Block("ir", k, c, s, act, exp=round(cin * t), se=bool(se), **opts))
        cin = c
    return validate(Arch(name, 224, 1.0, 1000, Stem(16, 3, 2, "hswish"), tuple(blocks),
                         Head(960, 1280, "hswish", 0.2, hidden_bias=False)))


def ofa(name: str) -> Arch:
    """An OFA MobileNetV3 subnet: stem 16 h-swish, a 16->16 e1 block with residual, the chosen
    blocks, 960 conv, a bias-free 1280 feature-mix layer (OFA's feature_mix_layer)."""
    resolution, stages = OFA[name]
    blocks, cin = [Block("ir", 3, 16, 1, "relu", exp=16, se=False)], 16
    for (out, stride, act, se), chosen in zip(OFA_STAGES, stages):
        for i, (e, k) in enumerate(chosen):
            blocks.append(Block("ir", k, out, stride if i == 0 else 1, act, exp=cin * e, se=se))
            cin = out
    return validate(Arch(name, resolution, 1.0, 1000, Stem(16, 3, 2, "hswish"), tuple(blocks),
                         Head(960, 1280, "hswish", 0.1, hidden_bias=False)))


def hardcorenas(name: str) -> Arch:
    """HardCoRe-NAS as timm's MobileNetV3 class builds it: stem 32 h-swish, the blocks, a 960
    conv, pool, a 1280 layer with bias and h-swish (as MobileNetV3-Large's head), classifier."""
    return validate(Arch(name, 224, 1.0, 1000, Stem(32, 3, 2, "hswish"), decode_blocks(HARDCORENAS[name], 32),
                         Head(960, 1280, "hswish", 0.2)))


def proxylessnas_cpu() -> Arch:
    """ProxylessNAS-CPU: stem 40, ReLU6 inverted residuals (no expansion conv at ratio 1), 1432
    head conv, pool, classifier."""
    blocks, cin = [], 40
    for ratio, kernel, out, stride in PROXYLESSNAS_CPU:
        blocks.append(Block("ir", kernel, out, stride, "relu6", exp=round(cin * ratio), se=False))
        cin = out
    return validate(Arch("proxylessnas_cpu", 224, 1.0, 1000, Stem(40, 3, 2, "relu6"), tuple(blocks),
                         Head(1432, None, "relu6", 0.2)))


def minimalistic(base: str) -> Arch:
    """TF-slim's minimalistic MobileNetV3 (no SE, no h-swish, 3x3 kernels; head as the base's)."""
    return replace(apply_variant(load_baseline(base), "minimalistic"), name=f"{base}_minimalistic")


def published() -> list[Arch]:
    """Every network this script writes."""
    return [_from_string("mnasnet_a1", MNASNET_A1, 32, "relu", 1280),
            _from_string("efficientnet_b0", EFFICIENTNET_B0, 32, "swish", 1280),
            fbnet("fbnet_a", FBNET_A, 1504), fbnet("fbnet_b", FBNET_B, 1984),
            _from_string("fbnet_c", FBNET_C, 16, "relu", 1984),
            *(moga(n) for n in MOGA), *(ofa(n) for n in OFA),
            *(hardcorenas(n) for n in HARDCORENAS),
            _from_string("spnasnet", SPNASNET, 32, "relu", 1280),
            proxylessnas_cpu(), minimalistic("mobilenet_v3_large"), minimalistic("mobilenet_v3_small")]


if __name__ == "__main__":
    for arch in published():
        print(save_arch(arch, OUT / f"{arch.name}.json"))
