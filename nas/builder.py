"""The only place that constructs layers: `build(arch) -> nn.Module`."""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import Arch, Layer

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "swish": nn.SiLU}
_GATES = {"hsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid}


def _act(name: str) -> nn.Module:
    return _ACTIVATIONS[name](inplace=True)


def _conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             act: str | None = None, bias: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=bias),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(_act(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Global pool, 1x1 down to `squeeze` channels, activation `act`, 1x1 up, `gate`
    (MobileNetV3's: make_divisible(exp // 4, 8), ReLU, hard-sigmoid)."""

    def __init__(self, channels: int, squeeze: int, act: str = "relu", gate: str = "hsigmoid"):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.relu = _act(act)  # named for MobileNetV3's ReLU; checkpoints keep their keys
        self.gate = _GATES[gate]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: (N, g*c, H, W) viewed as (N, g, c, H, W), the two channel
    axes swapped, flattened back (as FBNet's IRFBlock). Reshapes only, so ONNX exports it."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: [1x1 expand] -> kxk depthwise -> [SE] -> linear 1x1 project [+ x].
    FBNet's options: grouped 1x1 convs with a channel shuffle after the expansion, conv biases."""

    def __init__(self, layer: Layer):
        super().__init__()
        parts: list[nn.Module] = []
        bias = layer.conv_bias
        if layer.has_expand:
            parts.append(_conv_bn(layer.cin, layer.exp, groups=layer.groups, act=layer.act, bias=bias))
        if layer.groups > 1:
            parts.append(ChannelShuffle(layer.groups))
        parts.append(_conv_bn(layer.exp, layer.exp, layer.kernel, layer.stride, layer.exp, layer.act, bias))
        if layer.se:
            parts.append(SqueezeExcite(layer.exp, layer.squeeze, layer.se_act, layer.se_gate))
        parts.append(_conv_bn(layer.exp, layer.cout, groups=layer.groups, bias=bias))
        self.body = nn.Sequential(*parts)
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def _depthwise_separable(layer: Layer) -> nn.Sequential:
    """MobileNetV1 block: kxk depthwise + BN + act, 1x1 pointwise + BN + act; no residual."""
    return nn.Sequential(
        _conv_bn(layer.cin, layer.cin, layer.kernel, layer.stride, layer.cin, layer.act),
        _conv_bn(layer.cin, layer.cout, act=layer.act))


class MobileNet(nn.Module):
    """A network built from an `Arch`: stem, blocks, head convolution, pooling, classifier."""

    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        layers = arch.layers()
        stem = layers[0]
        self.stem = _conv_bn(3, stem.cout, stem.kernel, stem.stride, act=stem.act, bias=stem.conv_bias)
        body = [l for l in layers if l.kind in ("ir", "ds")]
        self.blocks = nn.Sequential(*[InvertedResidual(l) if l.kind == "ir" else _depthwise_separable(l)
                                      for l in body])
        conv = [l for l in layers if l.kind == "conv"]
        self.head_conv = (_conv_bn(conv[0].cin, conv[0].cout, act=conv[0].act, bias=conv[0].conv_bias)
                          if conv else nn.Identity())
        fcs = [l for l in layers if l.kind == "fc"]
        hidden = [nn.Linear(l.cin, l.cout, bias=l.bias) for l in fcs[:-1]]
        self.hidden = nn.Sequential(hidden[0], _act(fcs[0].act)) if hidden else nn.Identity()
        self.dropout = nn.Dropout(arch.head.dropout)
        self.classifier = nn.Linear(fcs[-1].cin, fcs[-1].cout)
        _init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, C) before the hidden layer and classifier."""
        return self.head_conv(self.blocks(self.stem(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.hidden(self.features(x))))


def _init_weights(model: nn.Module) -> None:
    # The torchvision MobileNet initialisation, so trained accuracies are comparable.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(arch: Arch) -> MobileNet:
    """Build the PyTorch module for an architecture (width multiplier applied)."""
    return MobileNet(arch)


class _GlobalMean(nn.Module):
    """The global average pool `MobileNet.features` applies, as a module of its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


def build_layer(layer: Layer) -> nn.Module:
    """The module of one op exactly as `build` makes it inside a network (for timing it alone).

    Input: (1, cin, size, size) tensors; "fc" takes (1, cin). "pool" averages to (1, cin)."""
    if layer.kind == "stem":
        return _conv_bn(layer.cin, layer.cout, layer.kernel, layer.stride, act=layer.act, bias=layer.conv_bias)
    if layer.kind == "ir":
        return InvertedResidual(layer)
    if layer.kind == "ds":
        return _depthwise_separable(layer)
    if layer.kind == "conv":
        return _conv_bn(layer.cin, layer.cout, act=layer.act, bias=layer.conv_bias)
    if layer.kind == "pool":
        return _GlobalMean()
    if layer.kind == "fc":
        linear = nn.Linear(layer.cin, layer.cout, bias=layer.bias)
        return linear if layer.act == "none" else nn.Sequential(linear, _act(layer.act))
    raise ValueError(f"unknown layer kind {layer.kind!r}")
