"""nas.supernet.train: sandwich steps, determinism, resuming, and the evaluator on what it wrote."""

from dataclasses import replace

import pytest
import torch

from nas.errors import NasError
from nas.space import largest_arch, load_space
from nas.supernet import SubnetEvaluator, load_supernet, train_supernet
from nas.supernet.train import CHECKPOINT, _sandwich
from supernet_toy import tiny_recipe, toy_space_file  # noqa: F401 (fixtures)


class Stop(Exception):
    pass


def _weights(folder):
    return load_supernet(folder).supernet.state_dict()


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_step_trains_the_largest_the_smallest_and_two_sampled_subnets(toy_space_file, tiny_recipe):
    space = load_space(toy_space_file)
    archs = _sandwich(space, tiny_recipe, 10, step=3)
    assert [a.name for a in archs] == ["largest", "smallest", "random0", "random1"]
    assert archs == _sandwich(space, tiny_recipe, 10, step=3)  # seeded by recipe seed and step
    assert archs[2:] != _sandwich(space, tiny_recipe, 10, step=4)[2:]
    assert {a.resolution for a in archs} <= {14, 16} and archs[0].num_classes == 10


def test_training_twice_with_one_seed_gives_the_same_weights_and_another_seed_others(
        toy_space_file, tiny_recipe, tmp_path):
    first = train_supernet(toy_space_file, tiny_recipe, tmp_path / "a")
    train_supernet(toy_space_file, tiny_recipe, tmp_path / "b")
    train_supernet(toy_space_file, replace(tiny_recipe, seed=1), tmp_path / "c")
    assert _equal(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _equal(_weights(tmp_path / "a"), _weights(tmp_path / "c"))
    row = first.history[0]
    assert row["epoch"] == 1 and row["loss"] > 0 and 0 <= row["smallest_val"] <= 1


def test_a_stopped_training_resumes_after_its_last_epoch_to_the_same_weights(toy_space_file, tiny_recipe, tmp_path):
    train_supernet(toy_space_file, tiny_recipe, tmp_path / "whole", epochs=2)

    def stop(epoch, row):
        raise Stop

    with pytest.raises(Stop):
        train_supernet(toy_space_file, tiny_recipe, tmp_path / "stopped", epochs=2, report=stop)
    assert load_supernet(tmp_path / "stopped").finished == 1
    seen = []
    resumed = train_supernet(toy_space_file, tiny_recipe, tmp_path / "stopped", epochs=2,
                             report=lambda epoch, row: seen.append(epoch))
    assert seen == [1] and resumed.finished == 2
    assert _equal(_weights(tmp_path / "whole"), _weights(tmp_path / "stopped"))


def test_a_folder_of_another_recipe_is_refused_not_resumed(toy_space_file, tiny_recipe, tmp_path):
    train_supernet(toy_space_file, tiny_recipe, tmp_path)
    with pytest.raises(NasError, match="another recipe and epochs"):
        train_supernet(toy_space_file, tiny_recipe, tmp_path, epochs=3)


def test_the_evaluator_scores_a_subnet_as_training_scored_the_largest(toy_space_file, tiny_recipe, tmp_path):
    trained = train_supernet(toy_space_file, tiny_recipe, tmp_path)
    before = torch.get_rng_state()
    evaluator = SubnetEvaluator(tmp_path)
    assert torch.equal(torch.get_rng_state(), before)  # loading draws nothing from the caller's stream
    largest = largest_arch(load_space(toy_space_file))
    assert evaluator.accuracy(largest) == trained.history[-1]["largest_val"]
    assert evaluator.subnet(largest).arch.resolution == 16


def test_a_folder_without_a_supernet_is_refused_with_one_line(tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(NasError, match="not a supernet checkpoint"):
        SubnetEvaluator(tmp_path)
    with pytest.raises(NasError, match="no supernet.pt"):
        SubnetEvaluator(tmp_path / "empty")
