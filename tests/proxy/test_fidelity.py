"""Tests for nas.proxy.fidelity and `nas proxy`: the networks file, the statistics, resumable training."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from nas.cli import main
from nas.errors import NasError
from nas.proxy import fidelity
from nas.proxy.fidelity import evaluate, read_accuracies, run_fidelity, zero_cost_fidelity
from nas.estimate import fit_estimate
from nas.proxy.networks import (DEFAULT_NETWORKS, HELD_OUT_NETWORKS, KEPT_ASIDE_NETWORKS,
                                NEW_FAMILY_NETWORKS, load_network_files, load_networks, select)
from nas.proxy.stats import matched_pairs, pair_agreement, rank_fidelity
from nas.recipe import load_recipe
from conftest import TINY_RECIPE

SHARED = Path(__file__).resolve().parents[3] / "shared" / "imagenet_top1" / "imagenet_top1.yaml"
SMALL = ["V3-Small 0.35", "V2 0.35 r96", "V1 0.25 r128"]  # the three cheapest to train


@pytest.fixture(scope="module")
def shipped():
    return load_networks()


@pytest.fixture()
def small(shipped):
    return [n for n in shipped if n.name in SMALL]


@pytest.fixture()
def recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return load_recipe(path)


def fake_train(calls: list, accuracy=lambda arch: 0.1 + arch.resolution / 1000):
    """A stand-in for the proxy training that records the architectures it is given."""
    def train(arch, recipe):
        calls.append(arch.name)
        acc = accuracy(arch)
        return SimpleNamespace(accuracy=acc, epochs=[acc / 2, acc], seconds=0.01)
    return train


def write_networks(tmp_path: Path, entries) -> Path:
    path = tmp_path / "nets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"networks": entries}))
    return path


GOOD = {"name": "V3-Small 0.5", "base": "mobilenet_v3_small", "width": 0.5, "resolution": 224,
        "top1": 58.0, "source": "v3-t9"}


# ---------------------------------------------------------------- the networks file

def test_shipped_file_has_53_networks_and_v3_large_has_published_param_count(shipped):
    assert len(shipped) == 53
    v3 = next(n for n in shipped if n.name == "V3-Large 1.0")
    assert (v3.params, v3.resolution, v3.top1) == (5_483_032, 224, 75.2)


@pytest.mark.skipif(not SHARED.is_file(), reason="the shared yaml is not beside the repo")
def test_shipped_file_is_a_copy_of_the_shared_file():
    assert DEFAULT_NETWORKS.read_bytes() == SHARED.read_bytes()


def test_networks_are_built_at_their_published_width_scaling_and_resolution(shipped):
    by_name = {n.name: n for n in shipped}
    v2 = by_name["V2 0.35 r96"]
    assert (v2.arch.resolution, v2.arch.width_mult, v2.arch.head.conv) == (96, 1.0, 1280)  # v2 keeps 1280
    assert v2.arch.name == "v2-0.35-r96" and v2.family == "V2"
    assert by_name["V3-Large 1.0 r128"].madds < by_name["V3-Large 1.0"].madds
    assert by_name["V3-Large 1.0 r128"].params == by_name["V3-Large 1.0"].params


@pytest.mark.parametrize("entry,field", [
    ({**GOOD, "base": "resnet50"}, "base"),
    ({**GOOD, "width": "wide"}, "width"),
    ({**GOOD, "width": 0}, "width"),
    ({**GOOD, "resolution": 224.5}, "resolution"),
    ({**GOOD, "top1": 0}, "top1"),
    ({**GOOD, "top1": 150}, "top1"),
    ({**GOOD, "source": ""}, "source"),
    ({**GOOD, "scaling": "v4"}, "scaling"),
    ({**GOOD, "variant": "tiny"}, "variant"),
    ({**GOOD, "colour": "red"}, "colour"),
    ({k: v for k, v in GOOD.items() if k != "top1"}, "top1"),
])
def test_bad_entry_names_file_entry_and_field_on_one_line(tmp_path, entry, field):
    path = write_networks(tmp_path, [GOOD | {"name": "first"}, entry])
    with pytest.raises(NasError) as e:
        load_networks(path)
    message = str(e.value)
    assert "\n" not in message
    assert all(part in message for part in (str(path), "networks[1]", GOOD["name"], field))


def test_duplicate_names_are_refused(tmp_path):
    with pytest.raises(NasError, match=r"networks\[1\]: name: 'V3-Small 0.5'.*unique"):
        load_networks(write_networks(tmp_path, [GOOD, GOOD]))


@pytest.mark.parametrize("text,match", [("networks: [", "malformed YAML"), ("- 1\n- 2\n", "one key, networks"),
                                        ("networks: []\n", "empty"), ("networks:\n- 3\n", "expected a mapping")])
def test_malformed_file_is_refused(tmp_path, text, match):
    path = tmp_path / "nets.yaml"
    path.write_text(text)
    with pytest.raises(NasError, match=match):
        load_networks(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(NasError, match="no such networks file"):
        load_networks(tmp_path / "none.yaml")


def test_only_keeps_matching_names_and_refuses_a_substring_that_matches_nothing(shipped):
    assert [n.name for n in select(shipped, ["v1 0.25"])] == [
        "V1 0.25 r224", "V1 0.25 r192", "V1 0.25 r160", "V1 0.25 r128"]
    with pytest.raises(NasError, match="--only 'zz' matches no network"):
        select(shipped, ["zz"])


# ---------------------------------------------------------------- statistics

def test_a_perfect_score_gives_tau_1_and_all_pairs_right():
    top1 = [50.0, 60.0, 70.0, 80.0]
    f = rank_fidelity([1, 2, 3, 4], top1, [(0, 1), (1, 2), (0, 3)])
    assert (f.kendall_tau, f.spearman, f.matched_pairs) == (pytest.approx(1.0), pytest.approx(1.0), 1.0)


def test_a_reversed_score_gives_tau_minus_1_and_no_pair_right():
    top1 = [50.0, 60.0, 70.0, 80.0]
    f = rank_fidelity([4, 3, 2, 1], top1, [(0, 1), (1, 2), (0, 3)])
    assert (f.kendall_tau, f.matched_pairs) == (pytest.approx(-1.0), 0.0)


def test_a_score_tie_counts_half_and_equal_top1_pairs_are_left_out():
    assert pair_agreement([1, 1, 5], [50, 60, 60], [(0, 1), (1, 2)]) == 0.5
    assert pair_agreement([1, 2], [60, 60], [(0, 1)]) is None


def test_a_constant_score_has_no_tau():
    assert rank_fidelity([0.1, 0.1, 0.1], [50, 60, 70], []).kendall_tau is None


def test_matched_pairs_lie_within_25_percent_of_their_mean_latency():
    assert matched_pairs([10.0, 12.5, 13.0, 20.0]) == [(0, 1), (1, 2)]


def test_shipped_file_has_184_matched_latency_pairs_183_with_distinct_top1(shipped):
    pairs = matched_pairs([n.latency_ms for n in shipped])
    assert len(pairs) == 184
    assert sum(shipped[i].top1 != shipped[j].top1 for i, j in pairs) == 183


def test_zero_cost_baselines_on_the_shipped_file(shipped):
    f = zero_cost_fidelity(shipped)
    assert f["latency"].kendall_tau == pytest.approx(0.77, abs=0.005)
    assert f["params"].kendall_tau == pytest.approx(0.67, abs=0.005)
    assert f["madds"].kendall_tau == pytest.approx(0.70, abs=0.005)
    assert f["params"].matched_pairs == pytest.approx(0.77, abs=0.005)
    assert f["madds"].matched_pairs == pytest.approx(0.42, abs=0.005)
    assert f["params"].resolution_pairs == 0.5  # parameters do not see resolution


def test_a_proxy_that_is_top1_gives_a_perfect_proxy_estimate(shipped):
    result = evaluate(shipped, {n.name: n.top1 / 200 for n in shipped})
    est = result["scores"]["proxy+cost (leave-one-out)"]
    assert est["mae"] < 1e-6 and est["kendall_tau"] == pytest.approx(1.0, abs=0.01)  # ties in top1
    assert result["scores"]["cost-only (leave-one-out)"]["mae"] > 0.5


def test_fitted_estimate_predicts_like_its_coefficients(shipped):
    proxy = [0.2 + 0.001 * i for i in range(len(shipped))]
    est = fit_estimate("proxy+cost", shipped, proxy)
    n = shipped[0]
    x = np.array([1, np.log(n.params), np.log(n.madds), np.log(n.resolution), proxy[0],
                  np.log(proxy[0] / (1 - proxy[0]))])
    assert est.predict(n.params, n.madds, n.resolution, proxy[0]) == pytest.approx(x @ est.coefficients)


# Parameter counts of the new-family networks in their sources: osmr/imgclsmob pytorchcv
# proxylessnas.py (its own asserts, 1000 classes) and torchvision's MNASNet weight docs.
NEW_FAMILY_PARAMS = {"ProxylessNAS-mobile": 4_080_512, "ProxylessNAS-mobile 1.4": 6_857_568,
                     "ProxylessNAS-GPU": 7_119_848, "MnasNet-B1 0.5": 2_218_512, "MnasNet-B1 0.75": 3_170_208,
                     "MnasNet-B1 1.0": 4_383_312, "MnasNet-B1 1.3": 6_282_256}


def test_new_family_networks_are_built_as_published_and_disjoint_from_the_yardstick(shipped):
    new = load_networks(NEW_FAMILY_NETWORKS)
    assert {n.name: n.params for n in new if n.name in NEW_FAMILY_PARAMS} == NEW_FAMILY_PARAMS
    assert len(new) == 12 and {n.family for n in new} >= {"ProxylessNAS", "MnasNet-B1"}
    key = lambda n: (n.base, n.width, n.scaling, n.resolution)
    assert not {key(n) for n in new} & {key(n) for n in shipped}


def test_held_out_networks_are_issue_34s_mobilenet_v1_0_75(shipped):
    held = load_networks(HELD_OUT_NETWORKS)
    assert [(n.family, n.width, n.resolution) for n in held] == [("V1", 0.75, r) for r in (224, 192, 160, 128)]


def test_the_fit_sets_never_hold_a_kept_aside_network():
    fit = load_network_files([DEFAULT_NETWORKS, NEW_FAMILY_NETWORKS])
    assert len(fit) == 53 + 12
    kept = load_networks(HELD_OUT_NETWORKS) + load_networks(KEPT_ASIDE_NETWORKS)
    key = lambda n: (n.base, n.width, n.scaling, n.variant, n.resolution)
    assert not {key(n) for n in fit} & {key(n) for n in kept}
    assert not {n.family for n in fit} & {"MnasNet-A1", "HardCoRe-NAS", "Single-Path NAS"}


def test_networks_files_are_read_in_order_and_a_name_two_files_share_is_refused(tmp_path):
    a = write_networks(tmp_path / "a", [GOOD])
    b = write_networks(tmp_path / "b", [{**GOOD, "name": "other"}])
    assert [n.name for n in load_network_files([a, b])] == [GOOD["name"], "other"]
    with pytest.raises(NasError, match=f"{GOOD['name']!r} is not allowed; it is already used in .*a"):
        load_network_files([a, write_networks(tmp_path / "c", [GOOD])])


# Parameter counts in the sources of kept_aside.yaml: timm 1.0.31 (hardcorenas_*, spnasnet_100,
# tf_mobilenetv3_*_minimal_100, semnasnet_*) and osmr/imgclsmob's proxylessnas_cpu assert
KEPT_ASIDE_PARAMS = {"HardCoRe-NAS A": 5_260_232, "HardCoRe-NAS B": 5_176_544, "HardCoRe-NAS C": 5_521_224,
                     "HardCoRe-NAS D": 7_500_208, "HardCoRe-NAS E": 8_070_992, "HardCoRe-NAS F": 8_199_688,
                     "Single-Path NAS": 4_421_616, "ProxylessNAS-CPU": 4_361_648,
                     "V3-Large minimalistic": 3_924_288, "V3-Small minimalistic": 2_044_736,
                     "MnasNet-A1 0.5 r224": 2_082_006, "MnasNet-A1 0.75 r224": 2_912_278,
                     "MnasNet-A1 1.0 r224": 3_887_038, "MnasNet-A1 1.4 r224": 6_105_992}


def test_kept_aside_networks_are_built_as_published_and_disjoint_from_every_other_set(shipped):
    kept = load_networks(KEPT_ASIDE_NETWORKS)
    assert {n.name: n.params for n in kept if n.name in KEPT_ASIDE_PARAMS} == KEPT_ASIDE_PARAMS
    assert len(kept) == 37 and {n.family for n in kept} == {
        "HardCoRe-NAS", "Single-Path NAS", "ProxylessNAS", "V3-Large", "V3-Small", "MnasNet-A1"}
    key = lambda n: (n.base, n.width, n.scaling, n.variant, n.resolution)
    others = shipped + load_networks(HELD_OUT_NETWORKS) + load_networks(NEW_FAMILY_NETWORKS)
    assert not {key(n) for n in kept} & {key(n) for n in others}


def test_a_fit_from_elsewhere_is_scored_as_it_stands_and_nothing_is_fitted(shipped):
    fitted = fit_estimate("proxy+cost", shipped, [n.top1 / 200 for n in shipped])
    held = load_networks(HELD_OUT_NETWORKS)
    proxy = {n.name: n.top1 / 200 for n in held}
    result = evaluate(held, proxy, fitted=[fitted])
    assert not any("leave" in k for k in result["scores"]) and result["estimates"] == {}
    n = held[0]
    expected = fitted.predict(n.params, n.madds, n.resolution, proxy[n.name])
    assert result["held_out"][n.name]["proxy+cost (fitted elsewhere)"] == pytest.approx(expected, abs=1e-3)
    assert result["scores"]["proxy+cost (fitted elsewhere)"]["mae"] < 1e-6  # a perfect proxy, fitted on it


# ---------------------------------------------------------------- resumable training

def test_rerun_trains_nothing(tmp_path, monkeypatch, recipe, small):
    calls = []
    monkeypatch.setattr(fidelity, "_train", fake_train(calls))
    run_fidelity(recipe, small, tmp_path / "out", progress=False)
    assert sorted(calls) == sorted(n.arch.name for n in small)
    run_fidelity(recipe, small, tmp_path / "out", progress=False)
    assert len(calls) == len(small)
    assert len(read_accuracies(tmp_path / "out" / "accuracies.csv")) == len(small)


def test_networks_are_trained_largest_first(tmp_path, monkeypatch, recipe, shipped):
    calls = []
    monkeypatch.setattr(fidelity, "_train", fake_train(calls))
    nets = select(shipped, ["V1 0.25"])
    run_fidelity(recipe, nets, tmp_path / "out", progress=False)
    by_slug = {n.arch.name: n.madds for n in nets}
    assert [by_slug[c] for c in calls] == sorted(by_slug.values(), reverse=True)


def test_an_interrupted_run_keeps_finished_networks_and_resumes_with_the_rest(tmp_path, monkeypatch,
                                                                              recipe, small):
    calls = []
    train = fake_train(calls)

    def dies_on_the_second(arch, r):
        if len(calls) == 1:
            raise KeyboardInterrupt
        return train(arch, r)

    monkeypatch.setattr(fidelity, "_train", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_fidelity(recipe, small, tmp_path / "out", progress=False)
    assert len(read_accuracies(tmp_path / "out" / "accuracies.csv")) == 1
    monkeypatch.setattr(fidelity, "_train", train)
    result = run_fidelity(recipe, small, tmp_path / "out", progress=False)
    assert len(calls) == len(small) and result["trained_now"] == len(small) - 1


def test_a_line_cut_short_is_skipped_and_retrained(tmp_path, monkeypatch, recipe, small):
    calls = []
    monkeypatch.setattr(fidelity, "_train", fake_train(calls))
    out = tmp_path / "out"
    run_fidelity(recipe, small, out, progress=False)
    path = out / "accuracies.csv"
    text = path.read_text()
    path.write_text(text[:-40])  # the last row loses its end, as if killed mid-line
    assert len(read_accuracies(path)) == len(small) - 1
    run_fidelity(recipe, small, out, progress=False)
    assert len(calls) == len(small) + 1
    assert [r["name"] for r in read_accuracies(path)] == [r["name"] for r in
                                                          csv.DictReader(path.read_text().splitlines())]


def test_another_recipe_is_refused_in_the_same_folder(tmp_path, monkeypatch, recipe, small):
    monkeypatch.setattr(fidelity, "_train", fake_train([]))
    run_fidelity(recipe, small, tmp_path / "out", progress=False)
    other = load_recipe(tmp_path / "tiny.yaml", epochs=3)
    with pytest.raises(NasError, match=r"another recipe \(epochs: 2 -> 3\)"):
        run_fidelity(other, small, tmp_path / "out", progress=False)


def test_a_folder_trained_before_a_knob_existed_is_reused_at_the_value_it_ran_with(tmp_path, monkeypatch,
                                                                                   recipe, small):
    calls = []
    monkeypatch.setattr(fidelity, "_train", fake_train(calls))
    cpu = dataclasses.replace(recipe, device="cpu", precision="fp32")
    out = tmp_path / "out"
    run_fidelity(cpu, small, out, progress=False)
    # as an older version wrote it: no device or precision knob, rows fingerprinted without them
    knobs = yaml.safe_load((out / "recipe.yaml").read_text())
    older = {k: v for k, v in knobs.items() if k not in ("device", "precision")}
    (out / "recipe.yaml").write_text(yaml.safe_dump(older))
    old_fp = hashlib.sha256(json.dumps(older, sort_keys=True).encode()).hexdigest()[:12]
    path = out / "accuracies.csv"
    path.write_text(path.read_text().replace(fidelity.recipe_fingerprint(cpu), old_fp))
    run_fidelity(cpu, small, out, progress=False)
    assert len(calls) == len(small)  # nothing trained again
    with pytest.raises(NasError, match=r"another recipe \(device: 'cpu' -> 'cuda'\)"):
        run_fidelity(dataclasses.replace(cpu, device="cuda"), small, out, progress=False)


def test_a_failed_training_is_recorded_and_left_out_of_the_statistics(tmp_path, monkeypatch, recipe, small):
    from nas.train import TrainingFailed

    train = fake_train([])

    def fails_for_v2(arch, r):
        if arch.name.startswith("v2"):
            raise TrainingFailed("diverged", 0, "loss is nan")
        return train(arch, r)

    monkeypatch.setattr(fidelity, "_train", fails_for_v2)
    result = run_fidelity(recipe, small, tmp_path / "out", progress=False)
    assert result["networks"] == len(small) - 1
    assert result["failed"] == {"V2 0.35 r96": "failed: diverged at epoch 1: loss is nan"}


@pytest.mark.parametrize("workers", [0, 1000])
def test_workers_outside_one_to_cpu_count_are_refused(tmp_path, recipe, small, workers):
    with pytest.raises(NasError, match="workers"):
        run_fidelity(recipe, small, tmp_path / "out", workers=workers, progress=False)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- a real tiny run

@pytest.fixture(scope="module")
def two_colour_folder(tmp_path_factory) -> Path:
    """500 16x16 images in two classes (reddish, bluish): trains in a second, no CIFAR decode."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("blue", "red")):
        (root / name).mkdir()
        for i in range(250):
            img = rng.integers(0, 120, (16, 16, 3), dtype=np.uint8)
            img[..., 2 * (1 - c)] += 120
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def test_a_real_run_writes_accuracies_json_csv_and_plot(tmp_path, monkeypatch, shipped, two_colour_folder):
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE + f"dataset: imagefolder:{two_colour_folder}\n")
    recipe = load_recipe(path)
    nets = [n for n in shipped if n.name in SMALL[:2]]
    result = run_fidelity(recipe, nets, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    rows = read_accuracies(out / "accuracies.csv")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(0 <= float(r["proxy_accuracy"]) <= 1 and len(json.loads(r["epoch_accuracies"])) == 2
               for r in rows)
    assert json.loads((out / "fidelity.json").read_text())["recipe_fingerprint"] == result["recipe_fingerprint"]
    assert len((out / "fidelity.csv").read_text().splitlines()) == 3
    assert (out / "fidelity.png").read_bytes()[:4] == b"\x89PNG"
    assert result["cpu_seconds"]["total"] > 0


# ---------------------------------------------------------------- the CLI

def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output  # stdout and stderr, interleaved


def test_proxy_networks_json_lists_53_networks_and_184_pairs():
    code, out = run("proxy", "networks", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["networks"]) == 53 and data["matched_pairs"] == 184
    assert set(data["scores"]) >= {"latency", "params", "madds", "cost-only (leave-one-out)"}


@pytest.mark.parametrize("command", [["proxy", "networks"], ["proxy", "fidelity", "--no-progress"]])
def test_a_bad_networks_file_exits_2_on_one_line(tmp_path, command):
    path = write_networks(tmp_path, [{**GOOD, "top1": 101}])
    code, out = run(*command, "--networks", str(path))
    assert code == 2 and "top1: 101 is not allowed" in out and out.count("\n") == 1


def test_networks_repeats_to_list_several_files(tmp_path):
    a = write_networks(tmp_path / "a", [GOOD])
    code, out = run("proxy", "networks", "--networks", str(a), "--networks", str(HELD_OUT_NETWORKS), "--json")
    assert code == 0 and [n["name"] for n in json.loads(out)["networks"]] == [GOOD["name"]] + [
        f"V1 0.75 r{r}" for r in (224, 192, 160, 128)]
    code, out = run("proxy", "networks", "--networks", str(a), "--networks", str(a))
    assert code == 2 and "already used in" in out and out.count("\n") == 1


def test_fidelity_prints_the_proxy_beside_every_baseline(tmp_path, monkeypatch):
    monkeypatch.setattr(fidelity, "_train", fake_train([]))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    code, out = run("proxy", "fidelity", "--recipe", str(recipe), "--only", "V1", "--only", "V3-Small 1.0",
                    "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 0, out
    for label in ("proxy (trained)", "pixel latency (free)", "parameters (free)", "multiply-adds (free)",
                  "cost-only (leave-one-out)", "proxy+cost (leave-one-out)"):
        assert label in out
    assert "17 networks: 17 trained now, 0 read from" in out  # 12 V1 + 5 V3-Small 1.0


def test_fidelity_json_holds_the_recipe_and_fitted_coefficients(tmp_path, monkeypatch):
    monkeypatch.setattr(fidelity, "_train", fake_train([]))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    code, out = run("proxy", "fidelity", "--recipe", str(recipe), "--only", "V1", "--out", str(tmp_path / "o"),
                    "--no-progress", "--json")
    data = json.loads(out)
    assert code == 0 and data["recipe"]["epochs"] == 2
    assert len(data["estimates"]["proxy+cost"]["coefficients"]) == 6


def test_workers_beyond_the_cpu_count_exit_2(tmp_path):
    code, out = run("proxy", "fidelity", "--workers", "1000", "--out", str(tmp_path / "o"))
    assert code == 2 and "workers: 1000 is not allowed" in out


def test_fidelity_with_estimate_scores_the_shipped_fit_and_writes_no_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(fidelity, "_train", fake_train([]))
    code, out = run("proxy", "fidelity", "--networks", str(KEPT_ASIDE_NETWORKS), "--estimate", "shipped",
                    "--only", "MnasNet-A1 1.0", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 0, out
    assert "proxy+cost+prior (fitted elsewhere)" in out and "cost-only (fitted elsewhere)" in out
    assert "leave-one-out" not in out and not (tmp_path / "o" / "estimate.json").exists()
    assert json.loads((tmp_path / "o" / "fidelity.json").read_text())["fitted_file"].endswith("estimate.json")


def test_an_estimate_for_another_recipe_exits_2_naming_the_option(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    code, out = run("proxy", "fidelity", "--recipe", str(recipe), "--estimate", "shipped",
                    "--out", str(tmp_path / "o"))
    assert code == 2 and out.startswith("error: --estimate: ") and "fitted for another recipe" in out
    assert out.count("\n") == 1 and not (tmp_path / "o").exists()
