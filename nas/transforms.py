"""Published-architecture transforms: a network at another width the way its publisher scaled
it, and the published activation / squeeze-excite ablations. Both take and return `Arch` records
(nothing is built); the pixel latency derivation and the proxy fidelity study use them."""

from __future__ import annotations

import re
from dataclasses import replace

from nas.arch import Arch, make_divisible
from nas.errors import NasError

SCALINGS = ("v3", "v2", "mnasnet")


def scale_like(arch: Arch, width: float, scaling: str = "v3") -> Arch:
    """`arch` at width multiplier `width` the way its publisher scaled it (TF-slim / MnasNet):
    channels make_divisible(c * width, 8); an expansion is the scaled input times the block's
    ratio; v3 keeps the last (hidden) layer below 1.0, v2 keeps the 1280 head conv below 1.0,
    mnasnet always keeps the head conv. Returns an architecture with width_mult 1.0."""
    if scaling not in SCALINGS:
        raise NasError(f"scaling {scaling!r} is not allowed; expected one of {', '.join(SCALINGS)}")
    if width == 1.0:
        return arch
    ch = lambda c: make_divisible(c * width, 8)
    stem = replace(arch.stem, out=ch(arch.stem.out))
    blocks, cin_base, cin = [], arch.stem.out, stem.out
    for b in arch.blocks:
        out = ch(b.out)
        exp = b.exp
        if b.type == "ir":
            exp = cin if b.exp == cin_base else make_divisible(cin * b.exp / cin_base, 8)
        blocks.append(replace(b, out=out, exp=exp if b.type == "ir" else None))
        cin_base, cin = b.out, out
    keep_conv = scaling == "mnasnet" or (scaling == "v2" and width < 1)
    keep_hidden = scaling == "v3" and width < 1
    head = arch.head
    conv = head.conv if head.conv is None or keep_conv else ch(head.conv)
    hidden = head.hidden if head.hidden is None or keep_hidden else ch(head.hidden)
    return replace(arch, width_mult=1.0, stem=stem, blocks=tuple(blocks),
                   head=replace(head, conv=conv, hidden=hidden))


def _without_se(b):
    """An "ir" block without squeeze-excite (and without the SE options that then mean nothing)."""
    if b.type != "ir":
        return b
    return replace(b, se=False, se_base=None, se_ratio=None, se_round=None, se_act=None, se_gate=None)


def apply_variant(arch: Arch, variant: str | None) -> Arch:
    """The published ablations of a base network: `relu`, `hswish_from_N`, `minimalistic`."""
    if not variant:
        return arch
    if variant == "relu":
        return replace(arch, stem=replace(arch.stem, act="relu"), head=replace(arch.head, act="relu"),
                       blocks=tuple(replace(b, act="relu") for b in arch.blocks))
    if variant == "minimalistic":
        return replace(arch, stem=replace(arch.stem, act="relu"), head=replace(arch.head, act="relu"),
                       blocks=tuple(_without_se(replace(b, act="relu", kernel=3)) for b in arch.blocks))
    m = re.fullmatch(r"hswish_from_(\d+)", variant)
    if m:
        first = next((i for i, b in enumerate(arch.blocks) if b.out == int(m.group(1))), None)
        if first is None:
            raise NasError(f"variant {variant!r}: no block has {m.group(1)} output channels")
        return replace(arch, blocks=tuple(replace(b, act="hswish" if i >= first else "relu")
                                          for i, b in enumerate(arch.blocks)))
    raise NasError(f"variant {variant!r} is not allowed; expected relu, minimalistic or hswish_from_N")
