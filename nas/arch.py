"""Architectures as plain data: frozen records that load from and save to the JSON contract.

An `Arch` is what every other module reads: the builder turns it into layers, `cost` counts it,
`latency` looks it up. `Arch.layers()` resolves the width multiplier and the spatial sizes once,
so no consumer re-derives them.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas.cost import arch_cost
from nas.errors import NasError
from nas.fileio import field_name, loads_json, read_text, short
from nas.files import write_text_atomic

ACTIVATIONS = ("relu", "relu6", "hswish", "swish")
BLOCK_TYPES = ("ir", "ds")
SE_BASES = ("exp", "in")                  # squeeze-excite width from the expanded or the input channels
SE_ROUNDINGS = ("divisible", "round", "floor")
SE_GATES = ("hsigmoid", "sigmoid")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor` (at least `divisor`),
    bumped up one step when rounding lost more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def se_channels(exp: int) -> int:
    """Channels of the squeeze-excite bottleneck for an `exp`-wide block (MobileNetV3's rule)."""
    return make_divisible(exp // 4, 8)


def se_width(base: int, ratio: float | None, rounding: str | None) -> int:
    """Squeeze-excite bottleneck channels from `base` channels (the block's expanded or input
    width): `ratio` (None: 0.25) of them, rounded as `rounding` says (None: "divisible").
    divisible: make_divisible(base * ratio, 8) (MobileNetV3, Once-for-All; at 0.25 exactly
    MobileNetV3's make_divisible(base // 4, 8)); round: Python's round (timm's default,
    MnasNet, EfficientNet); floor: int (MoGA's channel // 4). At least 1."""
    rounding = rounding or "divisible"
    if rounding == "divisible":
        return se_channels(base) if ratio in (None, 0.25) else make_divisible(base * ratio, 8)
    value = base * (0.25 if ratio is None else ratio)
    return max(1, round(value) if rounding == "round" else int(value))


def conv_out(size: int, stride: int) -> int:
    """Output side of a 'same'-padded convolution with an odd kernel, in pixels."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class Stem:
    out: int
    kernel: int = 3
    stride: int = 2
    act: str = "hswish"
    bias: bool | None = None  # None (left out) = false: the conv has no bias (BatchNorm's shift only)


@dataclass(frozen=True)
class Block:
    """One block. `exp` is the expanded (hidden) channel count before the width multiplier,
    not a ratio: the block string's `e6` on 16 input channels is stored as exp=96. (A search
    space's `Stage.expand` is the ratio that `sample_arch` turns into this count.) The JSON key
    is `exp` too. `exp` and `se` are None only for a "ds" block that left them out."""

    type: str
    kernel: int
    out: int
    stride: int
    act: str
    exp: int | None = None
    se: bool | None = None
    # Optional fields of an "ir" block; None means the field was left out, which is MobileNetV3's
    # meaning: SE of the expanded channels, ratio 0.25, make_divisible, ReLU inside, hard-sigmoid
    # gate; the expansion conv only where exp differs from the input; the usual residual.
    se_base: str | None = None
    se_ratio: float | None = None
    se_round: str | None = None
    se_act: str | None = None
    se_gate: str | None = None
    expand_conv: bool | None = None
    residual: bool | None = None
    # FBNet's options (facebookresearch/mobile-vision IRFBlock): `groups` splits the 1x1 expansion
    # and projection convs into that many groups, with a channel shuffle of as many groups after
    # the expansion (where the expansion conv is left out, before the depthwise conv); `bias` gives
    # every conv of the block a bias. None: one group, no shuffle, no biases.
    groups: int | None = None
    bias: bool | None = None


@dataclass(frozen=True)
class Head:
    conv: int | None
    hidden: int | None
    act: str = "hswish"
    dropout: float = 0.2
    hidden_bias: bool | None = None  # None (left out) = true: the hidden linear layer has a bias
    conv_bias: bool | None = None    # None (left out) = false: the head's 1x1 conv has no bias


@dataclass(frozen=True)
class Layer:
    """One op of a resolved architecture: channels after the width multiplier, sizes in pixels.

    kind is "stem", "ir", "ds", "conv" (the head's 1x1 conv), "pool" (global average pool),
    "fc" (a linear layer; act "none" for the classifier).
    The fields after `act` hold the block options (resolved: se_mid is the squeeze-excite
    bottleneck's channels, 0 when the op has no SE); their defaults are MobileNetV3's meaning.
    """

    kind: str
    size: int
    cin: int
    cout: int
    kernel: int = 1
    stride: int = 1
    exp: int = 0
    se: bool = False
    act: str = "none"
    se_mid: int = 0
    se_act: str = "relu"
    se_gate: str = "hsigmoid"
    expand_conv: bool = False      # the 1x1 expansion conv kept although exp equals cin
    skip: bool = True              # False: no residual even where the shapes allow one
    bias: bool = True              # "fc" only: the linear layer has a bias
    groups: int = 1                # "ir" only: groups of the 1x1 convs, a channel shuffle when > 1
    conv_bias: bool = False        # "stem", "ir", "conv": every conv of the op has a bias

    @property
    def out_size(self) -> int:
        return 1 if self.kind == "pool" else conv_out(self.size, self.stride)

    @property
    def residual(self) -> bool:
        return self.kind == "ir" and self.stride == 1 and self.cin == self.cout and self.skip

    @property
    def has_expand(self) -> bool:
        """An "ir" op's 1x1 expansion conv is there."""
        return self.exp != self.cin or self.expand_conv

    @property
    def squeeze(self) -> int:
        """Channels of the squeeze-excite bottleneck (0 without SE)."""
        return (self.se_mid or se_channels(self.exp)) if self.se else 0

    @property
    def key(self) -> str:
        """Canonical latency-table key, e.g. `ir-56x56x24-e72-o24-k3-s1-se0-relu`; block options
        that differ from MobileNetV3's meaning follow as suffixes (`options_suffix`)."""
        shape = f"{self.size}x{self.size}x{self.cin}"
        return (f"{self.kind}-{shape}-e{self.exp}-o{self.cout}-k{self.kernel}-s{self.stride}"
                f"-se{int(self.se)}-{self.act}{options_suffix(self)}")


def options_suffix(layer: Layer) -> str:
    """The key suffix of the options that differ from the defaults, in a fixed order:
    `-sm<se channels>` (when not MobileNetV3's make_divisible(exp // 4, 8)), `-sa<se act>`,
    `-sg<gate>`, `-x1` (expansion conv kept at exp == cin), `-noskip`, `-nobias`, `-g<groups>`
    (grouped 1x1 convs and a channel shuffle); "" for the ops of every network the format could
    write before these options. A conv bias (`conv_bias`) is not part of the key: on device it
    folds into the BatchNorm shift (TFLite's convolutions always carry a bias), so the op and
    its time are the same as without it."""
    parts = []
    if layer.se and layer.se_mid and layer.se_mid != se_channels(layer.exp):
        parts.append(f"sm{layer.se_mid}")
    if layer.se and layer.se_act != "relu":
        parts.append(f"sa{layer.se_act}")
    if layer.se and layer.se_gate != "hsigmoid":
        parts.append(f"sg{layer.se_gate}")
    if layer.expand_conv and layer.exp == layer.cin:
        parts.append("x1")
    if not layer.skip and layer.kind == "ir" and layer.stride == 1 and layer.cin == layer.cout:
        parts.append("noskip")
    if not layer.bias:
        parts.append("nobias")
    if layer.groups > 1:
        parts.append(f"g{layer.groups}")
    return "".join(f"-{p}" for p in parts)


_SUFFIX = re.compile(r"sm(\d{1,6})|sa(relu|relu6|hswish|swish)|sg(hsigmoid|sigmoid)|g(\d{1,5})|x1|noskip|nobias")


def with_options_suffix(layer: Layer, suffix: str) -> Layer | None:
    """`layer` with the options a key suffix (as `options_suffix` writes it) spells, or None
    when the suffix does not parse."""
    changes: dict = {}
    for part in suffix.split("-")[1:] if suffix else []:
        m = _SUFFIX.fullmatch(part)
        if m is None:
            return None
        if m.group(1):
            changes["se_mid"] = int(m.group(1))
        elif m.group(2):
            changes["se_act"] = m.group(2)
        elif m.group(3):
            changes["se_gate"] = m.group(3)
        elif m.group(4):
            changes["groups"] = int(m.group(4))
        else:
            changes[{"x1": "expand_conv", "noskip": "skip", "nobias": "bias"}[part]] = part == "x1"
    return replace(layer, **changes)


@dataclass(frozen=True)
class Arch:
    name: str
    resolution: int
    width_mult: float
    num_classes: int
    stem: Stem
    blocks: tuple[Block, ...]
    head: Head

    def with_overrides(self, width: float | None = None, resolution: int | None = None,
                       num_classes: int | None = None) -> "Arch":
        """A copy with alpha, rho or the class count replaced (None keeps the current value),
        checked exactly as a JSON file would be."""
        d = arch_to_dict(self)
        for key, value in (("width_mult", width), ("resolution", resolution), ("num_classes", num_classes)):
            if value is not None:
                d[key] = value
        return arch_from_dict(d)

    def channels(self, c: int) -> int:
        """A written channel count after the width multiplier."""
        return c if self.width_mult == 1.0 else make_divisible(c * self.width_mult, 8)

    def layers(self) -> tuple[Layer, ...]:
        """Every op in order with resolved channels and input sizes."""
        size, cin = self.resolution, 3
        stem_out = self.channels(self.stem.out)
        out = [Layer("stem", size, cin, stem_out, self.stem.kernel, self.stem.stride,
                     act=self.stem.act, conv_bias=bool(self.stem.bias))]
        size, cin = conv_out(size, self.stem.stride), stem_out
        for b in self.blocks:
            cout = self.channels(b.out)
            exp = cin if b.type == "ds" else self.channels(b.exp)
            out.append(_block_layer(b, size, cin, cout, exp))
            size, cin = conv_out(size, b.stride), cout
        if self.head.conv is not None:
            cout = self.channels(self.head.conv)
            out.append(Layer("conv", size, cin, cout, act=self.head.act, conv_bias=bool(self.head.conv_bias)))
            cin = cout
        out.append(Layer("pool", size, cin, cin))
        if self.head.hidden is not None:
            hidden = self.channels(self.head.hidden)
            out.append(Layer("fc", 1, cin, hidden, act=self.head.act,
                             bias=self.head.hidden_bias is not False))
            cin = hidden
        out.append(Layer("fc", 1, cin, self.num_classes))
        return tuple(out)


def _block_layer(b: Block, size: int, cin: int, cout: int, exp: int) -> Layer:
    """The resolved op of one block (channels after the width multiplier)."""
    se = bool(b.se)
    mid = se_width(cin if b.se_base == "in" else exp, b.se_ratio, b.se_round) if se else 0
    return Layer(b.type, size, cin, cout, b.kernel, b.stride, exp, se, b.act, se_mid=mid,
                 se_act=b.se_act or "relu", se_gate=b.se_gate or "hsigmoid",
                 expand_conv=bool(b.expand_conv) and exp == cin,
                 skip=not (b.residual is False and b.stride == 1 and cin == cout),
                 groups=b.groups or 1, conv_bias=bool(b.bias))


# ---------------------------------------------------------------- validation and JSON
# Every way an architecture comes in (JSON, block string, --width/--resolution overrides,
# search-space sampling) ends in `arch_from_dict`, so one set of checks guards all of them.
# The upper bounds are generous (several times the largest published MobileNets) and exist so
# that a typo is refused in one line instead of allocating gigabytes.
MAX_CHANNELS = 16_384          # any written channel count: stem, block out / exp, head
MAX_KERNEL = 31                # odd kernel sides 1..31 pixels
MAX_RESOLUTION = 4096          # input side in pixels (minimum 8)
MAX_WIDTH_MULT = 8.0           # alpha in (0, 8]
MAX_NUM_CLASSES = 100_000
MAX_BLOCKS = 1000
MAX_NAME = 200                 # characters
MAX_GROUPS = 64                # groups of a block's 1x1 convs
# and float32 weights plus one image's activations must fit in this machine's memory

_STEM_FIELDS = {"out", "kernel", "stride", "act", "bias"}
_BLOCK_OPTIONS = ("se_base", "se_ratio", "se_round", "se_act", "se_gate", "expand_conv", "residual",
                  "groups", "bias")
_BLOCK_FIELDS = {"type", "kernel", "exp", "out", "se", "act", "stride", *_BLOCK_OPTIONS}
_HEAD_FIELDS = {"conv", "hidden", "act", "dropout", "hidden_bias", "conv_bias"}
_ARCH_FIELDS = {"name", "resolution", "width_mult", "num_classes", "stem", "blocks", "head"}


def check_int(where: str, value: Any, lo: int, hi: int) -> int:
    """`value` if it is an integer (not a bool) in [lo, hi], else NasError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise NasError(f"{where}: {short(value)} is not allowed; expected an integer from {lo} to {hi:,}")
    return value


def check_float(where: str, value: Any, lo: float, hi: float, open_lo: bool = False,
                open_hi: bool = False) -> float:
    """`value` as a float if it is a finite number in the interval, else NasError naming `where`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (lo < value if open_lo else lo <= value) and (value < hi if open_hi else value <= hi)
    if not ok:
        interval = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise NasError(f"{where}: {short(value)} is not allowed; expected a number in {interval}")
    return float(value)


def check_choice(where: str, value: Any, choices: tuple) -> Any:
    """`value` if it is one of `choices` (True is not 1 here), else NasError naming `where`."""
    if not any(value == c and type(value) is type(c) for c in choices):
        raise NasError(f"{where}: {short(value)} is not allowed; expected one of "
                       f"{', '.join(map(str, choices))}")
    return value


def check_kernel(where: str, value: Any) -> int:
    """An odd kernel side from 1 to MAX_KERNEL pixels."""
    if check_int(where, value, 1, MAX_KERNEL) % 2 == 0:
        raise NasError(f"{where}: {value} is not allowed; expected an odd integer from 1 to {MAX_KERNEL}")
    return value


def check_name(where: str, value: Any) -> str:
    """A non-empty one-line printable string of at most MAX_NAME characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not value.isprintable():
        raise NasError(f"{where}: {short(value)} is not allowed; expected a non-empty one-line "
                       f"string of at most {MAX_NAME} characters")
    return value


def _check_fields(where: str, data: Any, allowed: set, required: set) -> None:
    if not isinstance(data, dict):
        raise NasError(f"{where}: expected an object (mapping), got {type(data).__name__}")
    unknown = sorted(field_name(k) for k in set(data) - allowed)
    if unknown:
        raise NasError(f"{where}.{unknown[0]}: unknown field; "
                       f"allowed fields are {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise NasError(f"{where}.{missing[0]}: missing; required fields are {', '.join(sorted(required))}")


def stem_from_dict(d: Any, where: str = "stem") -> Stem:
    """A validated stem from its decoded fields."""
    _check_fields(where, d, _STEM_FIELDS, {"out"})
    return Stem(out=check_int(f"{where}.out", d["out"], 1, MAX_CHANNELS),
                kernel=check_kernel(f"{where}.kernel", d.get("kernel", 3)),
                stride=check_choice(f"{where}.stride", d.get("stride", 2), (1, 2)),
                act=check_choice(f"{where}.act", d.get("act", "hswish"), ACTIVATIONS),
                bias=check_choice(f"{where}.bias", d["bias"], (False, True)) if "bias" in d else None)


def block_from_dict(where: str, d: Any, cin: int) -> Block:
    """A validated block from its decoded fields; `cin` is its input channels (written)."""
    _check_fields(where, d, _BLOCK_FIELDS, {"type", "kernel", "out", "stride", "act"})
    kind = check_choice(f"{where}.type", d["type"], BLOCK_TYPES)
    exp, se = d.get("exp"), d.get("se")
    if kind == "ir":
        if exp is None or se is None:
            raise NasError(f"{where}: an \"ir\" block needs \"exp\" (expanded channels) and \"se\" (true/false)")
        exp = check_int(f"{where}.exp", exp, 1, MAX_CHANNELS)
        se = check_choice(f"{where}.se", se, (False, True))
    else:
        if exp is not None and (exp != cin or isinstance(exp, bool)):
            raise NasError(f"{where}.exp: {short(exp)} is not allowed; a \"ds\" block has exp equal to its "
                           f"input channels ({cin}) or leaves it out")
        if se is not None and se is not False:
            raise NasError(f"{where}.se: {short(se)} is not allowed; a \"ds\" block has se false or leaves it out")
        given = [k for k in _BLOCK_OPTIONS if k in d]
        if given:
            raise NasError(f"{where}.{given[0]}: not allowed on a \"ds\" block; it is an option of \"ir\" blocks")
    stride = check_choice(f"{where}.stride", d["stride"], (1, 2))
    out = check_int(f"{where}.out", d["out"], 1, MAX_CHANNELS)
    return Block(type=kind, kernel=check_kernel(f"{where}.kernel", d["kernel"]), out=out,
                 stride=stride, act=check_choice(f"{where}.act", d["act"], ACTIVATIONS), exp=exp, se=se,
                 **_block_options(where, d, cin, exp, out, stride))


def _block_options(where: str, d: dict, cin: int, exp: Any, out: int, stride: int) -> dict:
    """The optional "ir" fields, checked; a field left out stays None (its default meaning)."""
    opts: dict = {}
    for key, choices in (("se_base", SE_BASES), ("se_round", SE_ROUNDINGS), ("se_act", ACTIVATIONS),
                         ("se_gate", SE_GATES), ("expand_conv", (False, True)), ("residual", (False, True)),
                         ("bias", (False, True))):
        if key in d:
            opts[key] = check_choice(f"{where}.{key}", d[key], choices)
    if "groups" in d:
        opts["groups"] = _check_groups(f"{where}.groups", d["groups"], cin, exp, out)
    if "se_ratio" in d:
        check_float(f"{where}.se_ratio", d["se_ratio"], 0, 1, open_lo=True)
        opts["se_ratio"] = d["se_ratio"]  # as written (1 stays 1), so the file round-trips
    if opts.get("expand_conv") and exp != cin:
        raise NasError(f"{where}.expand_conv: true is not allowed here; it keeps the 1x1 expansion conv "
                       f"of a block whose exp equals its input channels ({cin}), and exp is {exp}")
    if opts.get("residual") and not (stride == 1 and cin == out):
        raise NasError(f"{where}.residual: true is not allowed here; a residual needs stride 1 and "
                       f"output channels equal to the input ({cin})")
    return opts


def _check_groups(where: str, groups: Any, cin: int, exp: int, out: int) -> int:
    """A group count from 1 to MAX_GROUPS that divides the block's input, expanded and output
    channels (the 1x1 convs and the shuffle split all three)."""
    check_int(where, groups, 1, MAX_GROUPS)
    widths = {"input": cin, "expanded": exp, "output": out}
    bad = next((k for k, c in widths.items() if c % groups), None)
    if bad:
        raise NasError(f"{where}: {groups} is not allowed; the groups must divide the block's input ({cin}), "
                       f"expanded ({exp}) and output ({out}) channels, and its {bad} channels do not divide")
    return groups


def _optional_channels(where: str, value: Any) -> int | None:
    return None if value is None else check_int(where, value, 1, MAX_CHANNELS)


def _head_from_dict(d: Any) -> Head:
    _check_fields("head", d, _HEAD_FIELDS, {"conv", "hidden"})
    return Head(conv=_optional_channels("head.conv", d["conv"]),
                hidden=_optional_channels("head.hidden", d["hidden"]),
                act=check_choice("head.act", d.get("act", "hswish"), ACTIVATIONS),
                dropout=check_float("head.dropout", d.get("dropout", 0.2), 0, 1, open_hi=True),
                hidden_bias=(check_choice("head.hidden_bias", d["hidden_bias"], (False, True))
                             if "hidden_bias" in d else None),
                conv_bias=(check_choice("head.conv_bias", d["conv_bias"], (False, True))
                           if "conv_bias" in d else None))


def arch_from_dict(d: Any) -> Arch:
    """Validate a decoded JSON document and return the architecture; raises NasError naming
    the first bad field, or the memory the network would need when it is more than this
    machine has."""
    _check_fields("arch", d, _ARCH_FIELDS, _ARCH_FIELDS - {"width_mult"})
    name = check_name("name", d["name"])
    stem = stem_from_dict(d["stem"])
    if not isinstance(d["blocks"], list) or not 1 <= len(d["blocks"]) <= MAX_BLOCKS:
        raise NasError(f"blocks: {short(d['blocks'])} is not allowed; expected a list of 1 to "
                       f"{MAX_BLOCKS} block objects")
    blocks, cin = [], stem.out
    for i, bd in enumerate(d["blocks"]):
        blocks.append(block_from_dict(f"blocks[{i}]", bd, cin))
        cin = blocks[-1].out
    arch = Arch(name=name,
                resolution=check_int("resolution", d["resolution"], 8, MAX_RESOLUTION),
                width_mult=check_float("width_mult", d.get("width_mult", 1.0), 0, MAX_WIDTH_MULT,
                                       open_lo=True),
                num_classes=check_int("num_classes", d["num_classes"], 1, MAX_NUM_CLASSES),
                stem=stem, blocks=tuple(blocks), head=_head_from_dict(d["head"]))
    _check_resolved_groups(arch)
    _check_memory(arch)
    return arch


def validate(arch: Arch) -> Arch:
    """`arch` after the checks a JSON file gets (for architectures built in code)."""
    return arch_from_dict(arch_to_dict(arch))


def memory_estimate(arch: Arch) -> int:
    """Bytes of float32 weights plus the activations of one image: a floor on what building and
    running the network needs."""
    activations = 0
    for layer in arch.layers():
        outputs = layer.cout * layer.out_size ** 2
        if layer.kind == "ir":  # expanded map before and after the depthwise conv
            outputs += layer.exp * (layer.size ** 2 + layer.out_size ** 2)
        activations += outputs
    return 4 * (arch_cost(arch).params + activations)


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _check_resolved_groups(arch: Arch) -> None:
    """NasError when the width multiplier leaves a grouped block's channels indivisible."""
    blocks = [l for l in arch.layers() if l.kind in ("ir", "ds")]
    for i, layer in enumerate(blocks):
        if any(c % layer.groups for c in (layer.cin, layer.exp, layer.cout)):
            raise NasError(f"blocks[{i}].groups: {layer.groups} is not allowed at width_mult {arch.width_mult:g}; "
                           f"it must divide the scaled channels {layer.cin}, {layer.exp} and {layer.cout}")


def _check_memory(arch: Arch) -> None:
    need, have = memory_estimate(arch), machine_memory()
    if have and need > have:
        raise NasError(f"arch {arch.name}: needs about {need / 1e9:,.2f} GB for its weights and one "
                       f"image's activations, more than this machine's {have / 1e9:,.2f} GB of "
                       f"memory; use fewer or narrower blocks, a lower resolution or a smaller width_mult")


def _block_to_dict(b: Block) -> dict:
    d = {"type": b.type, "kernel": b.kernel, "exp": b.exp, "out": b.out, "se": b.se,
         "act": b.act, "stride": b.stride, **{k: getattr(b, k) for k in _BLOCK_OPTIONS}}
    return {k: v for k, v in d.items() if v is not None or k not in ("exp", "se", *_BLOCK_OPTIONS)}


def arch_to_dict(a: Arch) -> dict:
    """The JSON document of an architecture (field order as in the contract)."""
    return {"name": a.name, "resolution": a.resolution, "width_mult": a.width_mult,
            "num_classes": a.num_classes,
            "stem": _stem_to_dict(a.stem),
            "blocks": [_block_to_dict(b) for b in a.blocks],
            "head": _head_to_dict(a.head)}


def _stem_to_dict(s: Stem) -> dict:
    d = {"out": s.out, "kernel": s.kernel, "stride": s.stride, "act": s.act}
    if s.bias is not None:
        d["bias"] = s.bias
    return d


def _head_to_dict(h: Head) -> dict:
    d = {"conv": h.conv, "hidden": h.hidden, "act": h.act, "dropout": h.dropout}
    for key in ("hidden_bias", "conv_bias"):
        if getattr(h, key) is not None:
            d[key] = getattr(h, key)
    return d


def dumps_arch(a: Arch) -> str:
    """JSON text with one block per line, so diffs of architectures read like tables."""
    d = arch_to_dict(a)
    lines = ["{"]
    for key in ("name", "resolution", "width_mult", "num_classes", "stem"):
        lines.append(f'  "{key}": {json.dumps(d[key])},')
    blocks = ",\n".join(f"    {json.dumps(b)}" for b in d["blocks"])
    lines.append(f'  "blocks": [\n{blocks}\n  ],')
    lines.append(f'  "head": {json.dumps(d["head"])}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def loads_arch(text: str, where: str = "architecture") -> Arch:
    """Parse and validate JSON text; malformed JSON raises NasError with line and column."""
    return arch_from_dict(loads_json(text, where))


def load_arch(path: str | Path) -> Arch:
    """Read an architecture JSON file (UTF-8, at most fileio.MAX_FILE_BYTES)."""
    path = Path(path)
    text = read_text(path, "architecture file")
    try:
        return loads_arch(text, str(path))
    except NasError as e:
        msg = str(e)
        raise NasError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def save_arch(a: Arch, path: str | Path) -> Path:
    """Write an architecture JSON file whole or not at all and return its path; NasError when
    it cannot be written (a folder that is a file, read-only, disk full)."""
    return write_text_atomic(path, dumps_arch(a))
