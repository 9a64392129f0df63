"""The proxy-training recipe as data, and how an ImageNet architecture is adapted to it.

A `Recipe` holds every knob of a proxy trial (data subset, image size, epochs, optimizer,
schedule, augmentation, seed, CPU settings, stride relaxation). Its defaults live in
`experiments/proxy_recipe.yaml`; `load_recipe(path, **overrides)` reads a file and applies
overrides, rejecting unknown knobs and bad values with a NasError.

`proxy_arch(arch, recipe, num_classes)` is the adaptation of a 224-px architecture to small
proxy images: the input side becomes `proxy_side(arch, recipe)` (`image_size`, or with
`resolution_aware` `image_size` scaled by the network's resolution over 224), the classifier gets
the data set's classes,
and the first `relax_strides` stride-2 ops (stem first, then blocks in order) get stride 1 so the
feature maps of a 32-px image stay as large as the early maps of a bigger image. Everything else
(kernels, expansions, widths, SE, activations, width multiplier) is kept. Latency is scored on
the original architecture at its deployment resolution, never on the proxy.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from nas.arch import Arch
from nas.errors import NasError
from nas.fileio import read_yaml, short
from nas.paths import PROXY_RECIPE

DEFAULT_RECIPE = PROXY_RECIPE
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "linear", "constant")
AUGMENTS = ("crop-flip", "flip", "none")


@dataclass(frozen=True)
class Recipe:
    """Every knob of one proxy trial (meanings and units in KNOB_HELP). The values here are
    those of experiments/proxy_recipe.yaml (a test keeps them equal), and fill in the knobs a
    recipe file leaves out."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    train_subset: int = 2500
    val_size: int = 2000
    image_size: int = 32
    resolution_aware: bool = True
    epochs: int = 4
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-5
    schedule: str = "cosine"
    warmup: float = 0.3
    label_smoothing: float = 0.1
    augment: str = "crop-flip"
    seed: int = 0
    threads: int = 1
    channels_last: bool = True
    compile: bool = False
    relax_strides: int = 0
    eval_batch_size: int = 500
    bn_recalibrate: int = 1000
    zero_init_residual: bool = True


KNOB_HELP = {
    "dataset": "data set spec for nas.data.load_dataset (cifar10, fashion-mnist, imagefolder:PATH)",
    "data_dir": "folder of the original data files; null uses the shipped copy",
    "train_subset": "training images per epoch, a seeded subset of the non-validation images (0: all)",
    "val_size": "images held out of the training set and scored after every epoch",
    "image_size": "proxy input side in pixels (the data set is resized to it); with "
                  "resolution_aware, the side of a 224-px network",
    "resolution_aware": "scale the proxy side with the network's resolution rho: "
                        "round(image_size * rho / 224), at least 8",
    "epochs": "passes over the training subset; a report is made after each",
    "batch_size": "images per optimizer step",
    "optimizer": "sgd (Nesterov momentum) or adamw",
    "lr": "peak learning rate",
    "momentum": "SGD momentum, in [0, 1)",
    "weight_decay": "decoupled for adamw, L2 for sgd; on conv and linear weights only",
    "schedule": "decay after warmup: cosine or linear (both to 0) or constant",
    "warmup": "epochs of linear warmup from 0 to lr (fractions allowed)",
    "label_smoothing": "cross-entropy label smoothing, in [0, 1)",
    "augment": "crop-flip (random crop after 4 px zero padding + horizontal flip), flip or none",
    "seed": "seeds weights, validation split, subset, batch order, augmentation and dropout",
    "threads": "torch intra-op threads during a trial",
    "channels_last": "NHWC memory format for weights and activations",
    "compile": "torch.compile the model (its compile time is paid by every trial)",
    "relax_strides": "leading stride-2 ops (stem first, then blocks) trained at stride 1",
    "eval_batch_size": "images per forward pass when scoring",
    "bn_recalibrate": "training images (no augmentation) forwarded to re-estimate BatchNorm "
                      "statistics before each evaluation (0: keep the running averages)",
    "zero_init_residual": "start every residual block's last BatchNorm scale at 0, so each block "
                          "begins as the identity (Goyal et al. 2017)",
}


_KNOBS = {f.name: f for f in fields(Recipe)}
# name -> (type, minimum, allowed choices); None where it does not apply
_RULES: dict[str, tuple[type, float | None, tuple | None]] = {
    "dataset": (str, None, None), "data_dir": (str, None, None),
    "train_subset": (int, 0, None), "val_size": (int, 1, None), "image_size": (int, 8, None),
    "resolution_aware": (bool, None, None),
    "epochs": (int, 1, None), "batch_size": (int, 1, None),
    "optimizer": (str, None, OPTIMIZERS), "lr": (float, 0, None), "momentum": (float, 0, None),
    "weight_decay": (float, 0, None), "schedule": (str, None, SCHEDULES), "warmup": (float, 0, None),
    "label_smoothing": (float, 0, None), "augment": (str, None, AUGMENTS), "seed": (int, 0, None),
    "threads": (int, 1, None), "channels_last": (bool, None, None), "compile": (bool, None, None),
    "relax_strides": (int, 0, None), "eval_batch_size": (int, 1, None),
    "bn_recalibrate": (int, 0, None), "zero_init_residual": (bool, None, None),
}
_BELOW_ONE = {"momentum", "label_smoothing"}
_MAXIMUM = {"threads": os.cpu_count() or 1}  # more threads than cores only slows a trial down


def knob_names() -> list[str]:
    """Every recipe knob, in declaration order."""
    return list(_KNOBS)


def _check_knob(name: str, value: Any, where: str) -> Any:
    """The validated value of one knob; NasError naming it and what is allowed otherwise."""
    if name not in _KNOBS:
        raise NasError(f"{where}{str(name)[:40]}: unknown recipe knob; allowed knobs are {', '.join(_KNOBS)}")
    kind, minimum, choices = _RULES[name]
    if value is None and name == "data_dir":
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise NasError(f"{where}{name}: {short(value)} is not allowed; expected true or false")
        return value
    if kind is str:
        if not isinstance(value, str) or not value or (choices and value not in choices):
            allowed = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise NasError(f"{where}{name}: {short(value)} is not allowed; expected {allowed}")
        return value
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = is_int if kind is int else (is_int or isinstance(value, float)) and math.isfinite(value)
    too_big = ok and (name in _BELOW_ONE and value >= 1 or value > _MAXIMUM.get(name, math.inf))
    if not ok or value < minimum or too_big or (name == "lr" and value == 0):
        what = "an integer" if kind is int else "a number"
        bound = f"in [{minimum}, 1)" if name in _BELOW_ONE else (
            "> 0" if name == "lr" else f"from {minimum} to {_MAXIMUM[name]} (this machine's cores)"
            if name in _MAXIMUM else f">= {minimum}")
        raise NasError(f"{where}{name}: {short(value)} is not allowed; expected {what} {bound}")
    return kind(value)


# Knobs added after searches were first recorded, at the value that reproduces a recipe written
# before they existed (a stored recipe without them ran without them).
ADDED_KNOBS = {"resolution_aware": False, "bn_recalibrate": 0, "zero_init_residual": False}


def recipe_from_record(knobs: dict) -> Recipe:
    """The recipe a stored run's knobs describe: ADDED_KNOBS for knobs it predates, the defaults
    for the rest of what is missing. NasError for an unknown knob or a bad value."""
    return make_recipe(**(ADDED_KNOBS | knobs))


def make_recipe(base: Recipe | None = None, **overrides: Any) -> Recipe:
    """`base` (default: the dataclass defaults) with validated overrides; None values are skipped
    except for data_dir."""
    base = base or Recipe()
    changes = {k: _check_knob(k, v, "") for k, v in overrides.items() if v is not None or k == "data_dir"}
    return replace(base, **changes)


def load_recipe(path: str | Path | None = None, **overrides: Any) -> Recipe:
    """Read a recipe YAML file (None: experiments/proxy_recipe.yaml) and apply `overrides`
    (None values ignored). Knobs missing from the file take the dataclass defaults.
    Raises NasError for a missing or malformed file, an unknown knob or a bad value."""
    path = Path(path) if path is not None else DEFAULT_RECIPE
    data = read_yaml(path, "recipe file") or {}
    if not isinstance(data, dict):
        raise NasError(f"{path}: expected a mapping of recipe knobs, got {type(data).__name__}")
    base = Recipe(**{k: _check_knob(k, v, f"{path}: ") for k, v in data.items()})
    return make_recipe(base, **{k: v for k, v in overrides.items() if v is not None})


def recipe_to_dict(r: Recipe) -> dict:
    """The recipe as a plain dict (knob -> value), ready for YAML or JSON."""
    return asdict(r)


REFERENCE_RESOLUTION = 224  # the deployment side at which a resolution-aware proxy uses image_size
MIN_SIDE = 8


def proxy_side(arch: Arch, recipe: Recipe) -> int:
    """The proxy input side in pixels for `arch`: `recipe.image_size`, or, when the recipe is
    resolution-aware, `image_size * arch.resolution / 224` rounded (at least 8 px), so a network
    deployed at 128 px trains on proportionally coarser images than the same one at 224 px."""
    if not recipe.resolution_aware:
        return recipe.image_size
    return max(MIN_SIDE, round(recipe.image_size * arch.resolution / REFERENCE_RESOLUTION))


def proxy_arch(arch: Arch, recipe: Recipe, num_classes: int) -> Arch:
    """The architecture as trained by the proxy: input side `proxy_side(arch, recipe)` pixels,
    `num_classes` outputs, and the first `recipe.relax_strides` stride-2 ops (stem, then blocks
    in order) at stride 1. Kernels, widths, expansions, SE, activations and width_mult are kept;
    `arch` itself is not changed (it is frozen)."""
    budget = recipe.relax_strides
    stem = arch.stem
    if budget and stem.stride == 2:
        stem, budget = replace(stem, stride=1), budget - 1
    blocks = []
    for b in arch.blocks:
        if budget and b.stride == 2:
            b, budget = replace(b, stride=1), budget - 1
        blocks.append(b)
    return replace(arch, resolution=proxy_side(arch, recipe), num_classes=num_classes, stem=stem,
                   blocks=tuple(blocks))
