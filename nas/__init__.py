"""nas: hardware-aware architecture search for MobileNetV3-style networks.

    from nas import load_arch, build, arch_cost, load
"""

from nas.arch import Arch, Block, Head, Layer, Stem, arch_from_dict, arch_to_dict, load_arch, save_arch
from nas.builder import build
from nas.cost import arch_cost
from nas.errors import NasError
from nas.export import load
from nas.resolve import resolve_arch

__all__ = ["Arch", "Block", "Head", "Layer", "Stem", "arch_from_dict", "arch_to_dict", "load_arch",
           "save_arch", "build", "arch_cost", "NasError", "resolve_arch", "load"]
