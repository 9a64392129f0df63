"""Tests for nas.search.confirm: the finalists retrained at more seeds before the winner is named."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

import nas.train
from nas.arch import arch_to_dict
from nas.baselines import load_baseline
from nas.proxy.runner import read_rows
from nas.recipe import load_recipe
from nas.search.rundir import confirmed_winner
from nas.search.trials_table import TRIAL_COLUMNS
from nas.search.confirm import confirm_finalists, confirmation_markdown, finalists


def frame(rows):
    """A trials table: (number, accuracy, latency_ms, baseline) rows, every one COMPLETE."""
    arch = json.dumps(arch_to_dict(load_baseline("mobilenet_v3_small")))
    return pd.DataFrame([{"number": n, "state": "COMPLETE", "baseline": b, "arch": arch.replace(
        '"mobilenet_v3_small"', f'"net{n}"'), "block_string": "", "params": 1, "madds": 1, "latency_ms": lat,
        "accuracy_epochs": "[]", "accuracy": acc, "imagenet_estimate": None, "seconds": 1.0, "device": "cpu",
        "trial_params": "{}"} for n, acc, lat, b in rows], columns=TRIAL_COLUMNS)


TRIALS = frame([(0, 0.50, 50.0, "mobilenet_v3_large"), (1, 0.60, 40.0, ""), (2, 0.58, 45.0, ""),
                (3, 0.70, 70.0, ""), (4, 0.55, 30.0, ""), (5, 0.40, 20.0, "")])


def fake_training(truth: dict[str, float], calls: list):
    """train_arch stand-in: the network's accuracy is truth[name] plus a seed-dependent wobble."""
    def train(arch, recipe, **_):
        calls.append((arch.name, recipe.seed))
        return SimpleNamespace(accuracy=truth[arch.name] + 0.001 * recipe.seed, seconds=0.1)
    return train


def test_finalists_are_the_best_within_budget_plus_the_best_baseline():
    chosen = finalists(TRIALS, 60.0, 2)
    assert list(chosen["number"]) == [1, 2, 0]  # trial 3 is over budget; baseline 0 joins
    assert list(finalists(TRIALS, 60.0, 4)["number"]) == [1, 2, 4, 0]
    assert list(finalists(TRIALS, None, 1)["number"]) == [3, 0]


def test_the_winner_is_the_best_mean_over_seeds_not_the_luckiest_draw(tmp_path, monkeypatch):
    calls = []
    # trial 1 topped the single-seed ranking at 0.60, but trial 2 is better at every other seed
    monkeypatch.setattr(nas.train, "train_arch", fake_training({"net1": 0.55, "net2": 0.59, "net0": 0.50}, calls))
    recipe = load_recipe(seed=0)
    c = confirm_finalists(TRIALS, tmp_path, 60.0, recipe, "proxy", k=2, seeds=2)
    assert sorted(calls) == sorted((f"net{n}", s) for n in (0, 1, 2) for s in (1, 2))
    assert c["single_seed_winner"] == 1 and c["winner"] == 2 and c["runner_up"] == 1
    means = {f["trial"]: f["mean"] for f in c["finalists"]}
    assert means[2] == pytest.approx((0.58 + 0.591 + 0.592) / 3)
    assert c["margin"] == pytest.approx(means[2] - means[1])
    assert c["margin_noise"] > 0
    assert json.loads((tmp_path / "confirmation.json").read_text())["winner"] == 2
    assert confirmed_winner(tmp_path, TRIALS) == 2
    text = "\n".join(confirmation_markdown(c))
    assert "Winner: trial 2, ahead of trial 1" in text and "single-seed ranking had put trial 1 first" in text
    # the published baseline among the finalists: the winner's margin over it, and that margin's noise
    v3 = next(f for f in c["finalists"] if f["baseline"])
    margin = f"{means[2] - v3['mean']:.4f}"
    assert f"Against mobilenet_v3_large (trial 0): the winner is ahead by {margin} (noise of that margin: +-" in text


def test_a_confirmation_resumes_without_retraining(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(nas.train, "train_arch", fake_training({"net1": 0.6, "net2": 0.5, "net0": 0.4}, calls))
    first = confirm_finalists(TRIALS, tmp_path, 60.0, load_recipe(), "proxy", k=2, seeds=1)
    assert len(calls) == 3 and len(read_rows(tmp_path / "confirm.csv")) == 3
    again = confirm_finalists(TRIALS, tmp_path, 60.0, load_recipe(), "proxy", k=2, seeds=1)
    assert len(calls) == 3 and again == first


def test_no_confirmation_without_finalists_or_seeds(tmp_path):
    assert confirm_finalists(TRIALS, tmp_path, 60.0, load_recipe(), "proxy", k=0) is None
    assert confirm_finalists(TRIALS, tmp_path, 1.0, load_recipe(), "proxy", k=3) is None
    assert not (tmp_path / "confirmation.json").exists()


@pytest.fixture
def reversed_estimate(monkeypatch) -> pd.DataFrame:
    """An ImageNet estimate that ranks the lowest proxy accuracy first (50 - 100 x accuracy), the
    trials scored by it, and trainings that give net5 0.3 and net0 0.4 (+0.001 a seed)."""
    from nas.estimate import MODELS, Estimate, ImagenetEstimate
    from nas.search import policy

    reverse = ImagenetEstimate(Estimate("proxy+cost", MODELS["proxy+cost"], (50.0, 0, 0, 0, -100.0, 0)),
                               "test", {}, 0, {}, "test")
    monkeypatch.setattr(policy, "_estimate", lambda recipe_items: reverse)
    monkeypatch.setattr(nas.train, "train_arch", fake_training({"net5": 0.3, "net0": 0.4}, []))
    return TRIALS.assign(imagenet_estimate=50 - 100 * TRIALS["accuracy"])


def test_a_run_ranked_by_the_estimate_confirms_by_the_estimate(tmp_path, reversed_estimate):
    trials = reversed_estimate
    c = confirm_finalists(trials, tmp_path, 60.0, load_recipe(), "imagenet-estimate", k=2, seeds=1)
    assert c["ranked_by"] == "imagenet_estimate"
    assert [f["trial"] for f in c["finalists"]] == [5, 0]  # the lowest accuracies rank first
    assert c["finalists"][0]["scores"]["1"] == pytest.approx(50 - 100 * 0.301)
    assert "ImageNet estimate (%)" in "\n".join(confirmation_markdown(c))


def test_confirm_by_accuracy_names_the_estimate_finalists_by_their_trained_accuracy(tmp_path, reversed_estimate):
    """The finalists are still the estimate's best, but the winner is the best mean proxy accuracy."""
    trials = reversed_estimate
    by_score = confirm_finalists(trials, tmp_path / "a", 60.0, load_recipe(), "imagenet-estimate", k=1, seeds=1)
    by_accuracy = confirm_finalists(trials, tmp_path / "b", 60.0, load_recipe(), "imagenet-estimate", k=1, seeds=1,
                                    by="accuracy")
    assert {f["trial"] for f in by_score["finalists"]} == {f["trial"] for f in by_accuracy["finalists"]} == {5, 0}
    assert by_score["winner"] == 5 and by_accuracy["winner"] == 0  # accuracy (0.50, 0.401) beats (0.40, 0.301)
    assert by_accuracy["ranked_by"] == "accuracy"
    assert by_accuracy["finalists"][0]["scores"] == {"0": 0.5, "1": pytest.approx(0.401)}
    assert "(proxy accuracy" in "\n".join(confirmation_markdown(by_accuracy))
