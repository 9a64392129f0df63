"""Parameters and multiply-adds counted analytically from the architecture data.

Multiply-adds count convolutions and linear layers only (BatchNorm, activations, pooling, the
SE gate product and residual adds are free), as in the MobileNet papers:
a kxk depthwise conv costs k*k*C*H_out*W_out, a 1x1 conv Cin*Cout*H*W, a linear layer in*out.
A grouped 1x1 conv (FBNet's shuffle blocks) costs Cin/groups*Cout*H*W; its channel shuffle is free.
Parameters count every learnable tensor: conv weights, BatchNorm scale and shift, biases (a
conv's bias adds no multiply-adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the validator in nas.arch counts with this module
    from nas.arch import Arch, Layer


@dataclass(frozen=True)
class Cost:
    params: int
    madds: int

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.params + other.params, self.madds + other.madds)


def _conv(cin: int, cout: int, kernel: int, out_size: int, groups: int = 1, bias: bool = False) -> Cost:
    """A conv (with a bias when `bias`) followed by BatchNorm."""
    weights = kernel * kernel * (cin // groups) * cout
    return Cost(weights + (3 if bias else 2) * cout, weights * out_size * out_size)


def _linear(cin: int, cout: int, bias: bool = True) -> Cost:
    """A linear layer (or a 1x1 conv on a 1x1 map), with a bias unless `bias` is False."""
    return Cost(cin * cout + (cout if bias else 0), cin * cout)


def layer_cost(layer: Layer) -> Cost:
    """Parameters and multiply-adds of one op."""
    s_in, s_out = layer.size, layer.out_size
    bias = layer.conv_bias
    if layer.kind == "stem":
        return _conv(layer.cin, layer.cout, layer.kernel, s_out, bias=bias)
    if layer.kind == "ds":
        return (_conv(layer.cin, layer.cin, layer.kernel, s_out, groups=layer.cin)
                + _conv(layer.cin, layer.cout, 1, s_out))
    if layer.kind == "ir":
        cost = Cost(0, 0)
        if layer.has_expand:
            cost += _conv(layer.cin, layer.exp, 1, s_in, layer.groups, bias)
        cost += _conv(layer.exp, layer.exp, layer.kernel, s_out, layer.exp, bias)
        if layer.se:
            cost += _linear(layer.exp, layer.squeeze) + _linear(layer.squeeze, layer.exp)
        return cost + _conv(layer.exp, layer.cout, 1, s_out, layer.groups, bias)
    if layer.kind == "conv":
        return _conv(layer.cin, layer.cout, 1, s_out, bias=bias)
    if layer.kind == "fc":
        return _linear(layer.cin, layer.cout, layer.bias)
    return Cost(0, 0)  # pool


def layer_costs(arch: Arch) -> list[tuple[Layer, Cost]]:
    """Every op of the architecture with its cost, in order."""
    return [(layer, layer_cost(layer)) for layer in arch.layers()]


def arch_cost(arch: Arch) -> Cost:
    """Total parameters and multiply-adds of the built network."""
    total = Cost(0, 0)
    for _, cost in layer_costs(arch):
        total += cost
    return total
