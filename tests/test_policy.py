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
    median = make_pruner(_config(tmp_path))
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == first
    halving = make_pruner(_config(tmp_path, pruner="halving"))
    assert halving._min_resource == first
    asha = ray_engine._scheduler(_config(tmp_path))
    assert [rung for rung, _ in asha._brackets[0]._rungs] == [first + 1]  # counts finished epochs
