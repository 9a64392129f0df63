import optuna
import pytest

from nas.recipe import load_recipe, recipe_to_dict
from nas.search import ray_engine
from nas.search.config import SearchConfig
from nas.search.optuna_engine import make_pruner
from nas.search.policy import first_prunable_report


@pytest.mark.parametrize("epochs,first", [(1, 1), (2, 1), (4, 2), (5, 2), (8, 4)])
def test_the_first_half_of_a_trials_reports_is_never_pruned_on(epochs, first):
    assert first_prunable_report(load_recipe(epochs=epochs)) == first


def _config(tmp_path, pruner="median"):
    return SearchConfig(target="pixel", budget_ms=60.0, out=str(tmp_path), space="unused",
                        recipe=recipe_to_dict(load_recipe()), pruner=pruner)


def test_both_engines_take_their_pruning_warmup_from_the_policy(tmp_path):
    first = first_prunable_report(load_recipe())
    config = _config(tmp_path)
    median = make_pruner("median", config.objective, config.recipe)
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == first
    halving = make_pruner("halving", config.objective, config.recipe)
    assert halving._min_resource == first
    asha = ray_engine.make_scheduler("asha", config.objective, config.recipe)
    assert [rung for rung, _ in asha._brackets[0]._rungs] == [first + 1]  # counts finished epochs


# ---------------------------------------------------------------- what both engines count


def test_trained_trials_are_complete_pruned_and_failed_never_rejected():
    from nas.search.policy import trained_count

    assert trained_count({"COMPLETE": 3, "PRUNED": 2, "FAIL": 1, "REJECTED": 40, "RUNNING": 2}) == 6


@pytest.mark.parametrize("counts,done", [({"COMPLETE": 4}, True), ({"COMPLETE": 2, "PRUNED": 1, "FAIL": 1}, True),
                                         ({"COMPLETE": 3, "REJECTED": 199}, False),
                                         ({"COMPLETE": 0, "REJECTED": 200}, True)])
def test_a_search_stops_at_its_trained_trials_or_the_rejection_cap(counts, done):
    from nas.search.policy import REJECTED_CAP, search_done

    assert REJECTED_CAP == 50 and search_done(counts, trials=4) is done


@pytest.mark.parametrize("engine,pruner,scheduler,objective,expected", [
    ("optuna", "median", "asha", "constrained", True), ("optuna", "none", "asha", "constrained", False),
    ("optuna", "median", "asha", "pareto", False), ("ray", "none", "asha", "mnas", True),
    ("ray", "median", "none", "constrained", False), ("ray", "median", "asha", "pareto", False)])
def test_who_may_prune_is_one_rule_for_both_engines(tmp_path, engine, pruner, scheduler, objective, expected):
    from dataclasses import replace

    from nas.search.policy import directions, prunes

    config = replace(_config(tmp_path, pruner), engine=engine, scheduler=scheduler, objective=objective)
    early_stopping = config.scheduler if config.engine == "ray" else config.pruner  # each engine's flag
    assert prunes(config.objective, early_stopping) is expected
    assert directions(config.objective) == (["maximize", "minimize"] if objective == "pareto" else ["maximize"])


def test_the_progress_bar_and_the_run_folder_pick_the_same_winner(tmp_path):
    """Ties on accuracy go to the lower latency, then the earlier trial, in both places."""
    import pandas as pd
    from optuna.trial import TrialState, create_trial
    from optuna.distributions import CategoricalDistribution

    from nas.search.trials_table import TRIAL_COLUMNS, best_row
    from nas.search.progress import best_under_budget

    spec = [(0, 0.5, 30.0), (1, 0.6, 50.0), (2, 0.6, 40.0), (3, 0.6, 40.0), (4, 0.9, 70.0)]  # 4: over budget
    trials = [create_trial(state=TrialState.COMPLETE, value=acc, params={"x": 0},
                           distributions={"x": CategoricalDistribution([0])},
                           user_attrs={"status": "COMPLETE", "latency_ms": ms, "accuracy_epochs": [acc]})
              for _, acc, ms in spec]
    for number, t in enumerate(trials):
        t.number = number
    frame = pd.DataFrame([{c: None for c in TRIAL_COLUMNS} | {"number": n, "state": "COMPLETE", "accuracy": a,
                                                               "latency_ms": ms} for n, a, ms in spec])
    assert best_under_budget(trials, 60.0).number == int(best_row(frame, 60.0)["number"]) == 2
    assert best_row(frame, None)["number"] == 4
