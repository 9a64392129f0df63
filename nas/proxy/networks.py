"""The networks file of the fidelity study: published networks with their ImageNet top-1.

    from nas.proxy.networks import load_networks
    nets = load_networks()          # the shipped yardstick, nas/_data/imagenet_top1/imagenet_top1.yaml

Each entry names a reference network (a baseline or a published architecture), a width, a scaling
rule, an optional variant (relu, minimalistic, hswish_from_N) and a resolution; it is built exactly
as published (`nas.transforms.scale_like`, `apply_variant`) and carries its parameters,
multiply-adds and predicted Pixel latency (ms).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from nas.arch import Arch
from nas.baselines import load_reference, reference_names
from nas.cost import arch_cost
from nas.errors import NasError
from nas.latency.predict import predict_latency
from nas.paths import PACKAGE_DATA
from nas.transforms import SCALINGS, apply_variant, scale_like

DEFAULT_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "imagenet_top1.yaml"
HELD_OUT_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "held_out.yaml"  # kept aside: checks, never fits
# published NAS networks of other families, for fits beside the yardstick (issue 34)
NEW_FAMILY_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "new_families.yaml"
# the rest of the kept-aside set (HardCoRe-NAS, Single-Path NAS, ProxylessNAS-CPU, the V3 ablations,
# the MnasNet-A1 family): checks, never fits
KEPT_ASIDE_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "kept_aside.yaml"
FAMILIES = {"mobilenet_v1": "V1", "mobilenet_v2": "V2", "mobilenet_v3_large": "V3-Large",
            "mobilenet_v3_small": "V3-Small", "mnasnet_a1": "MnasNet-A1", "mnasnet_b1": "MnasNet-B1",
            "proxylessnas_gpu": "ProxylessNAS", "proxylessnas_mobile": "ProxylessNAS",
            "proxylessnas_mobile_14": "ProxylessNAS", "proxylessnas_cpu": "ProxylessNAS",
            **{f"hardcorenas_{c}": "HardCoRe-NAS" for c in "abcdef"}, "spnasnet": "Single-Path NAS"}
LATENCY_TARGET = "pixel"

_FIELDS = {"name", "base", "width", "resolution", "top1", "source", "scaling", "variant"}
_RESOLUTION_RANGE = (32, 1024)
_MAX_WIDTH = 4.0

# ---------------------------------------------------------------- the networks file

@dataclass(frozen=True)
class Network:
    """One published network: its entry in the networks file, its architecture as published and
    its zero-cost figures. top1: published ImageNet top-1 (%); latency_ms: predicted on Pixel."""

    name: str
    base: str
    width: float
    resolution: int
    top1: float
    source: str
    scaling: str
    variant: str | None
    arch: Arch
    params: int
    madds: int
    latency_ms: float

    @property
    def family(self) -> str:
        """V1, V2, V3-Large or V3-Small (the base's name for other bases)."""
        return FAMILIES.get(self.base, self.base)


def slug(name: str) -> str:
    """A file- and progress-bar-friendly architecture name: "V3-Large 1.0 r256" -> "v3-large-1.0-r256"."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def load_networks(path: str | Path | None = None) -> list[Network]:
    """The networks of a networks YAML file (None: the shipped imagenet_top1.yaml), in file order.
    Raises NasError naming the file, the entry and the field for anything malformed."""
    path = Path(path) if path is not None else DEFAULT_NETWORKS
    if not path.is_file():
        raise NasError(f"{path}: no such networks file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or set(data) != {"networks"} or not isinstance(data["networks"], list):
        raise NasError(f"{path}: expected a mapping with one key, networks: a list of entries")
    if not data["networks"]:
        raise NasError(f"{path}: networks: the list is empty; expected at least one entry")
    networks, seen = [], set()
    for i, entry in enumerate(data["networks"]):
        net = _network(entry, f"{path}: networks[{i}]")
        if net.name in seen:
            raise NasError(f"{path}: networks[{i}]: name: {net.name!r} is not allowed; "
                           f"names must be unique and it is already used")
        seen.add(net.name)
        networks.append(net)
    return networks


def load_network_files(paths: Sequence[str | Path]) -> list[Network]:
    """The networks of several networks files, in order (no paths: the shipped yardstick). Raises
    NasError for a name two files share, naming both."""
    if not paths:
        return load_networks()
    networks, where = [], {}
    for path in paths:
        for net in load_networks(path):
            if net.name in where:
                raise NasError(f"{path}: name: {net.name!r} is not allowed; it is already used in {where[net.name]}, "
                               f"and names must be unique across --networks files")
            where[net.name] = path
            networks.append(net)
    return networks


def _network(entry: Any, where: str) -> Network:
    """One validated entry, built as published."""
    if not isinstance(entry, dict):
        raise NasError(f"{where}: expected a mapping with {', '.join(sorted(_FIELDS))}, "
                       f"got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NasError(f"{where}: name: {name!r} is not allowed; expected a non-empty string")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise NasError(f"{where}: {unknown[0]}: unknown field; allowed fields are {', '.join(sorted(_FIELDS))}")

    def bad(field: str, allowed: str) -> NasError:
        return NasError(f"{where}: {field}: {entry.get(field)!r} is not allowed; expected {allowed}")

    base, width, res = entry.get("base"), entry.get("width"), entry.get("resolution")
    top1, source = entry.get("top1"), entry.get("source")
    scaling, variant = entry.get("scaling", "v3"), entry.get("variant")
    if base not in reference_names():
        raise bad("base", f"one of {', '.join(reference_names())}")
    if not _is_number(width) or not 0 < width <= _MAX_WIDTH:
        raise bad("width", f"a number in (0, {_MAX_WIDTH:g}]")
    lo, hi = _RESOLUTION_RANGE
    if not _is_int(res) or not lo <= res <= hi:
        raise bad("resolution", f"an integer in [{lo}, {hi}] (pixels)")
    if not _is_number(top1) or not 0 < top1 <= 100:
        raise bad("top1", "a number in (0, 100] (ImageNet top-1, %)")
    if not isinstance(source, str) or not source.strip():
        raise bad("source", "a non-empty string naming where top1 was read")
    if scaling not in SCALINGS:
        raise bad("scaling", f"one of {', '.join(SCALINGS)}")
    if variant is not None and (not isinstance(variant, str) or not variant):
        raise bad("variant", "relu, minimalistic or hswish_from_N")
    try:
        arch = apply_variant(scale_like(load_reference(base), float(width), scaling), variant)
    except NasError as e:
        raise NasError(f"{where}: {e}") from None
    arch = dataclasses.replace(arch, name=slug(name), resolution=res)
    cost = arch_cost(arch)
    return Network(name, base, float(width), res, float(top1), source, scaling, variant, arch,
                   cost.params, cost.madds, predict_latency(arch, LATENCY_TARGET).latency_ms)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def select(networks: list[Network], only: Sequence[str]) -> list[Network]:
    """The networks whose name contains any of `only` (case-insensitive); all of them if `only`
    is empty. Raises NasError for a substring that matches nothing."""
    if not only:
        return networks
    for part in only:
        if not any(part.lower() in n.name.lower() for n in networks):
            raise NasError(f"--only {part!r} matches no network; names are like "
                           f"{', '.join(repr(n.name) for n in networks[:3])}")
    return [n for n in networks if any(p.lower() in n.name.lower() for p in only)]

