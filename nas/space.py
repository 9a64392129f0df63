"""Search spaces as data files: load, validate, count, and sample architectures define-by-run.

A space is stages with fixed strides; each stage chooses its depth and output width, then each of
its blocks chooses kernel, expansion ratio, squeeze-excite and activation. Alpha (width multiplier)
and rho (input resolution) are global choices. Sampling goes through a `choose(name, choices)`
callback, so an Optuna trial, a Ray search or a plain random generator drive the same code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from nas.arch import (ACTIVATIONS, MAX_BLOCKS, MAX_CHANNELS, MAX_NUM_CLASSES, MAX_RESOLUTION,
                      MAX_WIDTH_MULT, Arch, Block, Head, Stem, check_choice, check_float, check_int,
                      check_kernel, check_name, make_divisible, stem_from_dict, validate)
from nas.errors import NasError
from nas.fileio import field_name, read_yaml, short
from nas.paths import SEARCH_SPACES

Choose = Callable[[str, list], Any]
DEFAULT_SPACE = SEARCH_SPACES / "mobilenet_v3.yaml"
_BLOCK_KEYS = ("kernel", "expand", "se", "act")
MAX_EXPAND = 64.0  # expansion and head conv ratios; the widths they give are checked as channels


@dataclass(frozen=True)
class Stage:
    """The choices of one stage. `expand` holds expansion *ratios* (e.g. 3.0, 6.0), which
    sampling turns into `Block.exp`, a channel count: make_divisible(cin * ratio, 8)."""

    stride: int
    depth: tuple[int, ...]
    width: tuple[int, ...]
    kernel: tuple[int, ...]
    expand: tuple[float, ...]
    se: tuple[bool, ...]
    act: tuple[str, ...]


@dataclass(frozen=True)
class Space:
    name: str
    num_classes: int
    resolution: tuple[int, ...]
    width_mult: tuple[float, ...]
    stem: Stem
    stages: tuple[Stage, ...]
    head_conv_ratio: float
    head_hidden: tuple[int, ...]
    head_act: str
    head_dropout: float
    path: str = ""

    def size(self) -> int:
        """Number of distinct architectures the space can produce."""
        total = len(self.resolution) * len(self.width_mult) * len(self.head_hidden)
        for st in self.stages:
            per_block = len(st.kernel) * len(st.expand) * len(st.se) * len(st.act)
            total *= len(st.width) * sum(per_block ** d for d in st.depth)
        return total


def _choices(where: str, value: Any, check: Callable[[str, Any], Any]) -> tuple:
    """A non-empty list of choices (a single value means a list of one), each passed through
    `check(where, value)`, which raises NasError naming the bad entry. The values are kept as
    written (3 stays 3, not 3.0), since samplers record them."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise NasError(f"{where}: an empty list is not allowed; expected at least one choice")
    for i, v in enumerate(values):
        check(f"{where}[{i}]" if isinstance(value, list) else where, v)
    return tuple(values)


def _ints(lo: int, hi: int) -> Callable[[str, Any], int]:
    return lambda where, v: check_int(where, v, lo, hi)


def _mapping(where: str, d: Any, allowed: set) -> dict:
    if not isinstance(d, dict):
        raise NasError(f"{where}: {short(d)} is not allowed; expected a mapping with "
                       f"{', '.join(sorted(allowed))}")
    unknown = sorted(field_name(k) for k in set(d) - allowed)
    if unknown:
        raise NasError(f"{where}.{unknown[0]}: unknown field; allowed fields are {', '.join(sorted(allowed))}")
    return d


def _stage(where: str, d: Any, block: dict) -> Stage:
    _mapping(where, d, {"stride", "depth", "width", *_BLOCK_KEYS})
    stride = check_choice(f"{where}.stride", d.get("stride"), (1, 2))
    merged = {**block, **{k: d[k] for k in _BLOCK_KEYS if k in d}}
    for key in ("depth", "width", *_BLOCK_KEYS):
        if key not in merged and key not in d:
            raise NasError(f"{where}.{key}: missing" + (", and the space has no block-wide default"
                                                         if key in _BLOCK_KEYS else ""))
    return Stage(
        stride=stride,
        depth=_choices(f"{where}.depth", d["depth"], _ints(1, MAX_BLOCKS)),
        width=_choices(f"{where}.width", d["width"], _ints(1, MAX_CHANNELS)),
        kernel=_choices(f"{where}.kernel", merged["kernel"], check_kernel),
        expand=_choices(f"{where}.expand", merged["expand"],
                        lambda w, v: check_float(w, v, 1, MAX_EXPAND)),
        se=_choices(f"{where}.se", merged["se"], lambda w, v: check_choice(w, v, (False, True))),
        act=_choices(f"{where}.act", merged["act"], lambda w, v: check_choice(w, v, ACTIVATIONS)))


def space_from_dict(d: Any, path: str = "") -> Space:
    """Validate a decoded space file. Besides every field, its cheapest and its largest
    architecture must pass the checks of an architecture file, so nothing it samples fails later."""
    d = _mapping("space", d, {"name", "num_classes", "resolution", "width_mult", "stem", "block",
                              "stages", "head"})
    if not isinstance(d.get("stages"), list) or not d["stages"]:
        raise NasError("space.stages: expected a non-empty list of stages")
    head = _mapping("space.head", d.get("head", {}), {"conv_ratio", "hidden", "act", "dropout"})
    block = _mapping("space.block", d.get("block", {}), set(_BLOCK_KEYS))
    space = Space(
        name=check_name("space.name", d.get("name", Path(path).stem or "space")),
        num_classes=check_int("space.num_classes", d.get("num_classes", 1000), 1, MAX_NUM_CLASSES),
        resolution=_choices("space.resolution", d.get("resolution", 224), _ints(8, MAX_RESOLUTION)),
        width_mult=_choices("space.width_mult", d.get("width_mult", 1.0),
                            lambda w, v: check_float(w, v, 0, MAX_WIDTH_MULT, open_lo=True)),
        stem=stem_from_dict(d.get("stem", {"out": 16}), "space.stem"),
        stages=tuple(_stage(f"space.stages[{i}]", s, block) for i, s in enumerate(d["stages"])),
        head_conv_ratio=check_float("space.head.conv_ratio", head.get("conv_ratio", 6), 0, MAX_EXPAND,
                                    open_lo=True),
        head_hidden=_choices("space.head.hidden", head.get("hidden", 1280), _ints(1, MAX_CHANNELS)),
        head_act=check_choice("space.head.act", head.get("act", "hswish"), ACTIVATIONS),
        head_dropout=check_float("space.head.dropout", head.get("dropout", 0.2), 0, 1, open_hi=True),
        path=path)
    for corner, sample in (("cheapest", smallest_arch), ("largest", largest_arch)):
        try:
            sample(space)  # sample_arch validates what it builds
        except NasError as e:
            raise NasError(f"space: its {corner} architecture is not allowed: {e}") from None
    return space


def load_space(path: str | Path | None = None) -> Space:
    """Read a search-space YAML file (default: search_spaces/mobilenet_v3.yaml)."""
    path = Path(path) if path is not None else DEFAULT_SPACE
    data = read_yaml(path, "search-space file")
    try:
        return space_from_dict(data, str(path))
    except NasError as e:
        raise NasError(f"{path}: {e}") from None


def with_resolutions(space: Space, resolutions: tuple[int, ...]) -> Space:
    """`space` with its rho choices narrowed to `resolutions`, each one of its own; NasError naming
    the value and the space's choices otherwise."""
    for r in resolutions:
        if r not in space.resolution:
            raise NasError(f"--resolution {r} is not a rho of the space {space.path or space.name}; "
                           f"expected some of {', '.join(map(str, space.resolution))}, all, or auto")
    return replace(space, resolution=tuple(r for r in space.resolution if r in resolutions))


def sample_arch(space: Space, choose: Choose, name: str = "candidate") -> Arch:
    """Build one architecture, asking `choose(param_name, choices)` for every decision:
    rho, alpha and the head first, then per stage its depth and width, then that many blocks."""
    resolution = choose("resolution", list(space.resolution))
    width_mult = choose("width_mult", list(space.width_mult))
    hidden = choose("head_hidden", list(space.head_hidden))
    blocks, cin = [], space.stem.out
    for i, st in enumerate(space.stages):
        depth = choose(f"s{i}_depth", list(st.depth))
        width = choose(f"s{i}_width", list(st.width))
        for j in range(depth):
            p = f"s{i}_b{j}"
            expand = choose(f"{p}_expand", list(st.expand))
            blocks.append(Block(type="ir", kernel=choose(f"{p}_kernel", list(st.kernel)), out=width,
                                stride=st.stride if j == 0 else 1, act=choose(f"{p}_act", list(st.act)),
                                exp=cin if expand == 1 else make_divisible(cin * expand, 8),
                                se=choose(f"{p}_se", list(st.se))))
            cin = width
    head = Head(conv=make_divisible(cin * space.head_conv_ratio, 8), hidden=hidden,
                act=space.head_act, dropout=space.head_dropout)
    return validate(Arch(name=name, resolution=resolution, width_mult=float(width_mult),
                         num_classes=space.num_classes, stem=space.stem, blocks=tuple(blocks), head=head))


def random_arch(space: Space, rng: random.Random, name: str = "random") -> Arch:
    """A uniformly sampled architecture (each choice uniform, depth first)."""
    return sample_arch(space, lambda _, choices: rng.choice(choices), name)


def smallest_arch(space: Space) -> Arch:
    """The cheapest corner of the space: fewest, narrowest, cheapest blocks at the lowest alpha and rho."""
    cheapest = {"act": "relu", "se": False}

    def choose(param: str, choices: list) -> Any:
        key = param.rsplit("_", 1)[-1]
        if key in cheapest and cheapest[key] in choices:
            return cheapest[key]
        return min(choices)

    return sample_arch(space, choose, "smallest")


def largest_arch(space: Space) -> Arch:
    """The most expensive corner of the space: deepest, widest blocks at the highest alpha and rho."""
    return sample_arch(space, lambda _, choices: max(choices), "largest")
