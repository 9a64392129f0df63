"""Architectures as plain data: frozen records that load from and save to the JSON contract.

An `Arch` is what every other module reads: the builder turns it into layers, `cost` counts it,
`latency` looks it up. `Arch.layers()` resolves the width multiplier and the spatial sizes once,
so no consumer re-derives them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.fileio import field_name, loads_json, read_text, short
from nas.files import write_text_atomic

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
# and float32 weights plus one image's activations must fit in this machine's memory

_STEM_FIELDS = {"out", "kernel", "stride", "act"}
_BLOCK_FIELDS = {"type", "kernel", "exp", "out", "se", "act", "stride"}
_HEAD_FIELDS = {"conv", "hidden", "act", "dropout"}
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
                act=check_choice(f"{where}.act", d.get("act", "hswish"), ACTIVATIONS))


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
    return Block(type=kind, kernel=check_kernel(f"{where}.kernel", d["kernel"]),
                 out=check_int(f"{where}.out", d["out"], 1, MAX_CHANNELS),
                 stride=check_choice(f"{where}.stride", d["stride"], (1, 2)),
                 act=check_choice(f"{where}.act", d["act"], ACTIVATIONS), exp=exp, se=se)


def _optional_channels(where: str, value: Any) -> int | None:
    return None if value is None else check_int(where, value, 1, MAX_CHANNELS)


def _head_from_dict(d: Any) -> Head:
    _check_fields("head", d, _HEAD_FIELDS, {"conv", "hidden"})
    return Head(conv=_optional_channels("head.conv", d["conv"]),
                hidden=_optional_channels("head.hidden", d["hidden"]),
                act=check_choice("head.act", d.get("act", "hswish"), ACTIVATIONS),
                dropout=check_float("head.dropout", d.get("dropout", 0.2), 0, 1, open_hi=True))


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
    _check_memory(arch)
    return arch


def validate(arch: Arch) -> Arch:
    """`arch` after the checks a JSON file gets (for architectures built in code)."""
    return arch_from_dict(arch_to_dict(arch))


def memory_estimate(arch: Arch) -> int:
    """Bytes of float32 weights plus the activations of one image: a floor on what building and
    running the network needs."""
    from nas.cost import arch_cost  # cost reads arch, so import it late

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


def _check_memory(arch: Arch) -> None:
    need, have = memory_estimate(arch), machine_memory()
    if have and need > have:
        raise NasError(f"arch {arch.name}: needs about {need / 1e9:,.2f} GB for its weights and one "
                       f"image's activations, more than this machine's {have / 1e9:,.2f} GB of "
                       f"memory; use fewer or narrower blocks, a lower resolution or a smaller width_mult")


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
