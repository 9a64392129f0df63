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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nas.arch import Arch
from nas.device import check_spec
from nas.errors import NasError
from nas.fileio import read_yaml, short
from nas.paths import PROXY_RECIPE

DEFAULT_RECIPE = PROXY_RECIPE
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "linear", "constant")
AUGMENTS = ("crop-flip", "flip", "none")


PRECISIONS = ("fp32", "bf16")
MAX_SEED = 2**32 - 1  # what numpy and Optuna's samplers accept


def _knob(default: Any, help: str, minimum: float | None = None, choices: tuple | None = None,
          below_one: bool = False, maximum: float | None = None) -> Any:
    """A Recipe field with everything said about the knob in one place: its default, its help
    (used by `nas train --help` and the docs), and the values it allows."""
    return field(default=default, metadata={"help": help, "minimum": minimum, "choices": choices,
                                            "below_one": below_one, "maximum": maximum})


@dataclass(frozen=True)
class Recipe:
    """Every knob of one proxy trial. The defaults here are those of experiments/proxy_recipe.yaml
    (a test keeps them equal), and fill in the knobs a recipe file leaves out."""

    dataset: str = _knob("cifar10", "data set spec for nas.data.load_dataset (cifar10, fashion-mnist, "
                                    "imagefolder:PATH)")
    data_dir: str | None = _knob(None, "folder of the original data files; null uses the shipped copy")
    train_subset: int = _knob(2500, "training images per epoch, a seeded subset of the non-validation "
                                    "images (0: all)", minimum=0)
    val_size: int = _knob(2000, "images held out of the training set and scored after every epoch", minimum=1)
    image_size: int = _knob(32, "proxy input side in pixels (the data set is resized to it); with "
                                "resolution_aware, the side of a 224-px network", minimum=8)
    resolution_aware: bool = _knob(True, "scale the proxy side with the network's resolution rho: "
                                         "round(image_size * rho / 224), at least 8")
    epochs: int = _knob(4, "passes over the training subset; a report is made after each", minimum=1)
    batch_size: int = _knob(128, "images per optimizer step", minimum=1)
    optimizer: str = _knob("sgd", "sgd (Nesterov momentum) or adamw", choices=OPTIMIZERS)
    lr: float = _knob(0.05, "peak learning rate", minimum=0)
    momentum: float = _knob(0.9, "SGD momentum, in [0, 1)", minimum=0, below_one=True)
    weight_decay: float = _knob(5e-5, "decoupled for adamw, L2 for sgd; on conv and linear weights only",
                                minimum=0)
    schedule: str = _knob("cosine", "decay after warmup: cosine or linear (both to 0) or constant",
                          choices=SCHEDULES)
    warmup: float = _knob(0.3, "epochs of linear warmup from 0 to lr (fractions allowed)", minimum=0)
    label_smoothing: float = _knob(0.1, "cross-entropy label smoothing, in [0, 1)", minimum=0, below_one=True)
    augment: str = _knob("crop-flip", "crop-flip (random crop after 4 px zero padding + horizontal flip), "
                                      "flip or none", choices=AUGMENTS)
    seed: int = _knob(0, "seeds weights, validation split, subset, batch order, augmentation and dropout",
                      minimum=0, maximum=MAX_SEED)
    threads: int = _knob(1, "torch intra-op threads during a trial", minimum=1,
                         maximum=os.cpu_count() or 1)  # more threads than cores only slows a trial
    channels_last: bool = _knob(True, "NHWC memory format for weights and activations")
    compile: bool = _knob(False, "torch.compile the model (its compile time is paid by every trial)")
    relax_strides: int = _knob(0, "leading stride-2 ops (stem first, then blocks) trained at stride 1",
                               minimum=0)
    eval_batch_size: int = _knob(500, "images per forward pass when scoring on the CPU (an "
                                      "accelerator scores in batches of at least 4096)", minimum=1)
    bn_recalibrate: int = _knob(1000, "training images (no augmentation) forwarded to re-estimate "
                                      "BatchNorm statistics before each evaluation (0: keep the "
                                      "running averages)", minimum=0)
    zero_init_residual: bool = _knob(True, "start every residual block's last BatchNorm scale at 0, so "
                                           "each block begins as the identity (Goyal et al. 2017)")
    device: str = _knob("auto", "where a trial trains: auto (CUDA, then MPS, then CPU), cpu, cuda, "
                                "cuda:N or mps; the data set and augmentation live there too")
    precision: str = _knob("fp32", "fp32, or bf16 autocast for forward and loss (weights and "
                                   "optimizer stay fp32); pays on GPUs, rarely on CPUs",
                           choices=PRECISIONS)


_KNOBS = {f.name: f for f in fields(Recipe)}
KNOB_HELP = {name: f.metadata["help"] for name, f in _KNOBS.items()}


def knob_names() -> list[str]:
    """Every recipe knob, in declaration order."""
    return list(_KNOBS)


def _check_knob(name: str, value: Any, where: str) -> Any:
    """The validated value of one knob; NasError naming it and what is allowed otherwise."""
    if name not in _KNOBS:
        raise NasError(f"{where}{str(name)[:40]}: unknown recipe knob; allowed knobs are {', '.join(_KNOBS)}")
    f = _KNOBS[name]
    rule = f.metadata
    kind = type(f.default) if f.default is not None else str
    if value is None and name == "data_dir":
        return None
    if name == "device":
        try:
            return check_spec(value)
        except NasError as e:
            raise NasError(f"{where}{e}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise NasError(f"{where}{name}: {short(value)} is not allowed; expected true or false")
        return value
    choices = rule["choices"]
    if kind is str:
        if not isinstance(value, str) or not value or (choices and value not in choices):
            allowed = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise NasError(f"{where}{name}: {short(value)} is not allowed; expected {allowed}")
        return value
    minimum, maximum = rule["minimum"], rule["maximum"]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = is_int if kind is int else (is_int or isinstance(value, float)) and math.isfinite(value)
    too_big = ok and (rule["below_one"] and value >= 1 or maximum is not None and value > maximum)
    if not ok or value < minimum or too_big or (name == "lr" and value == 0):
        what = "an integer" if kind is int else "a number"
        bound = f"in [{minimum}, 1)" if rule["below_one"] else (
            "> 0" if name == "lr" else f"from {minimum} to {maximum}" + (" (this machine's cores)" if name == "threads" else "")
            if maximum is not None else f">= {minimum}")
        raise NasError(f"{where}{name}: {short(value)} is not allowed; expected {what} {bound}")
    return kind(value)


# Knobs added after searches were first recorded, at the value that reproduces a recipe written
# before they existed (a stored recipe without them ran without them).
ADDED_KNOBS = {"resolution_aware": False, "bn_recalibrate": 0, "zero_init_residual": False,
               "device": "cpu", "precision": "fp32"}


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
