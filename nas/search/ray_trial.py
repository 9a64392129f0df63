"""The Ray engine's trial, on a Ray worker: what it asks Tune for, where it trains, and the
results it reports ("scored", one "epoch" per epoch, "final"; see nas.search.ray_engine)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import ray
from ray import tune

from nas.search.config import TrialSettings
from nas.search.policy import Status, trial_score
from nas.search.trial import (TrialOutcome, fit_baseline, keep_checkpoint, objective_values, recipe_of,
                              run_trial)
from nas.space import Space, sample_arch


def trial_resources(recipe: dict, trials_per_gpu: int) -> dict[str, float]:
    """CPUs per trial = the `recipe` record's torch threads. When the cluster has GPUs and the
    recipe may use one (device auto or cuda), each trial also asks for 1/`trials_per_gpu` of a
    GPU, and trains on the one Ray gives it (`_trial_device`)."""
    recipe = recipe_of(recipe)
    resources = {"cpu": float(recipe.threads)}
    if ray.cluster_resources().get("GPU", 0) > 0 and recipe.device in ("auto", "cuda"):
        resources["gpu"] = gpu_share(trials_per_gpu)
    return resources


def gpu_share(trials_per_gpu: int) -> float:
    """The GPU fraction one trial requests, rounded down to Ray's resource precision (1e-4)."""
    return math.floor(1e4 / max(1, trials_per_gpu)) / 1e4


def _trial_device(recipe: dict) -> str | None:
    """Where a Ray trial trains: the GPU Ray assigned it (the only one it can see: cuda:0), or
    the `recipe` record's device when it was given none."""
    if ray.get_gpu_ids() and recipe_of(recipe).device in ("auto", "cuda"):
        return "cuda:0"
    return None


# ---------------------------------------------------------------------------------------------
# The trial, on a Ray worker


def trainable(params: dict, settings: TrialSettings, space: Space) -> None:
    """One Tune trial: rebuild the architecture from the flat sampled `params` (or fit the
    baseline they name) in the search `space`, run the shared trial function,
    report per epoch, save the checkpoint of a completed trial, and report the outcome.
    Over-budget architectures report at once."""
    number = params["number"]
    if params.get("baseline"):
        arch = fit_baseline(params["baseline"], settings.target, settings.budget_ms, space.width_mult,
                            space.resolution)
    else:
        arch = sample_arch(space, lambda name, _choices: params[name], name=f"trial_{number}")
    scored: list[TrialOutcome] = []

    def on_scored(outcome: TrialOutcome) -> None:
        scored.append(outcome)
        tune.report(_result("scored", outcome, settings))

    def report(epoch: int, accuracy: float) -> None:
        partial = replace(scored[0], status=Status.COMPLETE, accuracy=accuracy)
        tune.report(_result("epoch", partial, settings, epoch=epoch + 1))

    outcome = run_trial(arch, settings, report, on_scored=on_scored, device=_trial_device(settings.recipe))
    if outcome.status == Status.COMPLETE:
        outcome = keep_checkpoint(outcome, settings, number)
    tune.report(_result("final", outcome, settings, epoch=len(outcome.epochs)))


def _result(phase: str, outcome: TrialOutcome, settings: TrialSettings, epoch: int = 0) -> dict:
    """A Tune result. Every phase carries the metrics the scheduler and searcher read (accuracy
    0..1, latency in milliseconds, the objective if the trial ended now); "scored" and "final"
    also carry `TrialOutcome.attrs()` as JSON and the id of the Ray node the trial ran on.
    `epoch` counts finished epochs (ASHA's clock)."""
    values = objective_values(outcome, settings)
    score = (trial_score(outcome.arch, outcome.accuracy, settings.score, settings.recipe)
             if outcome.accuracy is not None else 0.0)
    return {"phase": phase, "epoch": epoch, "accuracy": float(outcome.accuracy or 0.0), "score": float(score),
            "latency_ms": float(outcome.latency_ms),
            "objective": float(values[0] if isinstance(values, tuple) else values),
            "attrs": json.dumps(outcome.attrs()) if phase != "epoch" else "",
            "node": ray.get_runtime_context().get_node_id() if phase != "epoch" else ""}
