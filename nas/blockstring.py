"""The compact timm-style block string, e.g. `ir_r2_k5_s2_e6_c40_se0.25_nre`.

Mapping to our block fields (tokens after the type, any order):
  type `ir`  -> "ir" (inverted residual; as in timm its 1x1 expansion conv is always there, so
             `e1` keeps it: exp equal to the input channels and expand_conv true);
             `ds` -> "ir" with exp equal to the input channels and no expansion conv
             (timm's depthwise-separable block with a linear projection and a residual);
  type `dsa` -> "ds" (MobileNetV1's block: activation after the pointwise conv, no residual)
  r N   repeat the block N times; only the first keeps the stride
  k N   depthwise kernel            s N  stride of the first repeat
  e F   expansion ratio: exp = make_divisible(input channels x F, 8)
  c N   output channels
  se F  squeeze-excite of ratio F (0 < F <= 1) of the expanded channels, make_divisible(., 8),
        ReLU inside, hard-sigmoid gate: timm's MobileNetV3 meaning (se_from_exp, round_channels)
  nre   ReLU, nr6 ReLU6, nhs h-swish, nsw swish; no `n` token means h-swish (timm's MobileNetV3
        default)
  noskip  no residual (timm's token)
Tokens of ours (timm sets these per model class, not per block; each is a JSON block field):
  sein  the SE ratio is of the block's input channels (se_base "in": timm's EfficientNet and
        MnasNet, se_from_exp=False)          sernd / seflr  SE width rounded with round() / int()
  sa<act>  the SE's inner activation (sasw, sahs, sar6; default ReLU)   sgsig  sigmoid SE gate
  g N   FBNet's shuffle block: the 1x1 expansion and projection convs in N groups, a channel
        shuffle of N groups after the expansion (JSON "groups"; mobile-vision's ir_k3_g2 with
        pwl_groups 2 is `ds_k3_c112_g2`, its e1 blocks having no expansion conv)
  bias  every conv of the block has a bias (JSON "bias": mobile-vision's FBNet `use_bias`)
Blocks are separated by spaces (or commas); stem and head are not part of the string.
Every decoded block passes the checks of a JSON block (`arch.block_from_dict`: kernel, stride,
channels and their upper bounds), and a string holds at most `arch.MAX_BLOCKS` blocks.
"""

from __future__ import annotations

import re

from nas.arch import MAX_BLOCKS, Block, block_from_dict, make_divisible
from nas.errors import NasError

_ACT_TOKENS = {"re": "relu", "r6": "relu6", "hs": "hswish", "sw": "swish"}
_FLAGS = {"noskip": ("residual", False), "bias": ("bias", True), "sein": ("se_base", "in"),
          "sernd": ("se_round", "round"), "seflr": ("se_round", "floor"), "sgsig": ("se_gate", "sigmoid"),
          **{f"sa{t}": ("se_act", a) for t, a in _ACT_TOKENS.items()}}
_FLAG_NAMES = {v: k for k, v in _FLAGS.items()}
_ACT_NAMES = {v: k for k, v in _ACT_TOKENS.items()}
_TYPES = {"ir": "ir", "ds": "ir", "dsa": "ds"}


def looks_like_block_string(text: str) -> bool:
    """True when `text` reads as one or more block strings rather than a name or a path."""
    first = re.split(r"[\s,]+", text.strip())[0]
    return bool(re.fullmatch(r"(ir|ds|dsa)(_[a-z]+[0-9.]*)+", first))


_OPTION = re.compile(r"(se|r|k|s|e|c|g|n)(.*)")
_INTEGER = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,6}(\.[0-9]{0,6})?|\.[0-9]{1,6}")


def _options(token: str) -> tuple[str, dict[str, str]]:
    """The type and the {letter: text} options of one token; each option at most once."""
    kind, *opts = token.split("_")
    if kind not in _TYPES:
        raise NasError(f"block {token[:60]}: type {kind[:20]!r} is not allowed; expected ir, ds or dsa")
    fields: dict[str, str] = {}
    for opt in opts:
        if opt in _FLAGS:
            if opt in fields:
                raise NasError(f"block {token[:60]}: option {opt} is given twice")
            fields[opt] = ""
            continue
        m = _OPTION.fullmatch(opt)
        if m is None:
            raise NasError(f"block {token[:60]}: option {opt[:20]!r} is not allowed; "
                           f"expected r, k, s, e, c, g, se, n<act> or one of {', '.join(_FLAGS)}")
        if m.group(1) in fields:
            raise NasError(f"block {token[:60]}: option {m.group(1)} is given twice")
        fields[m.group(1)] = m.group(2)
    return kind, fields


def _number(token: str, fields: dict[str, str], key: str, default: str | None, pattern: re.Pattern,
            what: str) -> str:
    text = fields.get(key, default)
    if text is None or not pattern.fullmatch(text):
        shown = f"{key} is missing" if text is None else f"{key}{text[:20]} is not allowed"
        raise NasError(f"block {token[:60]}: {shown}; expected {key} followed by {what}")
    return text


def _decode_one(token: str, cin: int, room: int) -> list[Block]:
    """The blocks of one token (`room`: how many more blocks the network may have)."""
    kind, fields = _options(token)
    repeat = int(_number(token, fields, "r", "1", _INTEGER, "a count"))
    if not 1 <= repeat <= room:
        raise NasError(f"block {token[:60]}: r{repeat} is not allowed; expected a repeat count from 1 to "
                       f"{room} (a network has at most {MAX_BLOCKS} blocks)")
    kernel = int(_number(token, fields, "k", "3", _INTEGER, "an odd kernel size"))
    stride = int(_number(token, fields, "s", "1", _INTEGER, "a stride (1 or 2)"))
    out = int(_number(token, fields, "c", None, _INTEGER, "integer output channels"))
    ratio = float(_number(token, fields, "e", "1", _DECIMAL, "an expansion ratio like 6 or 2.5"))
    if ratio == 0:  # no upper bound here: the width it gives is checked with the block's channels
        raise NasError(f"block {token[:60]}: e{fields['e']} is not allowed; expected a ratio > 0")
    act = _ACT_TOKENS.get(fields.get("n", "hs"))
    if act is None:
        raise NasError(f"block {token[:60]}: activation n{fields['n'][:20]} is not allowed; "
                       "expected nre, nr6, nhs or nsw")
    if "se" in fields and (not _DECIMAL.fullmatch(fields["se"]) or not 0 < float(fields["se"]) <= 1):
        raise NasError(f"block {token[:60]}: se{fields['se'][:20]} is not allowed; expected a "
                       "squeeze-excite ratio above 0 and at most 1, like se0.25")
    groups = int(_number(token, fields, "g", "1", _INTEGER, "a group count")) if "g" in fields else None
    flags = [f for f in fields if f in _FLAGS]
    if (flags or groups is not None) and kind == "dsa":
        raise NasError(f"block {token[:60]}: {flags[0] if flags else 'g'} is not allowed on a dsa block")
    targets = [_FLAGS[f][0] for f in flags]
    if len(set(targets)) < len(targets):
        twice = next(t for t in targets if targets.count(t) > 1)
        raise NasError(f"block {token[:60]}: {' and '.join(f for f in flags if _FLAGS[f][0] == twice)} "
                       f"both set {twice}; give one")
    se_flags = [f for f in flags if _FLAGS[f][0].startswith("se_")]
    if se_flags and "se" not in fields:
        raise NasError(f"block {token[:60]}: {se_flags[0]} needs a squeeze-excite (se<ratio>)")
    if kind == "ds" and ratio != 1:
        raise NasError(f"block {token[:60]}: e{fields['e']} is not allowed; a ds block has no expansion (e1)")
    blocks = []
    for i in range(repeat):
        d = {"type": _TYPES[kind], "kernel": kernel, "out": out, "stride": stride if i == 0 else 1,
             "act": act}
        if "e" in fields or _TYPES[kind] == "ir":
            d["exp"] = _expanded(cin, ratio)
        if "se" in fields or _TYPES[kind] == "ir":
            d["se"] = "se" in fields
        if "se" in fields and float(fields["se"]) != 0.25:
            d["se_ratio"] = float(fields["se"])
        if kind == "ir" and d["exp"] == cin:
            d["expand_conv"] = True  # timm's ir block always has its 1x1 expansion conv
        d.update(_FLAGS[f] for f in flags)
        if groups is not None:
            d["groups"] = groups
        if d.get("residual") is False and not (d["stride"] == 1 and cin == out):
            del d["residual"]  # timm's noskip on a block without a residual changes nothing
        blocks.append(block_from_dict(f"block {token[:60]}", d, cin))
        cin = out
    return blocks


def decode_blocks(text: str, in_channels: int) -> tuple[Block, ...]:
    """Blocks from a space- or comma-separated block string; `in_channels` is the stem's output.
    Each block passes the same checks as a block of a JSON file (arch.block_from_dict)."""
    blocks: list[Block] = []
    cin = in_channels
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        blocks.extend(_decode_one(token, cin, MAX_BLOCKS - len(blocks)))
        cin = blocks[-1].out
    if not blocks:
        raise NasError("block string: empty; expected blocks like 'ir_r1_k3_s1_e1_c16_nre'")
    return tuple(blocks)


def _expanded(cin: int, ratio: float) -> int:
    """Expanded channels of ratio `ratio` on `cin` input channels; e1 keeps the input width."""
    return cin if ratio == 1 else make_divisible(cin * ratio, 8)


def _ratio(exp: int, cin: int) -> str:
    """The shortest decimal ratio that decodes back to exactly `exp` channels."""
    if exp == cin:
        return "1"
    for digits in range(0, 5):
        text = f"{exp / cin:.{digits}f}".rstrip("0").rstrip(".")
        if text and float(text) > 0 and _expanded(cin, float(text)) == exp:
            return text
    raise NasError(f"expanded width {exp} cannot be written as a ratio of {cin} input channels")


def _encode_one(b: Block, cin: int) -> str:
    if b.type == "ds":
        return f"dsa_r1_k{b.kernel}_s{b.stride}_c{b.out}_n{_ACT_NAMES[b.act]}"
    se = f"_se{b.se_ratio if b.se_ratio is not None else 0.25:g}" if b.se else ""
    if b.se:
        se += "".join(f"_{_FLAG_NAMES[(k, getattr(b, k))]}" for k in ("se_base", "se_round", "se_act", "se_gate")
                      if (k, getattr(b, k)) in _FLAG_NAMES)
    skip = "_noskip" if b.residual is False and b.stride == 1 and cin == b.out else ""
    skip += (f"_g{b.groups}" if b.groups is not None else "") + ("_bias" if b.bias else "")
    act = f"_n{_ACT_NAMES[b.act]}"
    if b.exp == cin and not b.expand_conv:  # timm's ds: no expansion conv
        return f"ds_r1_k{b.kernel}_s{b.stride}_c{b.out}{se}{skip}{act}"
    return f"ir_r1_k{b.kernel}_s{b.stride}_e{_ratio(b.exp, cin)}_c{b.out}{se}{skip}{act}"


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
