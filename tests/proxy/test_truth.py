"""Tests for nas.proxy.truth and `nas proxy truth`: drawing a band, resumable training, scoring."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import nas.train
from nas.cli import main
from nas.errors import NasError
from nas.proxy.runner import read_rows
from nas.proxy.truth import (accuracies, compare, create_truth, load_truth, parse_band, sample_band,
                             score_truth, train_recipe)
from nas.recipe import load_recipe


def fake_training(calls: list, accuracy=lambda arch, seed: arch_params(arch) / 1e7 + seed / 1000):
    """A stand-in for nas.train.train_arch that records (name, seed) and needs no data."""
    def train(arch, recipe, evaluate_test=False, **_):
        calls.append((arch.name, recipe.seed))
        acc = accuracy(arch, recipe.seed)
        return SimpleNamespace(accuracy=acc, epochs=[acc], seconds=0.01, test_accuracy=acc)
    return train


def arch_params(arch) -> int:
    from nas.cost import arch_cost

    return arch_cost(arch).params


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    return create_truth(tmp_path_factory.mktemp("t") / "band", "pixel", (40, 60), 224, 5, seed=3)


def test_band_parses_lo_hi_in_milliseconds():
    assert parse_band("40-60") == (40.0, 60.0)
    assert parse_band("20.5-30ms") == (20.5, 30.0)
    for bad in ("60-40", "40", "a-b", "-5-10", "40-40", "nan-60"):
        with pytest.raises(NasError, match="--band"):
            parse_band(bad)


def test_every_drawn_network_lies_in_the_band_at_one_resolution():
    nets = sample_band(None, "pixel", (40, 60), 224, 6, seed=1)
    sampled = [n for n in nets if n.origin == "sampled"]
    assert len(sampled) == 6
    assert all(40 <= n.latency_ms < 60 and n.arch.resolution == 224 for n in nets)
    assert len({n.arch.blocks for n in sampled}) == 6
    assert "mobilenet_v3_large" in [n.name for n in nets if n.origin == "baseline"]  # 48 ms at 224 px


def test_the_draw_is_seeded():
    a = sample_band(None, "pixel", (20, 30), 224, 3, seed=7)
    b = sample_band(None, "pixel", (20, 30), 224, 3, seed=7)
    c = sample_band(None, "pixel", (20, 30), 224, 3, seed=8)
    assert [n.arch for n in a] == [n.arch for n in b]
    assert [n.arch for n in a] != [n.arch for n in c]


def test_an_empty_band_is_refused_with_one_line(monkeypatch):
    monkeypatch.setattr("nas.proxy.truth.MAX_DRAWS", 50)
    with pytest.raises(NasError, match="widen the band"):
        sample_band(None, "pixel", (1000, 1001), 224, 2)


def test_a_truth_folder_reloads_and_refuses_another_draw(truth):
    again = load_truth(truth.path)
    assert [n.arch for n in again.networks] == [n.arch for n in truth.networks]
    assert create_truth(truth.path, "pixel", (40, 60), 224, 5, seed=3).networks == truth.networks
    with pytest.raises(NasError, match="drawn another way.*seed"):
        create_truth(truth.path, "pixel", (40, 60), 224, 5, seed=4)


def test_training_is_resumable_and_trains_each_network_once_per_seed(truth, tmp_path, monkeypatch):
    t = load_truth(truth.path)
    calls = []
    recipe = load_recipe(epochs=1)
    real = fake_training(calls)

    def dies_on_the_third(arch, recipe, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(arch, recipe, **kw)

    monkeypatch.setattr(nas.train, "train_arch", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(t, recipe, "resume", seeds=(0, 1), progress=False)
    assert len(read_rows(t.path / "recipes" / "resume" / "results.csv")) == 2
    monkeypatch.setattr(nas.train, "train_arch", real)
    trained = train_recipe(t, recipe, "resume", seeds=(0, 1), progress=False)
    assert trained == 2 * len(t.networks) - 2
    assert sorted(calls) == sorted({(n.name, s) for n in t.networks for s in (0, 1)})
    assert train_recipe(t, recipe, "resume", seeds=(0, 1), progress=False) == 0
    with pytest.raises(NasError, match="another recipe"):
        train_recipe(t, load_recipe(epochs=2), "resume", seeds=(0,), progress=False)


def test_compare_scores_a_perfect_a_reversed_and_a_wrong_pick():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert compare(truth, truth)["kendall_tau"] == 1.0
    assert compare(truth, truth)["regret_points"] == 0.0
    rev = compare(truth[::-1], truth)
    assert rev["kendall_tau"] == -1.0 and rev["pairs"] == 0.0
    assert rev["regret_points"] == pytest.approx(50.0)  # picks 0.1 when 0.6 was best
    assert compare([1, 1, 1], [0.1, 0.2, 0.3])["kendall_tau"] is None


def test_score_ranks_the_free_and_trained_scores_against_the_truth(truth, monkeypatch):
    t = load_truth(truth.path)
    by_params = fake_training([])  # truth and proxy both follow parameters: params scores tau 1
    monkeypatch.setattr(nas.train, "train_arch", by_params)
    train_recipe(t, load_recipe(epochs=2), "long", seeds=(0, 1), progress=False)
    train_recipe(t, load_recipe(), "default", seeds=(0,), progress=False)
    assert set(accuracies(t, "long")) == {0, 1}
    result = score_truth(t, "long", ["default"])
    assert result["networks"] == len(t.networks)
    assert result["scores"]["params"]["kendall_tau"] == 1.0
    assert result["scores"]["default seed 0"]["kendall_tau"] == 1.0
    assert "default seed 0 -> ImageNet estimate" in result["scores"]  # the default recipe has a fit
    assert result["noise"]["kendall_tau"] == 1.0
    assert result["other_seeds"]["default seed 0"]["kendall_tau"] == 1.0  # against long seed 1 only


def test_a_proxy_is_scored_by_its_validation_accuracy_which_is_what_a_search_sees(truth, tmp_path, monkeypatch):
    t = dataclasses.replace(load_truth(truth.path), path=tmp_path)
    (tmp_path / "recipes").mkdir()

    def train(arch, recipe, evaluate_test=False, **_):  # validation follows parameters, test the reverse
        val = arch_params(arch) / 1e7
        return SimpleNamespace(accuracy=val, epochs=[val], seconds=0.01, test_accuracy=1 - val)

    monkeypatch.setattr(nas.train, "train_arch", fake_training([]))
    train_recipe(t, load_recipe(epochs=2), "long", seeds=(0,), progress=False)
    monkeypatch.setattr(nas.train, "train_arch", train)
    train_recipe(t, load_recipe(), "default", seeds=(0,), progress=False)
    assert score_truth(t, "long", ["default"])["scores"]["default seed 0"]["kendall_tau"] == 1.0


def test_a_truth_seed_still_training_is_scored_on_the_networks_it_has(truth, monkeypatch):
    t = load_truth(truth.path)
    monkeypatch.setattr(nas.train, "train_arch", fake_training([]))
    train_recipe(t, load_recipe(epochs=3), "partial", seeds=(0,), progress=False)
    first = sorted(t.networks, key=lambda n: -n.madds)[0]
    one = dataclasses.replace(t, networks=(first,))
    train_recipe(one, load_recipe(epochs=3), "partial", seeds=(1,), progress=False)  # seed 1 has one network
    assert score_truth(t, "partial")["networks"] == 1
    result = score_truth(t, "partial", min_seeds=1)
    assert result["networks"] == len(t.networks) and result["noise"]["networks"] == 1
    assert result["scores"]["params"]["kendall_tau"] == 1.0


def test_truth_commands_create_train_and_score(tmp_path, monkeypatch):
    monkeypatch.setattr(nas.train, "train_arch", fake_training([]))
    run = lambda *a: CliRunner().invoke(main, list(a))
    out = str(tmp_path / "band")
    r = run("proxy", "truth", "create", "--band", "20-30", "--sample", "3", "--out", out)
    assert r.exit_code == 0, r.output
    assert "networks in" in r.output
    r = run("proxy", "truth", "train", out, "--label", "long", "--seeds", "2", "--no-progress")
    assert r.exit_code == 0 and "long: 6 trainings now" in r.output, r.output
    r = run("proxy", "truth", "score", out, "--truth", "long")
    assert r.exit_code == 0, r.output
    assert "params" in r.output and "truth seed 0 vs seed 1" in r.output
    assert (tmp_path / "band" / "scores.json").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "FOLDER", "--label", "../x"], "--label: '../x' is not allowed"),
    (["train", "/no/such/truth", "--label", "x"], "not a truth folder"),
    (["create", "--band", "40", "--out", "OUT"], "--band: '40' is not allowed"),
    (["score", "FOLDER", "--truth", "nothing"], "nothing trained under 'nothing'"),
])
def test_bad_truth_input_gets_one_line_and_exit_2(truth, tmp_path, args, message):
    args = [str(truth.path) if a == "FOLDER" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    r = CliRunner().invoke(main, ["proxy", "truth", *args])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


def test_a_mixed_band_keeps_the_resolutions_the_space_drew():
    from nas.space import load_space

    nets = sample_band(None, "pixel", (40, 60), "mixed", 8, seed=2)
    sampled = [n for n in nets if n.origin == "sampled"]
    assert all(40 <= n.latency_ms < 60 for n in nets)
    assert {n.arch.resolution for n in sampled} <= set(load_space(None).resolution)
    assert len({n.arch.resolution for n in sampled}) > 1
    baselines = [n for n in nets if n.origin == "baseline"]
    assert "mobilenet_v3_large-r224" in [n.name for n in baselines]
    assert all(n.arch.name == n.name and n.name.endswith(f"-r{n.arch.resolution}") for n in baselines)


def test_truth_create_takes_mixed_and_refuses_another_word(tmp_path):
    ok = CliRunner().invoke(main, ["proxy", "truth", "create", "--band", "40-60", "--resolution", "mixed",
                                   "--sample", "3", "--out", str(tmp_path / "m"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert load_truth(tmp_path / "m").spec["resolution"] == "mixed"
    for bad in ("mix", "16", "224px", "-224"):
        r = CliRunner().invoke(main, ["proxy", "truth", "create", "--band", "40-60", "--resolution", bad,
                                      "--out", str(tmp_path / "x")])
        assert r.exit_code == 2 and "--resolution" in r.output and "'mixed'" in r.output, r.output
    assert not (tmp_path / "x").exists()
