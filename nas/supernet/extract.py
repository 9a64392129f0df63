"""A subnet's weights copied out of a supernet into the network `nas.builder.build` makes.

`extract(supernet, arch)` returns the standalone network a user would export, holding the slices
of the shared weights the supernet runs for `arch`: the same logits, BatchNorm statistics
included.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import Arch
from nas.builder import MobileNet, build
from nas.supernet.build import Supernet
from nas.supernet.elastic import ElasticConvBN


def _copy_bn(bn: nn.BatchNorm2d, source: nn.BatchNorm2d) -> None:
    c = bn.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).copy_(getattr(source, name)[:c])
    bn.num_batches_tracked.copy_(source.num_batches_tracked)


def _copy_conv_bn(seq: nn.Sequential, source: ElasticConvBN, kernel: int = 1) -> None:
    """Fill a builder conv + BN (+ act) with the slices `source` runs at that size."""
    conv = seq[0]
    conv.weight.copy_(source.weight(conv.in_channels, conv.out_channels, kernel))
    _copy_bn(seq[1], source.bn)


def _copy_linear(linear: nn.Linear, source: nn.Linear) -> None:
    linear.weight.copy_(source.weight[:linear.out_features, :linear.in_features])
    if linear.bias is not None:
        linear.bias.copy_(source.bias[:linear.out_features])


@torch.no_grad()
def extract(supernet: Supernet, arch: Arch) -> MobileNet:
    """`build(arch)` with the supernet's weights for subnet `arch` (a proxy architecture, as
    `supernet(x, arch)` takes it), in eval mode. NasError when `arch` is not a subnet."""
    plan = supernet.plan(arch)
    model = build(arch)
    _copy_conv_bn(model.stem, supernet.stem, plan.stem.kernel)
    ops = [(op, block) for blocks, stage in zip(supernet.stages, plan.stages) for op, block in zip(stage, blocks)]
    for module, (op, block) in zip(model.blocks, ops):
        parts = iter(module.body)
        if op.has_expand:
            _copy_conv_bn(next(parts), block.expand)
        _copy_conv_bn(next(parts), block.depthwise, op.kernel)
        if op.se:
            se = next(parts)
            for name in ("fc1", "fc2"):
                conv, source = getattr(se, name), getattr(block.se, name)
                conv.weight.copy_(source.weight[:conv.out_channels, :conv.in_channels])
                conv.bias.copy_(source.bias[:conv.out_channels])
        _copy_conv_bn(next(parts), block.project)
    _copy_conv_bn(model.head_conv, supernet.head_conv)
    _copy_linear(model.hidden[0], supernet.hidden)
    _copy_linear(model.classifier, supernet.classifier)
    return model.eval()
