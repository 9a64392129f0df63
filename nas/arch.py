"""Architectures as plain data: frozen records that load from and save to the JSON contract.

An `Arch` is what every other module reads: the builder turns it into layers, `cost` counts it,
`latency` looks it up. `Arch.layers()` resolves the width multiplier and the spatial sizes once,
so no consumer re-derives them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas.errors import NasError

ACTIVATIONS = ("relu", "relu6", "hswish")
BLOCK_TYPES = ("ir", "ds")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor` (at least `divisor`),
    bumped up one step when rounding lost more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def se_channels(exp: int) -> int:
    """Channels of the squeeze-excite bottleneck for an `exp`-wide block."""
    return make_divisible(exp // 4, 8)


def conv_out(size: int, stride: int) -> int:
    """Output side of a 'same'-padded convolution with an odd kernel, in pixels."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class Stem:
    out: int
    kernel: int = 3
    stride: int = 2
    act: str = "hswish"


@dataclass(frozen=True)
class Block:
    """One block. `exp` and `se` are None only for a "ds" block that left them out."""

    type: str
    kernel: int
    out: int
    stride: int
    act: str
    exp: int | None = None
    se: bool | None = None


@dataclass(frozen=True)
class Head:
    conv: int | None
    hidden: int | None
    act: str = "hswish"
    dropout: float = 0.2


@dataclass(frozen=True)
class Layer:
    """One op of a resolved architecture: channels after the width multiplier, sizes in pixels.

    kind is "stem", "ir", "ds", "conv" (the head's 1x1 conv), "pool" (global average pool),
    "fc" (a linear layer; act "none" for the classifier).
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

    @property
    def out_size(self) -> int:
        return 1 if self.kind == "pool" else conv_out(self.size, self.stride)

    @property
    def residual(self) -> bool:
        return self.kind == "ir" and self.stride == 1 and self.cin == self.cout

    @property
    def key(self) -> str:
        """Canonical latency-table key, e.g. `ir-56x56x24-e72-o24-k3-s1-se0-relu`."""
        shape = f"{self.size}x{self.size}x{self.cin}"
        return (f"{self.kind}-{shape}-e{self.exp}-o{self.cout}-k{self.kernel}-s{self.stride}"
                f"-se{int(self.se)}-{self.act}")


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
        """A copy with alpha, rho or the class count replaced (None keeps the current value)."""
        changes: dict[str, Any] = {}
        if width is not None:
            changes["width_mult"] = _check_number("width_mult", width, float, 0.0)
        if resolution is not None:
            changes["resolution"] = _check_number("resolution", resolution, int, 1)
        if num_classes is not None:
            changes["num_classes"] = _check_number("num_classes", num_classes, int, 1)
        return replace(self, **changes)

    def channels(self, c: int) -> int:
        """A written channel count after the width multiplier."""
        return c if self.width_mult == 1.0 else make_divisible(c * self.width_mult, 8)

    def layers(self) -> tuple[Layer, ...]:
        """Every op in order with resolved channels and input sizes."""
        size, cin = self.resolution, 3
        stem_out = self.channels(self.stem.out)
        out = [Layer("stem", size, cin, stem_out, self.stem.kernel, self.stem.stride,
                     act=self.stem.act)]
        size, cin = conv_out(size, self.stem.stride), stem_out
        for b in self.blocks:
            cout = self.channels(b.out)
            exp = cin if b.type == "ds" else self.channels(b.exp)
            out.append(Layer(b.type, size, cin, cout, b.kernel, b.stride, exp, bool(b.se), b.act))
            size, cin = conv_out(size, b.stride), cout
        if self.head.conv is not None:
            cout = self.channels(self.head.conv)
            out.append(Layer("conv", size, cin, cout, act=self.head.act))
            cin = cout
        out.append(Layer("pool", size, cin, cin))
        if self.head.hidden is not None:
            hidden = self.channels(self.head.hidden)
            out.append(Layer("fc", 1, cin, hidden, act=self.head.act))
            cin = hidden
        out.append(Layer("fc", 1, cin, self.num_classes))
        return tuple(out)


# ---------------------------------------------------------------- validation and JSON

_STEM_FIELDS = {"out", "kernel", "stride", "act"}
_BLOCK_FIELDS = {"type", "kernel", "exp", "out", "se", "act", "stride"}
_HEAD_FIELDS = {"conv", "hidden", "act", "dropout"}
_ARCH_FIELDS = {"name", "resolution", "width_mult", "num_classes", "stem", "blocks", "head"}


def _check_number(where: str, value: Any, kind: type, minimum: float) -> Any:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = is_int if kind is int else (is_int or isinstance(value, float))
    if not ok or not math.isfinite(value) or value < minimum or (kind is float and value == 0):
        allowed = f"an integer >= {minimum}" if kind is int else "a number > 0"
        raise NasError(f"{where}: {value!r} is not allowed; expected {allowed}")
    return kind(value)


def _check_choice(where: str, value: Any, choices: tuple) -> Any:
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        raise NasError(f"{where}: {value!r} is not allowed; expected one of {', '.join(map(str, choices))}")
    return value


def _check_fields(where: str, data: Any, allowed: set, required: set) -> None:
    if not isinstance(data, dict):
        raise NasError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise NasError(f"{where}.{unknown[0]}: unknown field; allowed fields are {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise NasError(f"{where}.{missing[0]}: missing; required fields are {', '.join(sorted(required))}")


def _check_kernel(where: str, value: Any) -> int:
    k = _check_number(where, value, int, 1)
    if k % 2 == 0:
        raise NasError(f"{where}: {k} is not allowed; expected an odd integer (1, 3, 5, 7, ...)")
    return k


def _stem_from_dict(d: Any) -> Stem:
    _check_fields("stem", d, _STEM_FIELDS, {"out"})
    return Stem(out=_check_number("stem.out", d["out"], int, 1),
                kernel=_check_kernel("stem.kernel", d.get("kernel", 3)),
                stride=_check_choice("stem.stride", d.get("stride", 2), (1, 2)),
                act=_check_choice("stem.act", d.get("act", "hswish"), ACTIVATIONS))


def _block_from_dict(where: str, d: Any, cin: int) -> Block:
    _check_fields(where, d, _BLOCK_FIELDS, {"type", "kernel", "out", "stride", "act"})
    kind = _check_choice(f"{where}.type", d["type"], BLOCK_TYPES)
    exp, se = d.get("exp"), d.get("se")
    if kind == "ir":
        if exp is None or se is None:
            raise NasError(f"{where}: an \"ir\" block needs \"exp\" (expanded channels) and \"se\" (true/false)")
        exp = _check_number(f"{where}.exp", exp, int, 1)
        se = _check_choice(f"{where}.se", se, (False, True))
    else:
        if exp is not None and exp != cin:
            raise NasError(f"{where}.exp: {exp!r} is not allowed; a \"ds\" block has exp equal to its "
                           f"input channels ({cin}) or leaves it out")
        if se is not None and se is not False:
            raise NasError(f"{where}.se: {se!r} is not allowed; a \"ds\" block has se false or leaves it out")
    return Block(type=kind, kernel=_check_kernel(f"{where}.kernel", d["kernel"]),
                 out=_check_number(f"{where}.out", d["out"], int, 1),
                 stride=_check_choice(f"{where}.stride", d["stride"], (1, 2)),
                 act=_check_choice(f"{where}.act", d["act"], ACTIVATIONS), exp=exp, se=se)


def _head_from_dict(d: Any) -> Head:
    _check_fields("head", d, _HEAD_FIELDS, {"conv", "hidden"})
    conv, hidden = d["conv"], d["hidden"]
    dropout = d.get("dropout", 0.2)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise NasError(f"head.dropout: {dropout!r} is not allowed; expected a number in [0, 1)")
    return Head(conv=None if conv is None else _check_number("head.conv", conv, int, 1),
                hidden=None if hidden is None else _check_number("head.hidden", hidden, int, 1),
                act=_check_choice("head.act", d.get("act", "hswish"), ACTIVATIONS),
                dropout=float(dropout))


def arch_from_dict(d: Any) -> Arch:
    """Validate a decoded JSON document and return the architecture; raises NasError naming
    the first bad field."""
    _check_fields("arch", d, _ARCH_FIELDS, _ARCH_FIELDS - {"width_mult"})
    if not isinstance(d["name"], str) or not d["name"]:
        raise NasError(f"name: {d['name']!r} is not allowed; expected a non-empty string")
    stem = _stem_from_dict(d["stem"])
    if not isinstance(d["blocks"], list) or not d["blocks"]:
        raise NasError("blocks: expected a non-empty list of block objects")
    blocks, cin = [], stem.out
    for i, bd in enumerate(d["blocks"]):
        blocks.append(_block_from_dict(f"blocks[{i}]", bd, cin))
        cin = blocks[-1].out
    return Arch(name=d["name"],
                resolution=_check_number("resolution", d["resolution"], int, 8),
                width_mult=_check_number("width_mult", d.get("width_mult", 1.0), float, 0.0),
                num_classes=_check_number("num_classes", d["num_classes"], int, 1),
                stem=stem, blocks=tuple(blocks), head=_head_from_dict(d["head"]))


def _block_to_dict(b: Block) -> dict:
    d = {"type": b.type, "kernel": b.kernel, "exp": b.exp, "out": b.out, "se": b.se,
         "act": b.act, "stride": b.stride}
    return {k: v for k, v in d.items() if v is not None or k not in ("exp", "se")}


def arch_to_dict(a: Arch) -> dict:
    """The JSON document of an architecture (field order as in the contract)."""
    return {"name": a.name, "resolution": a.resolution, "width_mult": a.width_mult,
            "num_classes": a.num_classes,
            "stem": {"out": a.stem.out, "kernel": a.stem.kernel, "stride": a.stem.stride,
                     "act": a.stem.act},
            "blocks": [_block_to_dict(b) for b in a.blocks],
            "head": {"conv": a.head.conv, "hidden": a.head.hidden, "act": a.head.act,
                     "dropout": a.head.dropout}}


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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise NasError(f"{where}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return arch_from_dict(data)


def load_arch(path: str | Path) -> Arch:
    """Read an architecture JSON file."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such architecture file")
    try:
        return loads_arch(path.read_text(), str(path))
    except NasError as e:
        msg = str(e)
        raise NasError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def save_arch(a: Arch, path: str | Path) -> Path:
    """Write an architecture JSON file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_arch(a))
    return path
