"""The winner, measured: end-to-end timing next to the prediction on a measured target; a reason,
and no timing, on a target that needs its device."""

import json

import pandas as pd
import pytest

from nas.arch import dumps_arch
from nas.baselines import load_baseline
from nas.latency import machine
from nas.latency import predict as predict_module
from nas.latency.measure import TimingPlan
from nas.latency.table import Row, Table, write_table
from nas.latency.winner import measure_against_prediction, measure_run

TINY_PLAN = TimingPlan(warmup=1, rounds=2, min_samples=2, max_samples=4, budget_s=0.001, retries=0)


def test_a_derived_target_says_measuring_needs_the_device():
    m = measure_against_prediction([load_baseline("mobilenet_v3_small")], "pixel")
    assert m["measured"] is False and "needs that device" in m["reason"] and "networks" not in m


def test_a_table_measured_on_a_phone_is_not_timed_here(tmp_path, monkeypatch):
    monkeypatch.setattr(predict_module, "LATENCY_TABLES", tmp_path)
    row = Row(load_baseline("mobilenet_v3_small").layers()[0], 1.0, 1.0, 0.0, 1)
    write_table(Table({"target": "phone", "method": "measured", "measured_on": "device", "device": "Pixel 7",
                       "runtime": "tflite", "op_model": {"block": 1, "pw_madds": 0.1}}, {row.key: row}),
                tmp_path / "phone.csv")
    m = measure_against_prediction([load_baseline("mobilenet_v3_small")], "phone")
    assert m["measured"] is False and "Pixel 7" in m["reason"]


@pytest.fixture
def torch_target(tmp_path, monkeypatch):
    """A tiny measured torch table whose fingerprint is this machine's."""
    monkeypatch.setattr(predict_module, "LATENCY_TABLES", tmp_path)
    arch = load_baseline("mobilenet_v3_small").with_overrides(width=0.5, resolution=64)
    rows = {l.key: Row(l, 0.05, 0.05, 0.0, 3) for l in arch.layers()}
    write_table(Table({"target": "tiny-cpu", "method": "measured", "runtime": "torch", "threads": 1,
                       "machine": machine.this_machine("torch", 1),
                       "op_model": {"block": 1, "pw_madds": 0.01}}, rows), tmp_path / "tiny-cpu.csv")
    return arch


def test_a_measured_target_times_each_network_next_to_its_prediction(torch_target):
    m = measure_against_prediction([torch_target], "tiny-cpu", TINY_PLAN)
    assert m["measured"] is True and m["threads"] == 1 and m["runtime"].startswith("torch")
    (net,) = m["networks"]
    assert net["name"] == torch_target.name and net["measured_ms"] > 0
    assert net["predicted_ms"] == pytest.approx(0.05 * len(torch_target.layers()), rel=0.01)
    assert net["error_pct"] == pytest.approx((net["predicted_ms"] / net["measured_ms"] - 1) * 100, abs=0.1)
    assert {"before", "after"} == set(m["load_average"]) and "note" not in m


def run_folder(tmp_path, arch, target):
    out = tmp_path / "run"
    out.mkdir()
    pd.DataFrame([{"number": 3, "arch": dumps_arch(arch)}]).to_csv(out / "trials.csv", index=False)
    (out / "summary.md").write_text("# Search\n")
    return out, {"target": target, "best": {"trial": 3, "name": arch.name}, "baselines": {}}


def test_measure_run_writes_measured_json_and_a_summary_section(tmp_path, torch_target):
    out, summary = run_folder(tmp_path, torch_target, "tiny-cpu")
    result = measure_run(summary, out, TINY_PLAN)
    saved = json.loads((out / "measured.json").read_text())
    assert result["measured"] == saved and saved["networks"][0]["label"] == "winner"
    text = (out / "summary.md").read_text()
    assert "Measured on this machine" in text and "| winner (" in text


def test_measure_run_on_pixel_says_why_not(tmp_path):
    arch = load_baseline("mobilenet_v3_small")
    out, summary = run_folder(tmp_path, arch, "pixel")
    result = measure_run(summary, out)
    assert result["measured"]["measured"] is False
    assert "needs that device" in (out / "summary.md").read_text()


def test_calibration_networks_timed_alongside_give_the_measurement_at_the_tables_speed(
        torch_target, tmp_path, monkeypatch):
    import csv

    import nas.latency.build as build
    from nas.latency.build import calibration_set
    from nas.latency.winner import SESSION_NETWORKS, measured_markdown
    from nas.space import load_space

    monkeypatch.setattr(build, "EXPERIMENTS", tmp_path)
    (tmp_path / "latency").mkdir()
    stored = {a.name: 2.0 + i for i, a in enumerate(calibration_set(load_space(), 16))}
    with open(tmp_path / "latency" / "tiny-cpu-calibration.csv", "w", newline="") as f:
        csv.writer(f).writerows([("arch", "measured_ms"), *stored.items()])
    timed, canaries = [], []

    def measure(archs, runtime, threads, plan, canary):  # this session runs 10 % faster than the build
        timed.extend(a.name for a in archs)
        canaries.append(canary)
        return [stored[a.name] * 0.9 if a.name in stored else 1.8 for a in archs]
    monkeypatch.setattr(build, "measure_archs", measure)
    m = measure_against_prediction([torch_target], "tiny-cpu", TINY_PLAN)
    assert m["session_factor"]["factor"] == pytest.approx(0.9) and m["session_factor"]["networks"] == SESSION_NETWORKS
    assert len(timed) == 1 + SESSION_NETWORKS and timed[0] == torch_target.name
    assert canaries[0].plan == build.network_plan(TINY_PLAN)  # timed as the build's calibration was
    (net,) = m["networks"]
    assert net["measured_ms"] == 1.8 and net["at_table_speed_ms"] == pytest.approx(2.0)
    assert net["error_at_table_speed_pct"] == pytest.approx((net["predicted_ms"] / 2.0 - 1) * 100, abs=0.1)
    assert "at the table's speed (ms)" in measured_markdown(m) and "0.900x" in measured_markdown(m)
