"""The supernet of a search space: `build_supernet(space, recipe, num_classes) -> Supernet`.

The supernet is the space's largest architecture, adapted to the training recipe exactly as a
proxy trial adapts a candidate (`nas.recipe.proxy_arch`: input side, classes, relaxed strides),
built from elastic layers; `supernet(x, arch)` runs any subnet of it (an architecture adapted the
same way) on the shared weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.arch import Arch, Layer
from nas.builder import _init_weights
from nas.recipe import Recipe, proxy_arch
from nas.space import Space, largest_arch
from nas.supernet.elastic import ElasticConvBN, ElasticLinear, ElasticSE, activation
from nas.supernet.plan import Plan, plan_subnet, split_layers

PLANS_KEPT = 4096  # subnets whose placement a supernet remembers (training draws two new ones a step)


class ElasticBlock(nn.Module):
    """An inverted residual block at its largest size (`largest`, a resolved "ir" op): 1x1
    expand (when the largest has one), kxk depthwise, squeeze-excite (when the largest has
    one), 1x1 project. forward(x, op) runs it as op says: expansion, kernel, SE on or off,
    activation, output channels, stride and residual."""

    def __init__(self, largest: Layer):
        super().__init__()
        self.expand = ElasticConvBN(largest.cin, largest.exp) if largest.has_expand else None
        self.depthwise = ElasticConvBN(largest.exp, largest.exp, largest.kernel, depthwise=True)
        self.se = ElasticSE(largest.exp, largest.squeeze) if largest.se else None
        self.project = ElasticConvBN(largest.exp, largest.cout)

    def forward(self, x: torch.Tensor, op: Layer) -> torch.Tensor:
        y = x
        if op.has_expand:
            y = activation(op.act, self.expand(y, op.exp))
        y = activation(op.act, self.depthwise(y, op.exp, op.kernel, op.stride))
        if op.se:
            y = self.se(y, op.squeeze, op.se_act, op.se_gate)
        y = self.project(y, op.cout)
        return x + y if op.residual else y


class Supernet(nn.Module):
    """Elastic stem, stages of elastic blocks, head conv, hidden layer and classifier at the
    sizes of `largest` (a proxy architecture) cut into stages of `depths` blocks.
    forward(x, arch): logits of subnet `arch` (a proxy architecture; see nas.supernet.plan)."""

    def __init__(self, largest: Arch, depths: tuple[int, ...]):
        super().__init__()
        flat = split_layers(largest)
        blocks, stages = flat.stages[0], []
        for d in depths:
            stages.append(blocks[:d])
            blocks = blocks[d:]
        self.largest_arch, self.depths = largest, tuple(depths)
        self._plans: dict[Arch, Plan] = {}
        self.largest = Plan(flat.stem, tuple(stages), flat.conv, flat.hidden, flat.classifier)
        self.stem = ElasticConvBN(3, flat.stem.cout, flat.stem.kernel)
        self.stages = nn.ModuleList(nn.ModuleList(ElasticBlock(op) for op in stage) for stage in stages)
        self.head_conv = ElasticConvBN(flat.conv.cin, flat.conv.cout)
        self.hidden = ElasticLinear(flat.hidden.cin, flat.hidden.cout, bias=flat.hidden.bias)
        self.classifier = ElasticLinear(flat.classifier.cin, flat.classifier.cout)
        _init_weights(self)  # the builder's initialisation, so a supernet starts like a network

    def plan(self, arch: Arch) -> Plan:
        """Where `arch` sits on this supernet (remembered); NasError when it is not a subnet."""
        if arch not in self._plans:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            self._plans[arch] = plan_subnet(arch, self.largest)
        return self._plans[arch]

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        plan = self.plan(arch)
        x = activation(plan.stem.act, self.stem(x, plan.stem.cout, plan.stem.kernel, plan.stem.stride))
        for blocks, ops in zip(self.stages, plan.stages):
            for block, op in zip(blocks, ops):
                x = block(x, op)
        x = activation(plan.conv.act, self.head_conv(x, plan.conv.cout)).mean((2, 3))
        x = activation(plan.hidden.act, self.hidden(x, plan.hidden.cout))
        x = F.dropout(x, arch.head.dropout, self.training)
        return self.classifier(x, plan.classifier.cout)


def _zero_init_residual(net: Supernet) -> None:
    """Zero the last BatchNorm scale of every block after a stage's first (always residual), so
    each starts as the identity, as nas.train does for a standalone network."""
    for blocks in net.stages:
        for block in list(blocks)[1:]:
            nn.init.zeros_(block.project.bn.weight)


def build_supernet(space: Space, recipe: Recipe, num_classes: int) -> Supernet:
    """The supernet of `space` for training with `recipe` on a data set of `num_classes`:
    its largest architecture as `proxy_arch` adapts it, stages of the space's deepest depth
    (weights drawn from torch's global generator; residual blocks start as the identity when
    the recipe says zero_init_residual)."""
    largest = proxy_arch(largest_arch(space), recipe, num_classes)
    net = Supernet(largest, tuple(max(stage.depth) for stage in space.stages))
    if recipe.zero_init_residual:
        _zero_init_residual(net)
    return net
