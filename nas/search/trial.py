"""The one trial function both engines run: score latency first, reject over budget, else train.

Engines differ only in how they schedule trials and how a per-epoch report can stop one
(`report` raises the engine's own "pruned" exception, which propagates unchanged).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from nas.arch import Arch, arch_to_dict
from nas.baselines import load_baseline
from nas.blockstring import encode_blocks
from nas.checkpoint import save_checkpoint as write_checkpoint
from nas.cost import arch_cost
from nas.device import describe, resolve
from nas.errors import NasError
from nas.latency import predict_latency
from nas.recipe import Recipe, proxy_arch, recipe_from_record
from nas.search.config import MNAS_W, TrialSettings
from nas.search.policy import Status, is_pareto, trial_score
from nas.search.trials_table import DEVICE_COLUMN, ESTIMATE_COLUMN
from nas.train import TrainingFailed, train_arch

Report = Callable[[int, float], None]


@dataclass
class TrialOutcome:
    """What one trial produced. status: COMPLETE, REJECTED (over budget, not trained) or FAIL.
    Latency in milliseconds; accuracy 0..1 on the validation split (None unless COMPLETE)."""

    status: str
    arch: Arch
    latency_ms: float
    params: int
    madds: int
    accuracy: float | None = None
    epochs: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    model: torch.nn.Module | None = None
    normalisation: dict | None = None  # the input normalisation the trained model expects
    checkpoint_error: str = ""
    imagenet_estimate: float | None = None  # %, with --score imagenet-estimate (COMPLETE only)
    device: str = ""  # where it trained ("cpu", "cuda:1 (NVIDIA ...)"); empty when not trained

    def attrs(self) -> dict:
        """JSON-safe attributes an engine stores with the trial."""
        attrs = {"status": self.status, "arch": json.dumps(arch_to_dict(self.arch)),
                "block_string": encode_blocks(self.arch.blocks, self.arch.stem.out),
                "params": self.params, "madds": self.madds, "latency_ms": round(self.latency_ms, 4),
                "accuracy": self.accuracy, "accuracy_epochs": self.epochs, "seconds": round(self.seconds, 2), "error": self.error}
        if self.checkpoint_error:
            attrs["checkpoint_error"] = self.checkpoint_error
        if self.imagenet_estimate is not None:
            attrs[ESTIMATE_COLUMN] = round(self.imagenet_estimate, 4)
        if self.device:
            attrs[DEVICE_COLUMN] = self.device
        return attrs


def run_trial(arch: Arch, settings: TrialSettings, report: Report | None = None,
              on_scored: Callable[[TrialOutcome], None] | None = None,
              device: str | None = None) -> TrialOutcome:
    """Predict the latency of `arch` on `settings.target`; over `settings.budget_ms` -> REJECTED
    without training; otherwise train the proxy with the run's recipe on `device` (default: the recipe's),
    reporting accuracy per epoch. `on_scored(outcome)` sees the architecture, latency and device
    before training starts, so an engine can store them even if the trial is then pruned or
    killed."""
    latency = predict_latency(arch, settings.target).latency_ms
    cost = arch_cost(arch)
    outcome = TrialOutcome(Status.REJECTED, arch, latency, cost.params, cost.madds)
    if latency > settings.budget_ms:
        return outcome
    recipe = recipe_of(settings.recipe)
    place = resolve(device or recipe.device)
    outcome = replace(outcome, device=describe(place))
    if on_scored is not None:
        on_scored(replace(outcome, status=Status.RUNNING))
    if settings.evaluator == "supernet":
        return _subnet_outcome(outcome, arch, settings)
    try:
        result = train_arch(arch, recipe, report=report, device=str(place))
    except TrainingFailed as e:
        return replace(outcome, status=Status.FAIL, error=str(e))
    estimate = (trial_score(arch, result.accuracy, settings.score, settings.recipe)
                if settings.score == "imagenet-estimate" else None)
    return replace(outcome, status=Status.COMPLETE, accuracy=result.accuracy, epochs=result.epochs,
                   seconds=result.seconds, model=result.model, imagenet_estimate=estimate,
                   normalisation=result.normalisation)


@functools.cache
def subnet_evaluator(folder: str):
    """The `nas.supernet.SubnetEvaluator` of a supernet folder, loaded once per process."""
    from nas.supernet import SubnetEvaluator

    return SubnetEvaluator(folder)


def _subnet_outcome(outcome: TrialOutcome, arch: Arch, settings: TrialSettings) -> TrialOutcome:
    """`arch` scored as a subnet of the run's supernet (`--evaluator supernet`): its validation
    accuracy after BatchNorm recalibration, in about a second. No weights of its own are kept: the
    finalists are trained before the winner is named (confirmation, rungs)."""
    start = time.perf_counter()
    try:
        accuracy = subnet_evaluator(settings.supernet).accuracy(arch)
    except NasError as e:
        return replace(outcome, status=Status.FAIL, error=str(e))
    return replace(outcome, status=Status.COMPLETE, accuracy=accuracy, epochs=[accuracy],
                   seconds=time.perf_counter() - start)


def recipe_of(record: dict) -> Recipe:
    """The recipe a search's trials train with, from its record (`SearchConfig.recipe`)."""
    return recipe_from_record(record)


def objective_values(outcome: TrialOutcome, settings: TrialSettings) -> float | tuple[float, float]:
    """The value(s) the sampler maximises, from the trial's score S (`policy.trial_score`: proxy
    accuracy or ImageNet estimate): S (constrained), MnasNet's reward S x (LAT/T)^-0.07 (mnas),
    or (S, latency) (pareto). Rejected and failed trials score 0."""
    accuracy = (trial_score(outcome.arch, outcome.accuracy, settings.score, settings.recipe)
                if outcome.status == Status.COMPLETE else 0.0)
    if is_pareto(settings.objective):
        return accuracy, outcome.latency_ms
    if settings.objective == "mnas":
        return accuracy * (outcome.latency_ms / settings.budget_ms) ** MNAS_W
    return accuracy


def constraint(latency_ms: float, budget_ms: float) -> float:
    """Optuna's constraint value: <= 0 means within budget."""
    return latency_ms - budget_ms


def fit_baseline(name: str, target: str, budget_ms: float, widths: tuple[float, ...],
                 resolutions: tuple[int, ...]) -> Arch:
    """The baseline as published if its latency on `target` fits `budget_ms`, else scaled down: the widest, then
    highest-resolution (alpha, rho) from the space's choices whose latency fits; the smallest
    such pair if none fits (it is then rejected like any over-budget trial)."""
    arch = load_baseline(name)
    if predict_latency(arch, target).latency_ms <= budget_ms:
        return arch
    pairs = [(w, r) for w in sorted(widths, reverse=True) if w <= arch.width_mult
             for r in sorted(resolutions, reverse=True) if r <= arch.resolution]
    for w, r in pairs:
        scaled = arch.with_overrides(width=w, resolution=r)
        if predict_latency(scaled, target).latency_ms <= budget_ms:
            return replace(scaled, name=f"{name}_{w:g}_{r}")
    w, r = pairs[-1] if pairs else (arch.width_mult, arch.resolution)
    return replace(arch.with_overrides(width=w, resolution=r), name=f"{name}_{w:g}_{r}")


def save_checkpoint(outcome: TrialOutcome, settings: TrialSettings, number: int) -> Path:
    """Save a trained trial's weights with both architectures and its number to the run folder's
    checkpoints/trial_<number>.pt, whole or not at all (NasError for an I/O error)."""
    recipe = recipe_of(settings.recipe)
    num_classes = outcome.model.classifier.out_features
    return write_checkpoint(Path(settings.out) / "checkpoints" / f"trial_{number}.pt", outcome.arch,
                            outcome.model.state_dict(), proxy_arch=proxy_arch(outcome.arch, recipe, num_classes),
                            accuracy=outcome.accuracy, dataset=recipe.dataset, trial=number,
                            normalisation=outcome.normalisation)


def keep_checkpoint(outcome: TrialOutcome, settings: TrialSettings, number: int) -> TrialOutcome:
    """`save_checkpoint`, but a checkpoint that cannot be written (disk full, `checkpoints/` a
    file) does not undo the training: the outcome stays COMPLETE with `checkpoint_error` set, and
    one warning line goes to stderr. A trial scored as a subnet (no model of its own) keeps none."""
    if outcome.model is None:
        return outcome
    try:
        save_checkpoint(outcome, settings, number)
    except NasError as e:
        print(f"warning: trial {number} is kept without its checkpoint: {e}", file=sys.stderr)
        return replace(outcome, checkpoint_error=str(e))
    return outcome
