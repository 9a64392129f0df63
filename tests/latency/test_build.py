"""nas.latency.build: a table measured on this machine, written as it goes and resumable."""

import pytest

from nas.errors import NasError
from nas.latency.build import (EDGES_SUBTRACTED, NETWORK_RETRIES, QUICK_PLAN, _subtracts_edges, build_table,
                               network_plan)
from nas.latency.measure import TimingPlan, pace_network
from nas.latency.table import read_table
from nas.space import load_space
from conftest import FIXTURES


QUICK = TimingPlan(warmup=1, rounds=2, min_samples=2, max_samples=4, budget_s=0.001, retries=0)


def test_build_writes_rows_as_it_goes_and_resumes(tmp_path):
    space_file = FIXTURES / "tiny_space.yaml"
    space = load_space(space_file)
    path = tmp_path / "tiny-cpu.csv"
    first = build_table("tiny-cpu", space, runtime="torch", samples=3, calibration=0, plan=QUICK,
                        path=path, baselines=False)
    assert first.timed > 3 and first.reused == 0
    full = read_table(path)
    assert full.header["method"] == "measured" and "op_model" in full.header
    # interrupt: keep the header and two rows, then a half-written line
    lines = path.read_text().splitlines()
    body = [i for i, l in enumerate(lines) if not l.startswith("#")]
    path.write_text("\n".join(lines[:body[0] + 3]) + "\nir-8x8x8-e24")  # cut mid-line, as by a kill
    again = build_table("tiny-cpu", space, runtime="torch", samples=3, calibration=0, plan=QUICK,
                        path=path, baselines=False)
    assert again.reused == 2 and again.timed == first.timed - 2
    assert set(read_table(path).rows) == set(full.rows)


def test_calibration_of_one_network_is_refused(tmp_path):
    with pytest.raises(NasError, match="calibration: 1 is not allowed"):
        build_table("one", load_space(FIXTURES / "tiny_space.yaml"), runtime="torch", samples=3, calibration=1,
                    plan=QUICK, path=tmp_path / "one.csv", baselines=False)


def test_wide_calibration_networks_are_a_fixed_stream_whose_ops_a_build_times():
    from nas.latency.build import build_layers, wide_archs, wide_count
    wide = wide_archs(4)
    assert [a.name for a in wide] == ["wide000", "wide001", "wide002", "wide003"] and wide_count(16) == 8
    assert [a.layers() for a in wide] == [a.layers() for a in wide_archs(4)]  # a fixed stream
    keys = {l.key for l in build_layers(load_space(), 2, heads=False, wide=4)}
    assert all(l.key in keys for a in wide for l in a.layers())


def test_build_refuses_to_mix_runtimes_in_one_table(tmp_path):
    space_file = FIXTURES / "tiny_space.yaml"
    space = load_space(space_file)
    path = tmp_path / "mixed.csv"
    build_table("mixed", space, runtime="torch", samples=1, calibration=0, plan=QUICK, path=path,
                baselines=False)
    with pytest.raises(NasError, match="was measured with runtime torch"):
        build_table("mixed", space, runtime="torch", threads=2, samples=1, calibration=0, plan=QUICK,
                    path=path, baselines=False)


@pytest.mark.slow
def test_onnxruntime_build_calibrates_an_overhead_model(tmp_path, monkeypatch):
    import nas.latency.build as build_module
    monkeypatch.setattr(build_module, "EXPERIMENTS", tmp_path)
    space_file = FIXTURES / "tiny_space.yaml"
    path = tmp_path / "ort.csv"
    result = build_table("ort", load_space(space_file), samples=6, calibration=6, plan=QUICK, path=path,
                         baselines=False, max_wait_s=0, edges=True, pace_mode="network")
    assert result.calibration_mape_pct is not None
    from nas.latency.model import DEFAULT_OVERHEAD_TERMS, OVERHEAD_CANDIDATES
    header = read_table(path).header
    assert tuple(result.overhead_terms) == DEFAULT_OVERHEAD_TERMS  # 9 networks: enough for its 3 terms
    assert set(header["overhead"]) == set(result.overhead_terms) == set(header["overhead_fit"]["terms"])
    assert header["overhead_fit"]["networks"] == 9  # 6 random networks of the space, 3 wide ones
    assert header["edges"] == EDGES_SUBTRACTED  # its op rows are less their edge reorders
    assert not [c for c in header["overhead_fit"]["candidates_loo_mape_pct"] if "boundary_m" in c]  # ... not again
    assert len(header["overhead_fit"]["candidates_loo_mape_pct"]) == len(OVERHEAD_CANDIDATES) - 3
    assert header["network_pace"]["op"] == pace_network().name and header["network_pace"]["reference_ms"] > 0
    assert (tmp_path / "latency" / "ort-calibration.csv").read_text().count(",wide,") == 3


def test_networks_are_timed_one_way_whatever_plan_the_ops_were_timed_on():
    # a quick build's calibration, a validation and a measured winner must time networks alike:
    # with fewer retries a quick build calibrated on networks 10 % slower than validation saw
    assert network_plan(QUICK_PLAN) == network_plan(TimingPlan()) == network_plan(QUICK)
    assert network_plan(QUICK_PLAN).retries == NETWORK_RETRIES


def test_edge_reorders_come_off_new_onnxruntime_tables_only():
    from nas.latency.table import Table
    assert _subtracts_edges(None, "onnxruntime") and not _subtracts_edges(None, "torch")
    assert not _subtracts_edges(None, "onnxruntime", wanted=False)  # off unless --edges
    assert not _subtracts_edges(None, "tflite")
    # a table resumed keeps its unit: rows measured with the edges in stay so
    assert not _subtracts_edges(Table({"target": "old"}, rows={"k": object()}), "onnxruntime")
    assert _subtracts_edges(Table({"edges": EDGES_SUBTRACTED}, rows={"k": object()}), "onnxruntime")


def test_a_table_less_its_edge_reorders_does_not_fit_them_again():
    from nas.latency.build import overhead_candidates
    from nas.latency.model import OVERHEAD_CANDIDATES
    assert overhead_candidates({}) == OVERHEAD_CANDIDATES
    assert overhead_candidates({"edges": EDGES_SUBTRACTED}) == (("ops_ms", "const", "weights_m"),)


def test_a_new_table_is_anchored_to_its_whole_build_not_its_first_seconds(tmp_path, monkeypatch):
    import nas.latency.measure as measure
    from nas.latency.measure import Pace

    # the build starts in a slow spell: the first 5 pace readings take 2 ms, every later one 1 ms,
    # and every op runs in 1 ms throughout
    readings = iter([2.0] * 5)
    monkeypatch.setattr(measure, "PACE_START_S", 0.0)
    monkeypatch.setattr(Pace, "_read", lambda self: next(readings, 1.0))
    monkeypatch.setattr(measure, "_one", lambda run: 1.0)
    path = tmp_path / "spell.csv"
    build_table("spell", load_space(FIXTURES / "tiny_space.yaml"), runtime="torch", samples=2, calibration=0,
                plan=QUICK, path=path, baselines=False, pace_mode="network")
    table = read_table(path)
    # timed at the 2 ms reference the rows came out 2 ms; moved to the build's median pace, 1 ms
    assert [r.ms for r in table.measured()] == pytest.approx([1.0] * len(table.rows))
    assert table.header["pace"]["reference_ms"] == 1.0 and table.header["pace"]["anchored_by"] == 0.5


def test_rescaling_a_table_moves_its_measured_rows_and_canaries_not_its_modelled_rows():
    from nas.arch import Layer
    from nas.latency.build import rescale
    from nas.latency.table import Row, Table

    a, b = Layer("conv", 7, 16, 32), Layer("pool", 7, 32, 32)
    table = Table({"contention": {"canary_ms": {"canary:x": 0.4}}},
                  rows={a.key: Row(a, 2.0, 2.2, 0.2, 10), b.key: Row(b, 1.0, 1.0, 0.0, 0, "model")})
    rescale(table, 0.5)
    assert (table.rows[a.key].ms, table.rows[a.key].mean_ms, table.rows[a.key].std_ms) == (1.0, 1.1, 0.1)
    assert table.rows[b.key].ms == 1.0 and table.header["contention"]["canary_ms"] == {"canary:x": 0.2}


def test_a_noisy_build_says_so_and_how_to_redo_it(tmp_path):
    from pathlib import Path

    from nas.latency.build import NOISY_PCT, noise_warning
    path = Path("latency_tables/here.csv")
    quiet = {"op_model_fit": {"cv_mape_pct": 5.8}, "overhead_fit": {"loo_mape_pct": 4.1}}
    assert noise_warning(path, quiet, quick=True) is None
    noisy = {"op_model_fit": {"cv_mape_pct": 11.14}, "overhead_fit": {"loo_mape_pct": 13.18},
             "pace": {"factor_min": 0.562, "factor_max": 1.029}}
    line = noise_warning(path, noisy, quick=True)
    assert "11.14 %" in line and "13.18 %" in line and "0.562-1.029" in line and NOISY_PCT < 11.14
    assert "delete latency_tables/here.csv" in line and "nas latency build --target here --quick" in line
    # an op model alone (no calibration) is judged on its own figure
    assert noise_warning(path, {"op_model_fit": {"cv_mape_pct": 9.0}}, quick=False).count("--quick") == 0


def test_a_build_is_raw_unless_asked_to_pace_and_stores_no_pace(tmp_path):
    path = tmp_path / "raw.csv"
    build_table("raw", load_space(FIXTURES / "tiny_space.yaml"), runtime="torch", samples=1, calibration=0,
                plan=QUICK, path=path, baselines=False)
    header = read_table(path).header
    assert "pace" not in header and "network_pace" not in header


def test_every_op_keeps_its_fastest_pass_and_a_later_pass_meets_other_neighbours(tmp_path, monkeypatch):
    from collections import Counter

    import nas.latency.build as build_module
    from nas.latency.measure import Timing
    seen, batches = Counter(), []

    class Scripted:  # each op's first timing 2 ms, later ones 1 ms; the `first` op the other way round
        def __init__(self, *args, **kwargs):
            pass

        def time(self, runners, seed=0, plan=None):
            batches.append(sorted(runners))
            seen.update(list(runners))
            ms = {k: (0.5 if seen[k] == 1 else 3.0) if k == first else (2.0 if seen[k] == 1 else 1.0) for k in runners}
            return {k: Timing(v, v, v, 0.0, 5, 0) for k, v in ms.items()}

        def summary(self):
            return {"retimed_batches": 0}

    made = Counter()
    make = build_module.layer_runner
    monkeypatch.setattr(build_module, "layer_runner", lambda l, *a: made.update([l.key]) or make(l, *a))
    monkeypatch.setattr(build_module, "Canary", Scripted)
    monkeypatch.setattr(build_module, "BATCH", 3)
    space = load_space(FIXTURES / "tiny_space.yaml")
    first = build_module.build_layers(space, 2, baselines=False, heads=False, wide=0)[0].key
    path = tmp_path / "two.csv"
    build_table("two", space, runtime="torch", samples=2, calibration=0, plan=QUICK, path=path,
                baselines=False, quick=True, op_passes=2)
    table = read_table(path)
    assert set(seen.values()) == {2}  # every op timed twice
    assert set(made.values()) == {1}  # ... and exported once
    assert table.rows[first].ms == 0.5 and {r.ms for k, r in table.rows.items() if k != first} == {1.0}
    half = len(batches) // 2
    assert batches[:half] != batches[half:]  # the second pass batches the ops otherwise
    assert "keeps its fastest pass" in table.header["how"] and "pace op" not in table.header["how"]

    seen.clear()
    build_table("one", space, runtime="torch", samples=2, calibration=0, plan=QUICK, path=tmp_path / "one.csv",
                baselines=False, quick=True)
    assert set(seen.values()) == {1} and "fastest pass" not in read_table(tmp_path / "one.csv").header["how"]
