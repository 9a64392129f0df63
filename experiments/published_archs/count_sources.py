"""Parameter counts of published networks as their sources' own code builds them, rebuilt layer by
layer in plain PyTorch (no nas import, no download): the "source count" column of
latency_tables/published_archs/README.md for FBNet-A/B/C and the Once-for-All Note8 subnets.

Run offline from anywhere: `python experiments/published_archs/count_sources.py`. It prints one
line per network: name, parameters.

Sources read (layer shapes only; none of their code is copied):
- FBNet: facebookresearch/mobile-vision, `mobile_cv/arch/fbnet_v2/fbnet_modeldef_cls_fbnet.py`
  ("fbnet_a", "fbnet_b", "fbnet_c", the definitions the model zoo loads its pretrained weights
  into, `mobile_cv/model_zoo/models/fbnet_v2.py`), built by `arch/builder/meta_builder.py`
  (width_divisor 1), `irf_block.py` (IRFBlock) and `basic_blocks.py` (ConvBNRelu, Identity);
  checked against that code run at commit bb8465c: 4,321,232 / 4,818,216 / 5,592,784.
  IRFBlock: a 1x1 "pw" conv + BN + ReLU only where the expanded width differs from the input
  (e1 has none), a channel shuffle when pw_groups > 1 (the `_g2` ops), a kxk depthwise conv +
  BN + ReLU, a 1x1 "pwl" conv + BN in pwl_groups groups, residual at stride 1 and equal widths;
  `use_bias` gives all three convs a bias. "skip" at equal widths and stride 1 is an identity.
  The stem `conv_k3` and the head `conv_k1` are nn.Conv2d with its default bias, + BN + ReLU;
  the classifier (ClsConvHead) is a global pool and a 1x1 conv with a bias.
- Once-for-All: mit-han-lab/once-for-all, `ofa/imagenet_classification/elastic_nn/networks/
  ofa_mbv3.py` (OFAMobileNetV3) and the subnet `get_active_subnet` makes (`elastic_nn/modules/
  dynamic_layers.py`, `ofa/utils/layers.py` MBConvLayer, SEModule), at the depth, expansion and
  kernel per block of open-mmlab/mmrazor `configs/nas/mmcls/onceforall/OFA_SUBNET_NOTE8_LAT{22,
  31}.yaml`; checked against OFAMobileNetV3 (PyPI `ofa` 0.1.0.post202307202001) with those
  choices: 4,304,592 / 4,595,536.
"""

from __future__ import annotations

from torch import nn


def conv_bn(cin: int, cout: int, kernel: int = 1, groups: int = 1, bias: bool = False,
            bn: bool = True) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, groups=groups, bias=bias)] + ([nn.BatchNorm2d(cout)] if bn else [])


def params(modules: list[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# ---------------------------------------------------------------- FBNet (mobile-vision)
# [op, out channels, expansion, pwl_groups] after the stem (conv_k3 16, stride 2); strides do not
# change parameters. "skip" blocks are listed for completeness (identity at equal widths).
FBNET = {
    "fbnet_a": ([("skip", 16, 1, 1),
                 ("ir_k3", 24, 3, 1), ("ir_k3", 24, 1, 1), ("skip", 24, 1, 1), ("skip", 24, 1, 1),
                 ("ir_k5", 32, 6, 1), ("ir_k3", 32, 3, 1), ("ir_k5", 32, 1, 1), ("ir_k3", 32, 3, 1),
                 ("ir_k5", 64, 6, 1), ("ir_k5", 64, 3, 1), ("ir_k5_g2", 64, 1, 2), ("ir_k5", 64, 6, 1),
                 ("ir_k3", 112, 6, 1), ("ir_k5_g2", 112, 1, 2), ("ir_k5", 112, 3, 1), ("ir_k3_g2", 112, 1, 2),
                 ("ir_k5", 184, 6, 1), ("ir_k5", 184, 6, 1), ("ir_k5", 184, 3, 1), ("ir_k5", 184, 6, 1),
                 ("ir_k5", 352, 6, 1)], 1504),
    "fbnet_b": ([("ir_k3", 16, 1, 1),
                 ("ir_k3", 24, 6, 1), ("ir_k5", 24, 1, 1), ("ir_k3", 24, 1, 1), ("ir_k3", 24, 1, 1),
                 ("ir_k5", 32, 6, 1), ("ir_k5", 32, 3, 1), ("ir_k3", 32, 6, 1), ("ir_k5", 32, 6, 1),
                 ("ir_k5", 64, 6, 1), ("ir_k5", 64, 6, 1), ("skip", 64, 1, 1), ("ir_k5", 64, 3, 1),
                 ("ir_k5", 112, 6, 1), ("ir_k3", 112, 1, 1), ("ir_k5", 112, 1, 1), ("ir_k5", 112, 3, 1),
                 ("ir_k5", 184, 6, 1), ("ir_k5", 184, 1, 1), ("ir_k5", 184, 6, 1), ("ir_k5", 184, 6, 1),
                 ("ir_k3", 352, 6, 1)], 1984),
    "fbnet_c": ([("ir_k3", 16, 1, 1),
                 ("ir_k3", 24, 6, 1), ("skip", 24, 1, 1), ("ir_k3", 24, 1, 1), ("ir_k3", 24, 1, 1),
                 ("ir_k5", 32, 6, 1), ("ir_k5", 32, 3, 1), ("ir_k5", 32, 6, 1), ("ir_k3", 32, 6, 1),
                 ("ir_k5", 64, 6, 1), ("ir_k5", 64, 3, 1), ("ir_k5", 64, 6, 1), ("ir_k5", 64, 6, 1),
                 ("ir_k5", 112, 6, 1), ("ir_k5", 112, 6, 1), ("ir_k5", 112, 6, 1), ("ir_k5", 112, 3, 1),
                 ("ir_k5", 184, 6, 1), ("ir_k5", 184, 6, 1), ("ir_k5", 184, 6, 1), ("ir_k5", 184, 6, 1),
                 ("ir_k3", 352, 6, 1)], 1984),
}


def irf_block(cin: int, cout: int, kernel: int, expansion: int, pwl_groups: int) -> list[nn.Module]:
    """mobile-vision's IRFBlock with use_bias (pw only where mid != in; the shuffle has no weights)."""
    mid = cin * expansion
    layers = conv_bn(cin, mid, bias=True) if mid != cin else []
    return layers + conv_bn(mid, mid, kernel, groups=mid, bias=True) + conv_bn(mid, cout, groups=pwl_groups, bias=True)


def fbnet(name: str, num_classes: int = 1000) -> list[nn.Module]:
    blocks, head = FBNET[name]
    layers, cin = conv_bn(3, 16, 3, bias=True), 16
    for op, cout, expansion, pwl_groups in blocks:
        if op == "skip":
            assert cin == cout  # Identity: no conv at equal widths and stride 1
            continue
        layers += irf_block(cin, cout, int(op[4]), expansion, pwl_groups)
        cin = cout
    return layers + conv_bn(cin, head, bias=True) + [nn.Conv2d(head, num_classes, 1)]


# ---------------------------------------------------------------- Once-for-All MobileNetV3 subnets
# OFAMobileNetV3: widths 16 | 24, 40, 80, 112, 160 | 960 | 1280; SE in the 40-, 112- and 160-wide
# stages; per stage the (expand ratio, kernel) of the blocks the yaml keeps
OFA_WIDTHS = (24, 40, 80, 112, 160)
OFA_SE = (False, True, False, True, True)
OFA = {
    "ofa_note8_lat22": [[(3, 3), (3, 3)], [(3, 5), (3, 5)], [(4, 7), (3, 3)], [(3, 5), (4, 3)], [(6, 3), (6, 7)]],
    "ofa_note8_lat31": [[(3, 5), (3, 3)], [(4, 5), (3, 5)], [(4, 3), (4, 3), (4, 5)], [(4, 3), (3, 5), (4, 7)],
                        [(6, 3), (3, 3), (3, 5), (3, 5)]],
}


def make_divisible(v: float, divisor: int = 8) -> int:
    """OFA's make_divisible (ofa/utils/common_tools.py), as in MobileNetV2's reference code."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mb_conv(cin: int, cout: int, kernel: int, expand: int, se: bool) -> list[nn.Module]:
    """OFA's MBConvLayer: 1x1 inverted bottleneck (none at expand 1), depthwise, SE, linear 1x1."""
    mid = make_divisible(round(cin * expand))
    layers = conv_bn(cin, mid) if expand != 1 else []
    layers += conv_bn(mid, mid, kernel, groups=mid)
    if se:  # SEModule: reduce and expand 1x1 convs with biases
        squeeze = make_divisible(mid // 4)
        layers += [nn.Conv2d(mid, squeeze, 1), nn.Conv2d(squeeze, mid, 1)]
    return layers + conv_bn(mid, cout)


def ofa(name: str, num_classes: int = 1000) -> list[nn.Module]:
    layers, cin = conv_bn(3, 16, 3) + mb_conv(16, 16, 3, 1, False), 16
    for width, se, chosen in zip(OFA_WIDTHS, OFA_SE, OFA[name]):
        for expand, kernel in chosen:
            layers += mb_conv(cin, width, kernel, expand, se)
            cin = width
    # final expand layer (conv + BN), feature mix layer (bias-free conv, no BN), classifier
    return layers + conv_bn(cin, 960) + conv_bn(960, 1280, bn=False) + [nn.Linear(1280, num_classes)]


def source_counts() -> dict[str, int]:
    """Parameters of every network here, by our file name."""
    return {**{n: params(fbnet(n)) for n in FBNET}, **{n: params(ofa(n)) for n in OFA}}


if __name__ == "__main__":
    for name, count in source_counts().items():
        print(f"{name:18s} {count:>11,}")
