"""Tests for nas.search.rungs: the best trials of a search trained again with more data, rung by rung."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

import nas.search.rungs as rungs_module
import nas.train
from nas.arch import arch_to_dict
from nas.baselines import load_baseline
from nas.proxy.runner import read_rows
from nas.recipe import load_recipe, recipe_to_dict
from nas.search.confirm import confirm_finalists
from nas.search.rungs import promoted, rung_budget, rung_recipe, run_rungs, rungs_markdown, top_recipe
from nas.search.trials_table import TRIAL_COLUMNS, best_row, finalists, read_trials_csv, with_rungs
from conftest import assert_one_line
from conftest import search_cli as search

AVAILABLE = 48_000  # CIFAR-10's 50,000 training images less the default 2,000 validation images


def frame(rows):
    """A trials table: (number, state, accuracy, latency_ms, baseline) rows."""
    arch = json.dumps(arch_to_dict(load_baseline("mobilenet_v3_small")))
    return with_rungs(pd.DataFrame([{c: None for c in TRIAL_COLUMNS} | {
        "number": n, "state": state, "baseline": b, "arch": arch.replace('"mobilenet_v3_small"', f'"net{n}"'),
        "block_string": "", "params": 1, "madds": 1, "latency_ms": lat, "accuracy_epochs": "[]", "accuracy": acc,
        "seconds": 1.0, "device": "cpu", "trial_params": "{}"} for n, state, acc, lat, b in rows],
        columns=TRIAL_COLUMNS), None)


# 8 completed within the 60 ms budget (0 is a baseline), one over it, one pruned
TRIALS = frame([(0, "COMPLETE", 0.30, 50.0, "mobilenet_v3_large"), (1, "COMPLETE", 0.60, 40.0, ""),
                (2, "COMPLETE", 0.58, 45.0, ""), (3, "COMPLETE", 0.55, 30.0, ""), (4, "COMPLETE", 0.50, 35.0, ""),
                (5, "COMPLETE", 0.45, 20.0, ""), (6, "COMPLETE", 0.40, 25.0, ""), (7, "COMPLETE", 0.35, 55.0, ""),
                (8, "COMPLETE", 0.90, 70.0, ""), (9, "PRUNED", None, 30.0, "")])

# What the longer trainings find: trial 3 learns slowly and is the best network; 1 learns fast.
LONG = {"net0": 0.62, "net1": 0.61, "net2": 0.63, "net3": 0.70, "net4": 0.50}


def fake_training(calls: list):
    """train_arch stand-in: rung trainings (more images than the tiny subset) score LONG[name]."""
    def train(arch, recipe, **_):
        calls.append((arch.name, recipe.train_subset, recipe.epochs, recipe.seed))
        return SimpleNamespace(accuracy=LONG[arch.name] + 0.001 * recipe.seed, seconds=0.1, model=None,
                               normalisation=None)
    return train


@pytest.fixture
def trained(monkeypatch):
    """Rung trainings recorded in a list instead of run; no checkpoints written."""
    calls: list = []
    monkeypatch.setattr(nas.train, "train_arch", fake_training(calls))
    monkeypatch.setattr(nas.train, "train_images", lambda recipe: AVAILABLE)
    monkeypatch.setattr(rungs_module, "_save_weights", lambda job, result: None)
    return calls


def test_a_rung_grows_the_images_first_then_the_epochs():
    recipe = load_recipe()  # 2,500 images x 4 epochs
    assert [rung_budget(recipe, r, 3, AVAILABLE) for r in range(4)] == [(2500, 4), (7500, 4), (22500, 4),
                                                                        (48000, 6)]
    assert rung_budget(replace(recipe, train_subset=0), 1, 3, AVAILABLE) == (48000, 12)  # all images already
    assert rung_recipe(recipe, 0, 3, AVAILABLE) is recipe
    assert (rung_recipe(recipe, 2, 2, AVAILABLE).train_subset, rung_recipe(recipe, 2, 2, AVAILABLE).epochs) == (10000, 4)


def test_promotion_keeps_the_best_third_within_budget_plus_the_best_baseline():
    # 8 completed within budget: ceil(8 / 3) = 3 best, then baseline 0; 8 is over budget, 9 pruned
    assert list(promoted(TRIALS, 60.0, 3)["number"]) == [1, 2, 3, 0]
    assert list(promoted(TRIALS, 60.0, 2)["number"]) == [1, 2, 3, 4, 0]
    assert list(promoted(TRIALS[TRIALS["number"].isin([1, 2])], 60.0, 3)["number"]) == [1]


def test_the_winner_comes_from_the_top_rung(tmp_path, trained):
    result = run_rungs(TRIALS, tmp_path, 60.0, load_recipe(), rungs=2, eta=3)
    # rung 1: 1, 2, 3 and baseline 0 at 7,500 images; rung 2: ceil(4 / 3) = 2 best (3, 2) plus baseline 0
    assert sorted(trained) == sorted([(f"net{n}", 7500, 4, 0) for n in (0, 1, 2, 3)]
                                     + [(f"net{n}", 22500, 4, 0) for n in (0, 2, 3)])
    assert [(lv["rung"], lv["trials"], lv["best"]) for lv in result["rungs"]] == [
        (0, [0, 1, 2, 3, 4, 5, 6, 7], 1), (1, [0, 1, 2, 3], 3), (2, [0, 2, 3], 3)]
    assert [lv["budget"] for lv in result["rungs"]] == [1, 3, 9]
    assert result["trials"]["1"] == {"rung": 1, "accuracy": 0.61, "score": 0.61}
    assert json.loads((tmp_path / "rungs.json").read_text()) == result
    t = with_rungs(TRIALS, result)
    rung = t.set_index("number")["rung"]
    assert list(rung.loc[[0, 1, 3, 4, 8, 9]].fillna(-1)) == [2, 1, 2, 0, 0, -1]  # 8: over budget, at rung 0
    assert int(best_row(t, 60.0)["number"]) == 3  # trial 1 led rung 0
    assert float(best_row(t, 60.0)["accuracy"]) == 0.55  # the columns of rung 0 keep their meaning
    assert list(finalists(t, 60.0, 1)["number"]) == [3, 0]
    text = "\n".join(rungs_markdown(result))
    assert "| 2 | 22,500 x 4 | 9x | 3 |" in text and "rung 2 (22,500 images x 4 epochs)" in text


def test_a_killed_rung_stage_resumes_training_only_what_is_missing(tmp_path, trained):
    first = run_rungs(TRIALS, tmp_path, 60.0, load_recipe(), rungs=1, eta=3)
    assert len(trained) == 4
    lines = (tmp_path / "rungs.csv").read_text().splitlines(keepends=True)
    (tmp_path / "rungs.csv").write_text("".join(lines[:-1]) + lines[-1][:20])  # killed while writing the last row
    assert run_rungs(TRIALS, tmp_path, 60.0, load_recipe(), rungs=1, eta=3) == first
    assert len(trained) == 5 and len(read_rows(tmp_path / "rungs.csv")) == 4
    run_rungs(TRIALS, tmp_path, 60.0, load_recipe(), rungs=2, eta=3)  # one rung more: only rung 2 is trained
    assert len(trained) == 8 and all(images == 22500 for _, images, _, _ in trained[5:])


def test_a_failed_rung_training_leaves_the_trial_at_its_rung(tmp_path, trained, monkeypatch):
    from nas.train import TrainingFailed

    train = nas.train.train_arch

    def failing(arch, recipe, **kw):
        if arch.name == "net3":
            raise TrainingFailed("diverged", 0, "loss is nan")
        return train(arch, recipe, **kw)
    monkeypatch.setattr(nas.train, "train_arch", failing)
    result = run_rungs(TRIALS, tmp_path, 60.0, load_recipe(), rungs=1, eta=3)
    assert result["rungs"][1]["failed"] == [3] and "3" not in result["trials"]
    assert int(best_row(with_rungs(TRIALS, result), 60.0)["number"]) == 2


def test_the_finalists_are_confirmed_with_the_top_rungs_recipe(tmp_path, trained):
    recipe = load_recipe()
    result = run_rungs(TRIALS, tmp_path, 60.0, recipe, rungs=1, eta=3)
    top, level = top_recipe(result, recipe)
    assert (top.train_subset, top.epochs, level["rung"]) == (7500, 4, 1)
    c = confirm_finalists(with_rungs(TRIALS, result), tmp_path, 60.0, top, "proxy", k=2, seeds=1, rung=level,
                          score_recipe=recipe_to_dict(recipe))
    assert sorted(trained[4:]) == [("net0", 7500, 4, 1), ("net2", 7500, 4, 1), ("net3", 7500, 4, 1)]
    assert [f["trial"] for f in c["finalists"]] == [3, 2, 0] and c["winner"] == 3
    assert c["finalists"][0]["scores"] == {"0": 0.70, "1": 0.701}  # seed 0's score is rung 1's
    assert c["rung"] == {"rung": 1, "images": 7500, "epochs": 4}
    assert {r["key"] for r in read_rows(tmp_path / "confirm.csv")} == {f"trial {n}@seed 1@7500x4" for n in (0, 2, 3)}


# ---------------------------------------------------------------- the command




@pytest.mark.parametrize("extra, rungs, seeds", [
    ((), 0, 2),                                              # the estimate: no rungs, 2 more seeds
    (("--score", "proxy"), 2, 1),                            # proxy accuracy: 2 rungs, 1 more seed at the top
    (("--score", "proxy", "--rungs", "0"), 0, 2),
    (("--score", "proxy", "--confirm-seeds", "3"), 2, 3),
    (("--rungs", "1"), 1, 1),
    (("--score", "imagenet-estimate", "--confirm-seeds", "auto", "--rungs", "auto"), 0, 2)])
def test_rungs_and_confirm_seeds_auto_follow_the_score_asked_for(tmp_path, fake_search, extra, rungs, seeds):
    code, text = search("--budget", "60ms", "--out", str(tmp_path / "run"), "--json", *extra)
    assert code == 0, text
    (config,) = fake_search
    assert (config.rungs, config.confirm_seeds) == (rungs, seeds)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert f"rungs: {rungs}\n" in saved and f"confirm_seeds: {seeds}\n" in saved


def test_a_resumed_proxy_search_keeps_its_rungs_and_their_seeds(tmp_path, fake_search):
    out = str(tmp_path / "run")
    assert search("--budget", "60ms", "--out", out, "--json", "--score", "proxy")[0] == 0
    code, text = search("--budget", "60ms", "--out", out, "--json", "--resume")
    assert code == 0, text
    assert (fake_search[-1].rungs, fake_search[-1].confirm_seeds) == (2, 1)
    code, text = search("--budget", "60ms", "--out", out, "--json", "--resume", "--rungs", "0")
    assert code == 0, text
    assert (fake_search[-1].rungs, fake_search[-1].confirm_seeds) == (0, 2)


@pytest.mark.parametrize("flag", ["--rungs", "--confirm-seeds"])
def test_a_rung_count_that_is_not_a_number_is_one_line_exit_2(tmp_path, fake_search, flag):
    code, text = search("--budget", "60ms", flag, "two", "--out", str(tmp_path / "run"))
    assert code == 2 and f"{flag} 'two' is not allowed; expected auto or an integer" in text
    assert not (tmp_path / "run").exists() and fake_search == []


@pytest.mark.parametrize("flag, value, allowed", [("--rungs", "-1", "from 0 to 5"), ("--rungs", "6", "from 0 to 5"),
                                                   ("--eta", "1", "from 2 to 10")])
def test_a_bad_rung_setting_is_one_line_exit_2_and_writes_nothing(tmp_path, flag, value, allowed):
    code, text = search("--budget", "40ms", flag, value, "--out", str(tmp_path / "run"))
    assert code == 2 and f"{flag} {value} is not allowed; expected an integer {allowed}" in text
    assert len(set(text.strip().splitlines())) == 1 and not (tmp_path / "run").exists()  # output holds stderr twice


def test_a_search_with_rungs_names_its_winner_at_the_top_rung_and_resumes(tmp_path, tiny_recipe):
    from nas.checkpoint import load_checkpoint
    from nas.report import write_report

    out = tmp_path / "run"
    args = ["--budget", "40ms", "--trials", "4", "--recipe", tiny_recipe, "--out", str(out), "--seed", "3",
            "--pruner", "none", "--confirm", "1", "--confirm-seeds", "1"]
    code, text = search(*args, "--rungs", "1", "--eta", "2")
    assert code == 0, text
    trials = read_trials_csv(out / "trials.csv")
    assert list(pd.read_csv(out / "trials.csv").columns) == TRIAL_COLUMNS
    done = trials[(trials["state"] == "COMPLETE") & (trials["latency_ms"] <= 40)]
    at_one = done[done["rung"] == 1]
    assert len(at_one) >= (len(done) + 1) // 2 and (done["rung"].isin([0, 1])).all()
    rows = read_rows(out / "rungs.csv")
    assert {int(r["trial"]) for r in rows} == set(at_one["number"])
    assert {r["key"].split("@")[1] for r in rows} == {"512x2"}
    confirmation = json.loads((out / "confirmation.json").read_text())
    assert confirmation["rung"] == {"rung": 1, "images": 512, "epochs": 2}
    assert confirmation["winner"] in set(at_one["number"])
    winner = at_one[at_one["number"] == confirmation["winner"]].iloc[0]
    assert json.loads((out / "best.json").read_text())["name"] == json.loads(winner["arch"])["name"]
    assert load_checkpoint(out / "checkpoints" / f"trial_{confirmation['winner']}.pt").accuracy == \
        pytest.approx(winner["rung_accuracy"])
    summary = (out / "summary.md").read_text()
    assert "## Rungs" in summary and "| 1 | 512 x 2 | 2x |" in summary and "trained at rung 1" in summary
    report = write_report(out).files[0].read_text()
    assert "## Rungs" in report and f"Trial {confirmation['winner']} " in report
    # resumed with --resume alone: the saved rungs, nothing trained again
    code, text = search("--out", str(out), "--budget", "40ms", "--resume", "--trials", "4")
    assert code == 0, text
    assert len(read_rows(out / "rungs.csv")) == len(rows) and "## Rungs" in (out / "summary.md").read_text()
    # --rungs 0: the winner is rung 0's again
    code, text = search(*args, "--rungs", "0")
    assert code == 0, text
    assert not (out / "rungs.json").exists() and "## Rungs" not in (out / "summary.md").read_text()
    assert read_trials_csv(out / "trials.csv")["rung"].max() == 0
