"""nas: hardware-aware architecture search for MobileNetV3-style networks.

    from nas import load_arch, build, arch_cost, load

The names below are imported on first use (PEP 562), so `import nas.cli` does not load torch
before the command line can answer a Ctrl-C.
"""

from importlib import import_module
from typing import Any

_WHERE = {"Arch": "nas.arch", "Block": "nas.arch", "Head": "nas.arch", "Layer": "nas.arch", "Stem": "nas.arch",
          "arch_from_dict": "nas.arch", "arch_to_dict": "nas.arch", "load_arch": "nas.arch",
          "save_arch": "nas.arch", "build": "nas.builder", "arch_cost": "nas.cost", "NasError": "nas.errors",
          "resolve_arch": "nas.resolve", "load": "nas.export"}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
