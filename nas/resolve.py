"""Turn what a user types for ARCH into an architecture: a baseline name, a JSON file, or a
timm-style block string."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nas.arch import Arch, load_arch
from nas.baselines import baseline_names, load_baseline, load_reference, reference_names
from nas.blockstring import decode_blocks, looks_like_block_string
from nas.errors import NasError
from nas.fileio import short


def resolve_arch(text: str, width: float | None = None, resolution: int | None = None,
                 num_classes: int | None = None) -> Arch:
    """The architecture named by `text`, with optional alpha / rho / class-count overrides.

    A name is a baseline of search_spaces/baselines/ or a published network of
    latency_tables/published_archs/ (`nas show efficientnet_b0`).
    A block string (`ir_r1_k3_s1_e1_c16_nre ir_r1_k3_s2_e4_c24_nre ...`) takes its stem and head
    from MobileNetV3-Large. Whatever the source, the result passes the checks of a JSON file
    (`arch.arch_from_dict`), overrides included.
    """
    if not text.strip():
        raise NasError(f"architecture {text!r} is empty; expected a baseline ({', '.join(baseline_names())}), "
                       f"a JSON file or a block string like 'ir_r1_k3_s1_e1_c16_nre'")
    if text in reference_names():  # a baseline or a network of latency_tables/published_archs/
        arch = load_reference(text)
    elif _names_a_file(text):
        arch = load_arch(text)
    elif looks_like_block_string(text):
        template = load_baseline("mobilenet_v3_large")
        arch = replace(template, name="from_block_string",
                       blocks=decode_blocks(text, template.stem.out))
    else:
        raise NasError(f"architecture {short(text)} is neither a baseline or published network "
                       f"({', '.join(reference_names())}), "
                       f"a JSON file, nor a block string like 'ir_r1_k3_s1_e1_c16_nre'")
    return arch.with_overrides(width=width, resolution=resolution, num_classes=num_classes)


def _names_a_file(text: str) -> bool:
    """True for a .json name or an existing path (False for text no file system accepts)."""
    try:
        return Path(text).suffix == ".json" or Path(text).exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False
