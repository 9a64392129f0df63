"""The reference networks kept as architecture files: the baselines of `search_spaces/baselines/`
(MobileNet V1, V2, V3-Large, V3-Small) and the other published networks of
`latency_tables/published_archs/` (MnasNet, ProxylessNAS, HardCoRe-NAS, ...), which are not
baselines of a search but are built, timed and trained as published."""

from __future__ import annotations

from nas.arch import Arch, load_arch
from nas.errors import NasError
from nas.paths import BASELINES, PUBLISHED_ARCHS


def baseline_names() -> list[str]:
    """Names of the shipped baselines, sorted."""
    return sorted(p.stem for p in BASELINES.glob("*.json"))


def load_baseline(name: str) -> Arch:
    """The baseline architecture called `name` (e.g. "mobilenet_v3_large")."""
    path = BASELINES / f"{name}.json"
    if not path.is_file():
        raise NasError(f"baseline {name!r} is unknown; known baselines: {', '.join(baseline_names())}")
    return load_arch(path)


def reference_names() -> list[str]:
    """Names of every shipped reference network: the baselines, then the other published ones."""
    return baseline_names() + sorted(p.stem for p in PUBLISHED_ARCHS.glob("*.json"))


def load_reference(name: str) -> Arch:
    """The baseline or other published network called `name` (e.g. "proxylessnas_mobile")."""
    if name in baseline_names():
        return load_baseline(name)
    path = PUBLISHED_ARCHS / f"{name}.json"
    if not path.is_file():
        raise NasError(f"network {name!r} is neither a baseline nor a published network; "
                       f"known: {', '.join(reference_names())}")
    return load_arch(path)
