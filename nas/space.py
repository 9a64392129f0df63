"""Search spaces as data files: load, validate, count, and sample architectures define-by-run.

A space is stages with fixed strides; each stage chooses its depth and output width, then each of
its blocks chooses kernel, expansion ratio, squeeze-excite and activation. Alpha (width multiplier)
and rho (input resolution) are global choices. Sampling goes through a `choose(name, choices)`
callback, so an Optuna trial, a Ray search or a plain random generator drive the same code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from nas.arch import ACTIVATIONS, Arch, Block, Head, Stem, arch_from_dict, make_divisible
from nas.errors import NasError
from nas.paths import SEARCH_SPACES

Choose = Callable[[str, list], Any]
DEFAULT_SPACE = SEARCH_SPACES / "mobilenet_v3.yaml"
_BLOCK_KEYS = ("kernel", "expand", "se", "act")


@dataclass(frozen=True)
class Stage:
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


def _choices(where: str, value: Any, check: Callable[[Any], bool], allowed: str) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values or not all(check(v) for v in values):
        raise NasError(f"{where}: {value!r} is not allowed; expected a non-empty list of {allowed}")
    return tuple(values)


def _is_int(v: Any, minimum: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _stage(where: str, d: Any, block: dict) -> Stage:
    if not isinstance(d, dict):
        raise NasError(f"{where}: expected a mapping with stride, depth, width")
    allowed = {"stride", "depth", "width", *_BLOCK_KEYS}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise NasError(f"{where}.{unknown[0]}: unknown field; allowed fields are {', '.join(sorted(allowed))}")
    if d.get("stride") not in (1, 2):
        raise NasError(f"{where}.stride: {d.get('stride')!r} is not allowed; expected 1 or 2")
    merged = {**block, **{k: d[k] for k in _BLOCK_KEYS if k in d}}
    for key in _BLOCK_KEYS:
        if key not in merged:
            raise NasError(f"{where}.{key}: missing, and the space has no block-wide default")
    return Stage(
        stride=d["stride"],
        depth=_choices(f"{where}.depth", d.get("depth"), _is_int, "integers >= 1"),
        width=_choices(f"{where}.width", d.get("width"), _is_int, "integers >= 1"),
        kernel=_choices(f"{where}.kernel", merged["kernel"], lambda v: _is_int(v) and v % 2 == 1,
                        "odd integers"),
        expand=_choices(f"{where}.expand", merged["expand"],
                        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1,
                        "numbers >= 1"),
        se=_choices(f"{where}.se", merged["se"], lambda v: isinstance(v, bool), "true/false"),
        act=_choices(f"{where}.act", merged["act"], lambda v: v in ACTIVATIONS, ", ".join(ACTIVATIONS)))


def space_from_dict(d: Any, path: str = "") -> Space:
    """Validate a decoded space file."""
    if not isinstance(d, dict):
        raise NasError(f"{path or 'space'}: expected a YAML mapping")
    allowed = {"name", "num_classes", "resolution", "width_mult", "stem", "block", "stages", "head"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise NasError(f"space.{unknown[0]}: unknown field; allowed fields are {', '.join(sorted(allowed))}")
    if not isinstance(d.get("stages"), list) or not d["stages"]:
        raise NasError("space.stages: expected a non-empty list of stages")
    stem_arch = arch_from_dict({"name": "x", "resolution": 224, "num_classes": 1,
                                "stem": d.get("stem", {"out": 16}),
                                "blocks": [{"type": "ds", "kernel": 3, "out": 8, "stride": 1, "act": "relu"}],
                                "head": {"conv": None, "hidden": None}})
    head = d.get("head", {})
    if not isinstance(head, dict) or set(head) - {"conv_ratio", "hidden", "act", "dropout"}:
        raise NasError("space.head: expected a mapping with conv_ratio, hidden, act, dropout")
    block = d.get("block", {})
    return Space(
        name=str(d.get("name", Path(path).stem or "space")),
        num_classes=d.get("num_classes", 1000),
        resolution=_choices("space.resolution", d.get("resolution", 224), lambda v: _is_int(v, 8),
                            "integers >= 8"),
        width_mult=_choices("space.width_mult", d.get("width_mult", 1.0),
                            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
                            "numbers > 0"),
        stem=stem_arch.stem,
        stages=tuple(_stage(f"space.stages[{i}]", s, block) for i, s in enumerate(d["stages"])),
        head_conv_ratio=float(head.get("conv_ratio", 6)),
        head_hidden=_choices("space.head.hidden", head.get("hidden", 1280), _is_int, "integers >= 1"),
        head_act=head.get("act", "hswish"),
        head_dropout=float(head.get("dropout", 0.2)),
        path=path)


def load_space(path: str | Path | None = None) -> Space:
    """Read a search-space YAML file (default: search_spaces/mobilenet_v3.yaml)."""
    path = Path(path) if path is not None else DEFAULT_SPACE
    if not path.is_file():
        raise NasError(f"{path}: no such search-space file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML: {str(e).splitlines()[0]}") from None
    return space_from_dict(data, str(path))


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
    return Arch(name=name, resolution=resolution, width_mult=float(width_mult),
                num_classes=space.num_classes, stem=space.stem, blocks=tuple(blocks), head=head)


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

