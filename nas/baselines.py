"""The reference networks kept as architecture files in `search_spaces/baselines/`."""

from __future__ import annotations

from nas.arch import Arch, load_arch
from nas.errors import NasError
from nas.paths import BASELINES


def baseline_names() -> list[str]:
    """Names of the shipped baselines, sorted."""
    return sorted(p.stem for p in BASELINES.glob("*.json"))


def load_baseline(name: str) -> Arch:
    """The baseline architecture called `name` (e.g. "mobilenet_v3_large")."""
    path = BASELINES / f"{name}.json"
    if not path.is_file():
        raise NasError(f"baseline {name!r} is unknown; known baselines: {', '.join(baseline_names())}")
    return load_arch(path)
