import json
import random
from dataclasses import replace

import optuna
import pytest
import torch
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from nas import train as train_module
from nas.baselines import load_baseline
from nas.cli import main
from nas.errors import NasError
from nas.recipe import (DEFAULT_RECIPE, Recipe, knob_names, load_recipe, proxy_arch, proxy_side,
                        recipe_to_dict)
from nas.space import load_space, random_arch
from nas.train import TrainingFailed, train_arch

# A trial of a second or two on real CIFAR-10: 256 training and 200 validation images.
TINY = dict(train_subset=256, val_size=200, epochs=1, batch_size=64, relax_strides=0, threads=1)


def tiny(**overrides) -> Recipe:
    return load_recipe(**{**TINY, **overrides})


@pytest.fixture(scope="module")
def v3_small():
    return load_baseline("mobilenet_v3_small")


# ---------------------------------------------------------------- recipe

def test_default_recipe_file_holds_every_knob():
    data = yaml.safe_load(DEFAULT_RECIPE.read_text())
    assert set(data) == set(knob_names())
    assert recipe_to_dict(load_recipe()) == data


def test_knobs_a_file_leaves_out_take_the_default_recipes_values():
    assert Recipe() == load_recipe()


def test_override_changes_only_that_knob():
    base, changed = load_recipe(), load_recipe(epochs=7, seed=3)
    assert (changed.epochs, changed.seed) == (7, 3)
    assert replace(changed, epochs=base.epochs, seed=base.seed) == base


def test_none_override_keeps_the_file_value():
    assert load_recipe(epochs=None) == load_recipe()


def test_recipe_dict_round_trips_through_yaml(tmp_path):
    r = load_recipe(lr=0.05, optimizer="adamw", channels_last=False)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe_to_dict(r)))
    assert load_recipe(path) == r


def test_unknown_knob_in_file_names_it(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(NasError, match="epoch: unknown recipe knob"):
        load_recipe(path)


def test_unknown_override_is_rejected():
    with pytest.raises(NasError, match="learning_rate: unknown recipe knob"):
        load_recipe(learning_rate=0.1)


@pytest.mark.parametrize("knob,value", [("lr", -1.0), ("lr", 0), ("optimizer", "rmsprop"),
                                        ("momentum", 1.0), ("epochs", 0), ("epochs", 2.5),
                                        ("channels_last", "yes"), ("image_size", 4),
                                        ("augment", "mixup"), ("warmup", float("nan"))])
def test_bad_value_names_knob_and_value(knob, value):
    with pytest.raises(NasError, match=f"{knob}: .* is not allowed"):
        load_recipe(**{knob: value})


def test_missing_and_malformed_files_raise_nas_error(tmp_path):
    with pytest.raises(NasError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [3\n")
    with pytest.raises(NasError, match="malformed YAML"):
        load_recipe(bad)


# ---------------------------------------------------------------- proxy adaptation

def _strides(arch):
    return [arch.stem.stride] + [b.stride for b in arch.blocks]


def test_proxy_arch_is_a_new_arch_and_leaves_the_original(v3_small):
    before = v3_small
    p = proxy_arch(v3_small, load_recipe(image_size=32, relax_strides=2), num_classes=10)
    assert v3_small == before and v3_small.resolution == 224 and v3_small.stem.stride == 2
    assert (p.resolution, p.num_classes, p.width_mult) == (32, 10, v3_small.width_mult)
    assert _strides(p)[:3] == [1, 1, 2]  # stem and the first block relaxed


def test_proxy_arch_keeps_everything_latency_depends_on_but_strides(v3_small):
    p = proxy_arch(v3_small, load_recipe(relax_strides=1), num_classes=10)
    strip = lambda a: [replace(b, stride=0) for b in a.blocks]
    assert strip(p) == strip(v3_small)
    assert replace(p.stem, stride=2) == v3_small.stem and p.head == v3_small.head


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), relax=st.integers(0, 8))
def test_relax_strides_turns_the_first_k_stride_two_ops_into_stride_one(seed, relax):
    arch = random_arch(load_space(), random.Random(seed))
    p = proxy_arch(arch, load_recipe(relax_strides=relax), num_classes=10)
    before, after = _strides(arch), _strides(p)
    twos = [i for i, s in enumerate(before) if s == 2]
    assert [i for i, s in enumerate(after) if s == 2] == twos[relax:]


@pytest.mark.parametrize("rho,side", [(224, 32), (256, 37), (192, 27), (160, 23), (128, 18), (96, 14), (32, 8)])
def test_resolution_aware_side_is_proportional_to_rho(v3_small, rho, side):
    arch = replace(v3_small, resolution=rho)
    assert proxy_side(arch, load_recipe(image_size=32, resolution_aware=True)) == side
    assert proxy_arch(arch, load_recipe(image_size=32, resolution_aware=True), 10).resolution == side
    assert proxy_side(arch, load_recipe(image_size=32, resolution_aware=False)) == 32


# ---------------------------------------------------------------- training

def test_resolution_aware_proxy_trains_each_rho_at_its_own_side(v3_small, monkeypatch):
    seen = []
    run = train_module._run
    monkeypatch.setattr(train_module, "_run", lambda arch, recipe, data, *a: seen.append(
        (arch.resolution, tuple(data.train_x.shape[1:3]), tuple(data.val_x.shape[1:3])))
        or run(arch, recipe, data, *a))
    r = tiny(image_size=32, resolution_aware=True)
    for rho in (112, 224):
        train_arch(replace(v3_small, resolution=rho), r)
    assert seen == [(16, (16, 16), (16, 16)), (32, (32, 32), (32, 32))]


def test_bn_recalibration_replaces_running_stats_with_the_data_average(v3_small):
    r = tiny(bn_recalibrate=128)
    model = train_arch(v3_small, r).model
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    data = train_module._split(r, 32, torch.device("cpu"))
    x = train_module._to_input(data.train_x[:128], data, r.channels_last)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        expected = first(x).mean((0, 2, 3))
    assert torch.allclose(bn.running_mean, expected, atol=1e-4)
    assert bn.momentum == 0.1  # restored for any later training


def test_zero_init_residual_makes_every_residual_block_start_as_the_identity(v3_small):
    from nas.builder import InvertedResidual, build
    model = build(v3_small).eval()
    train_module._zero_init_residual(model)
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    residual = [m for m in blocks if m.residual]
    assert residual and len(residual) < len(blocks)
    x = torch.randn(2, residual[0].body[0][0].in_channels, 8, 8)
    assert all(torch.equal(m(x), x) for m in residual[:1])
    kept = [m for m in blocks if not m.residual][0].body[-1][1].weight
    assert torch.all(kept == 1)  # blocks without a shortcut keep their init


def test_bn_recalibration_is_deterministic(v3_small):
    r = tiny(bn_recalibrate=128)
    assert train_arch(v3_small, r).epochs == train_arch(v3_small, r).epochs

def test_tiny_recipe_trains_and_returns_the_result_shape(v3_small):
    r = tiny(image_size=16, epochs=2)
    res = train_arch(v3_small, r)
    assert len(res.epochs) == 2 and res.accuracy == res.epochs[-1]
    assert all(0.0 <= a <= 1.0 for a in res.epochs)
    assert res.seconds > 0 and res.test_accuracy is None
    assert not res.model.training
    assert res.model(torch.zeros(3, 3, 16, 16)).shape == (3, 10)


def test_same_seed_gives_the_same_accuracy_and_weights(v3_small):
    a, b = train_arch(v3_small, tiny(epochs=2)), train_arch(v3_small, tiny(epochs=2))
    assert a.epochs == b.epochs
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_another_seed_gives_other_weights(v3_small):
    a, b = train_arch(v3_small, tiny(seed=0)), train_arch(v3_small, tiny(seed=1))
    assert not torch.equal(a.model.classifier.weight, b.model.classifier.weight)


def test_report_is_called_after_every_epoch(v3_small):
    calls = []
    res = train_arch(v3_small, tiny(epochs=3), report=lambda e, acc: calls.append((e, acc)))
    assert calls == list(enumerate(res.epochs))


def test_exception_from_report_propagates_unchanged(v3_small):
    calls = []

    def prune(epoch, acc):
        calls.append(epoch)
        raise optuna.TrialPruned(f"pruned at {epoch}")

    with pytest.raises(optuna.TrialPruned, match="pruned at 0"):
        train_arch(v3_small, tiny(epochs=3), report=prune)
    assert calls == [0]


def test_test_set_is_scored_only_when_asked(v3_small):
    res = train_arch(v3_small, tiny(), evaluate_test=True)
    assert 0.0 <= res.test_accuracy <= 1.0


def test_huge_learning_rate_fails_as_diverged(v3_small):
    with pytest.raises(TrainingFailed, match="diverged at epoch 1") as info:
        train_arch(v3_small, tiny(lr=1e12, warmup=0, batch_size=16))
    assert info.value.reason == "diverged" and info.value.epoch == 0


def test_out_of_memory_fails_cleanly(v3_small, monkeypatch):
    class Hungry(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: "
                               "can't allocate memory: you tried to allocate 99999999999 bytes.")

    monkeypatch.setattr(train_module, "build", lambda arch: Hungry())
    with pytest.raises(TrainingFailed, match="out of memory at epoch 1"):
        train_arch(v3_small, tiny(channels_last=False))


def test_subset_larger_than_the_data_is_a_nas_error(v3_small):
    with pytest.raises(NasError, match="train_subset 49900 is not allowed"):
        train_arch(v3_small, tiny(train_subset=49_900))


def test_threads_are_restored_after_a_trial(v3_small):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_arch(v3_small, tiny(threads=1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- CLI

def _cli(*args):
    return CliRunner().invoke(main, ["train", *args])


def test_cli_json_has_accuracy_epochs_and_seconds():
    result = _cli("mobilenet_v3_small", "--train-subset", "256", "--val-size", "200", "--epochs", "2",
                  "--relax-strides", "0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"accuracy", "epochs", "seconds"} <= set(data)
    assert len(data["epochs"]) == 2 and data["accuracy"] == data["epochs"][-1]
    assert data["recipe"]["epochs"] == 2


def test_cli_prints_one_row_per_epoch():
    result = _cli("mobilenet_v3_small", "--train-subset", "256", "--val-size", "200", "--epochs", "2",
                  "--relax-strides", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["epoch", "val_accuracy_%"]
    assert [ln.split()[0] for ln in lines[2:4]] == ["1", "2"]
    assert "mobilenet_v3_small: val accuracy" in lines[4]


def test_cli_bad_recipe_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("optimizer: rmsprop\n")
    result = _cli("mobilenet_v3_small", "--recipe", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "optimizer: 'rmsprop' is not allowed" in result.stderr


def test_cli_missing_recipe_file_exits_2(tmp_path):
    result = _cli("mobilenet_v3_small", "--recipe", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "no such recipe file" in result.stderr


def test_cli_bad_override_exits_2():
    result = _cli("mobilenet_v3_small", "--epochs", "0")
    assert result.exit_code == 2 and "epochs: 0 is not allowed" in result.stderr
