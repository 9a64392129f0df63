"""The compact timm-style block string, e.g. `ir_r2_k5_s2_e6_c40_se0.25_nre`.

Mapping to our block fields (tokens after the type, any order):
  type `ir`  -> "ir" (inverted residual); `ds` -> "ir" with exp equal to the input channels
             (timm's depthwise-separable block with a linear projection and a residual);
  type `dsa` -> "ds" (MobileNetV1's block: activation after the pointwise conv, no residual)
  r N   repeat the block N times; only the first keeps the stride
  k N   depthwise kernel            s N  stride of the first repeat
  e F   expansion ratio: exp = make_divisible(input channels x F, 8)   (e1 means no expansion)
  c N   output channels             se0.25  squeeze-excite (the only ratio our blocks have)
  nre   ReLU, nr6 ReLU6, nhs h-swish; no `n` token means h-swish (timm's MobileNetV3 default)
Blocks are separated by spaces (or commas); stem and head are not part of the string.
"""

from __future__ import annotations

import re

from nas.arch import Block, make_divisible
from nas.errors import NasError

_ACT_TOKENS = {"re": "relu", "r6": "relu6", "hs": "hswish"}
_ACT_NAMES = {v: k for k, v in _ACT_TOKENS.items()}
_TYPES = {"ir": "ir", "ds": "ir", "dsa": "ds"}


def looks_like_block_string(text: str) -> bool:
    """True when `text` reads as one or more block strings rather than a name or a path."""
    first = re.split(r"[\s,]+", text.strip())[0]
    return bool(re.fullmatch(r"(ir|ds|dsa)(_[a-z]+[0-9.]*)+", first))


def _decode_one(token: str, cin: int) -> list[Block]:
    kind, *opts = token.split("_")
    if kind not in _TYPES:
        raise NasError(f"block string {token!r}: type {kind!r} is not allowed; expected ir, ds or dsa")
    fields: dict[str, str] = {}
    for opt in opts:
        m = re.fullmatch(r"(se|r|k|s|e|c|n)([0-9a-z.]+)", opt)
        if m is None:
            raise NasError(f"block string {token!r}: option {opt!r} is not allowed; "
                           "expected r, k, s, e, c, se or n<act>")
        fields[m.group(1)] = m.group(2)
    try:
        repeat, kernel = int(fields.get("r", 1)), int(fields.get("k", 3))
        stride, out = int(fields.get("s", 1)), int(fields["c"])
        ratio = float(fields.get("e", 1))
    except (KeyError, ValueError):
        raise NasError(f"block string {token!r}: needs integer c (channels) and numeric r, k, s, e") from None
    act = _ACT_TOKENS.get(fields.get("n", "hs"))
    if act is None:
        raise NasError(f"block string {token!r}: activation n{fields['n']} is not allowed; expected nre, nr6 or nhs")
    se = "se" in fields
    if se and float(fields["se"]) != 0.25:
        raise NasError(f"block string {token!r}: se{fields['se']} is not allowed; blocks support se0.25 only")
    blocks = []
    for i in range(repeat):
        if _TYPES[kind] == "ds":
            blocks.append(Block("ds", kernel, out, stride if i == 0 else 1, act))
        else:
            exp = cin if ratio == 1 or kind == "ds" else make_divisible(cin * ratio, 8)
            blocks.append(Block("ir", kernel, out, stride if i == 0 else 1, act, exp, se))
        cin = out
    return blocks


def decode_blocks(text: str, in_channels: int) -> tuple[Block, ...]:
    """Blocks from a space- or comma-separated block string; `in_channels` is the stem's output."""
    blocks: list[Block] = []
    cin = in_channels
    for token in re.split(r"[\s,]+", text.strip()):
        blocks.extend(_decode_one(token, cin))
        cin = blocks[-1].out
    if not blocks:
        raise NasError("block string: empty; expected blocks like 'ir_r1_k3_s1_e1_c16_nre'")
    return tuple(blocks)


def _ratio(exp: int, cin: int) -> str:
    """The shortest decimal ratio that decodes back to exactly `exp` channels."""
    if exp == cin:
        return "1"
    for digits in range(0, 5):
        text = f"{exp / cin:.{digits}f}".rstrip("0").rstrip(".")
        if make_divisible(cin * float(text), 8) == exp:
            return text
    raise NasError(f"expanded width {exp} cannot be written as a ratio of {cin} input channels")


def _encode_one(b: Block, cin: int) -> str:
    if b.type == "ds":
        return f"dsa_r1_k{b.kernel}_s{b.stride}_c{b.out}_n{_ACT_NAMES[b.act]}"
    se = "_se0.25" if b.se else ""
    return f"ir_r1_k{b.kernel}_s{b.stride}_e{_ratio(b.exp, cin)}_c{b.out}{se}_n{_ACT_NAMES[b.act]}"


def encode_blocks(blocks: tuple[Block, ...], in_channels: int) -> str:
    """The block string of `blocks`; runs of identical stride-1 repeats merge into one `rN` token."""
    tokens: list[str] = []
    counts: list[int] = []
    cin = in_channels
    for b in blocks:
        token = _encode_one(b, cin)
        if tokens and b.stride == 1 and tokens[-1].replace("_s2_", "_s1_", 1) == token and cin == b.out:
            counts[-1] += 1
        else:
            tokens.append(token)
            counts.append(1)
        cin = b.out
    return " ".join(t.replace("_r1_", f"_r{n}_", 1) for t, n in zip(tokens, counts))
