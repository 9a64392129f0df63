"""Proxy training (nas.train) and `nas train`: results, determinism, failures, the CLI."""

import json
from dataclasses import replace

import optuna
import pytest
import torch
from click.testing import CliRunner

from nas import train as train_module
from nas.cli import main
from nas.errors import NasError
from nas.recipe import Recipe, load_recipe
from nas.train import TrainingFailed, train_arch

# A trial of a second or two on real CIFAR-10: 256 training and 200 validation images.
TINY = dict(train_subset=256, val_size=200, epochs=1, batch_size=64, relax_strides=0, threads=1)


def tiny(**overrides) -> Recipe:
    return load_recipe(**{**TINY, **overrides})


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
    assert data["imagenet_estimate"] is None  # the shipped estimate belongs to the default recipe only


def test_cli_gives_the_imagenet_estimate_where_it_was_fitted_for_the_recipe(monkeypatch):
    import nas.estimate
    from nas.estimate import MODELS, Estimate

    reverse = nas.estimate.ImagenetEstimate(Estimate("proxy+cost", MODELS["proxy+cost"], (50.0, 0, 0, 0, -100.0, 0)),
                                            "test", {}, 0, {}, "test")
    monkeypatch.setattr(nas.estimate, "estimate_for", lambda recipe: reverse)
    result = _cli("mobilenet_v3_small", "--train-subset", "256", "--val-size", "200", "--epochs", "1",
                  "--relax-strides", "0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["imagenet_estimate"] == pytest.approx(50 - 100 * data["accuracy"], abs=0.01)


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
