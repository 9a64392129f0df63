"""nas.latency.validate: the calibration networks a validation times again, and what they say."""

import csv

import numpy as np
import pytest

import nas.latency.build as build
import nas.latency.validate as validate
from nas.latency.build import calibration_set
from nas.latency.measure import TimingPlan
from nas.space import load_space


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A quick build's calibration CSV (16 random + 8 wide networks, build-time ms 1, 2, ...)."""
    monkeypatch.setattr(build, "EXPERIMENTS", tmp_path)
    (tmp_path / "latency").mkdir()
    archs = calibration_set(load_space(), 16)
    ms = {a.name: float(i + 1) for i, a in enumerate(archs)}
    with open(tmp_path / "latency" / "t-calibration.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "measured_ms"])
        w.writerows(ms.items())
    return ms


def fake_timings(monkeypatch, stored, slowdown):
    """measure_archs as a machine that runs a calibration network `slowdown` x its stored time
    (and every other network in 5 ms); records the batches it was given."""
    batches = []

    def measure(archs, runtime, threads, plan, canary):
        batches.append([a.name for a in archs])
        return [stored[a.name] * slowdown if a.name in stored else 5.0 for a in archs]
    monkeypatch.setattr(validate, "measure_archs", measure)
    return batches


def test_every_stored_calibration_network_is_timed_again_spread_over_the_batches(monkeypatch, stored):
    batches = fake_timings(monkeypatch, stored, 1.05)
    others = (validate.outside_networks() * 3)[:42]  # 42 networks to validate, 66 with the 24: 5 batches
    measured, factors, repeat = validate._measure_with_references(
        others, "t", load_space(), "onnxruntime", 1, TimingPlan(), canary=None)
    assert sorted(r["arch"] for r in repeat) == sorted(stored)      # all 24, once each
    assert len(batches) == 5 and all(len(b) <= validate.NETWORK_BATCH for b in batches)
    assert all(any(n in stored for n in b) for b in batches)       # each batch has its own references
    assert list(measured) == [5.0] * len(others) and factors == pytest.approx([1.05] * len(others))
    r = validate.repeatability(repeat)
    assert r["n"] == 24 and r["within_10pct"] == 100.0 and r["mean_error_pct"] == pytest.approx(-4.76, abs=0.01)


def test_a_machine_that_changed_since_the_build_shows_in_its_repeatability(monkeypatch, stored):
    fake_timings(monkeypatch, stored, 1.25)  # every network now runs 25 % slow
    _, factors, repeat = validate._measure_with_references(
        validate.outside_networks(), "t", load_space(), "onnxruntime", 1, TimingPlan(), canary=None)
    r = validate.repeatability(repeat)
    assert r["within_10pct"] == 0.0 and r["spearman"] == pytest.approx(1.0)
    assert np.allclose(factors, 1.25)


def test_without_stored_calibration_there_is_no_repeatability(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "EXPERIMENTS", tmp_path)
    fake_timings(monkeypatch, {}, 1.0)
    measured, factors, repeat = validate._measure_with_references(
        validate.outside_networks(), "none", load_space(), "onnxruntime", 1, TimingPlan(), canary=None)
    assert repeat == [] and validate.repeatability(repeat) is None and set(factors) == {1.0}


def test_a_full_build_has_its_calibration_sampled_evenly():
    space = load_space()
    archs = calibration_set(space, 40)  # 40 random + 20 wide
    picked = validate.repeat_networks(space, {a.name: 1.0 for a in archs}, validate.REPEAT_NETWORKS)
    names = [a.name for a in picked]
    assert len(picked) == validate.REPEAT_NETWORKS and names[0] == "cal000" and names[-1] == "wide019"
    assert any(n.startswith("wide") for n in names) and len(set(names)) == len(names)
