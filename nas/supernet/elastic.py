"""Elastic layers: one set of weights at the largest size, run at any smaller size by slicing.

Every layer holds the weights of the largest choice and takes the size of the moment as an
argument (never as state), so the same module runs any subnet in any order. Channels are the
first ones (Once-for-All's and BigNAS's rule), a smaller kernel is the centre of the largest one
(Once-for-All without its kernel transform matrices), and BatchNorm uses the first statistics.
The slices are exactly what `nas.supernet.subnet` copies into a standalone network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish, "swish": F.silu}
_GATES = {"hsigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid}


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """`x` through the activation called `name` (nas.arch.ACTIVATIONS)."""
    return _ACTIVATIONS[name](x)


def centre(kernel: int, largest: int) -> slice:
    """The rows (and columns) of a `largest`-sided kernel that form its centred `kernel` side."""
    start = (largest - kernel) // 2
    return slice(start, start + kernel)


def batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """`bn` on the first x.shape[1] channels (its running statistics updated in place while
    training, as a whole BatchNorm would)."""
    c = x.shape[1]
    return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                        bn.training, bn.momentum if bn.momentum is not None else 0.0, bn.eps)


class ElasticConvBN(nn.Module):
    """A conv (1x1 full or kxk depthwise) + BatchNorm at its largest size: `cin` -> `cout`
    channels (depthwise: cin == cout), side `kernel`. forward(x, cout, kernel, stride) runs it
    on the first x.shape[1] input channels."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, depthwise: bool = False):
        super().__init__()
        self.depthwise = depthwise
        self.conv = nn.Conv2d(cin, cout, kernel, groups=cout if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def weight(self, cin: int, cout: int, kernel: int) -> torch.Tensor:
        """The sliced conv weight a standalone conv of this size has."""
        k = centre(kernel, self.conv.kernel_size[0])
        if self.depthwise:
            return self.conv.weight[:cout, :, k, k]
        return self.conv.weight[:cout, :cin, k, k]

    def forward(self, x: torch.Tensor, cout: int, kernel: int = 1, stride: int = 1) -> torch.Tensor:
        cin = x.shape[1]
        groups = cin if self.depthwise else 1
        y = F.conv2d(x, self.weight(cin, cout, kernel), None, stride, kernel // 2, 1, groups)
        return batch_norm(self.bn, y)


class ElasticSE(nn.Module):
    """Squeeze-excite at its largest size (`channels` -> `squeeze` -> `channels`, with biases,
    as nas.builder.SqueezeExcite); forward(x, squeeze, act, gate) uses the first channels."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor, squeeze: int, act: str, gate: str) -> torch.Tensor:
        c = x.shape[1]
        s = x.mean((2, 3), keepdim=True)
        s = activation(act, F.conv2d(s, self.fc1.weight[:squeeze, :c], self.fc1.bias[:squeeze]))
        s = F.conv2d(s, self.fc2.weight[:c, :squeeze], self.fc2.bias[:c])
        return x * _GATES[gate](s)


class ElasticLinear(nn.Linear):
    """A linear layer at its largest size; forward(x, out) uses the first x.shape[1] inputs and
    the first `out` outputs."""

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:  # type: ignore[override]
        bias = None if self.bias is None else self.bias[:out]
        return F.linear(x, self.weight[:out, :x.shape[1]], bias)
