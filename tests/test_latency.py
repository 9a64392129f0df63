import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from nas.arch import Layer
from nas.baselines import load_baseline
from nas.cli import main
from nas.errors import NasError
from nas.latency import known_targets, min_latency, predict_all_targets, predict_latency
from nas.latency import predict as predict_module
from nas.latency.build import build_table
from nas.latency.measure import TimingPlan, robust_stats
from nas.latency.model import OpModel, Overhead, fit_op_model, op_features
from nas.latency.pixel import derive_pixel, load_published, read_lut
from nas.latency.table import Row, Table, read_table, write_table
from nas.cost import arch_cost
from nas.space import load_space, smallest_arch

PUBLISHED_PIXEL_MS = {"V3-Large 1.0": 51.0, "V3-Small 1.0": 15.8, "V2 1.0": 64.0}


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def derivation():
    return derive_pixel(out=None)


# ---------------------------------------------------------------- keys and the table format

def test_key_spells_out_every_field_of_the_signature():
    layer = Layer("ir", 56, 24, 24, kernel=5, stride=1, exp=72, se=True, act="hswish")
    assert layer.key == "ir-56x56x24-e72-o24-k5-s1-se1-hswish"


def test_every_baseline_op_has_a_distinct_key_per_signature():
    for name in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"):
        layers = load_baseline(name).layers()
        assert len({l.key for l in layers}) == len(set(layers))


layers = st.builds(
    Layer, kind=st.sampled_from(["stem", "ir", "ds", "conv", "pool", "fc"]),
    size=st.integers(1, 224), cin=st.integers(1, 1280), cout=st.integers(1, 1280),
    kernel=st.sampled_from([1, 3, 5, 7]), stride=st.sampled_from([1, 2]), exp=st.integers(0, 2000),
    se=st.booleans(), act=st.sampled_from(["relu", "relu6", "hswish", "none"]))
# allow_subnormal=False: a torch build test earlier in the run flushes denormals process-wide
rows = st.builds(Row, layer=layers, ms=st.floats(1e-4, 1e3, allow_subnormal=False),
                 mean_ms=st.floats(1e-4, 1e3, allow_subnormal=False),
                 std_ms=st.floats(0, 10, allow_subnormal=False), count=st.integers(1, 1000),
                 source=st.sampled_from(["measured", "model"]))


@settings(max_examples=30, deadline=None)
@given(st.lists(rows, min_size=1, max_size=8, unique_by=lambda r: r.key))
def test_table_round_trips_through_its_file(tmp_path_factory, table_rows):
    path = tmp_path_factory.mktemp("t") / "x.csv"
    table = Table({"target": "x", "device": "d", "op_model": {"block": 16, "pw_madds": 0.5}},
                  {r.key: r for r in table_rows})
    write_table(table, path)
    back = read_table(path)
    assert back.header == table.header
    assert set(back.rows) == set(table.rows)
    for key, row in table.rows.items():
        assert back.rows[key].layer == row.layer
        assert back.rows[key].ms == pytest.approx(row.ms, rel=1e-4)
        assert back.rows[key].count == row.count


def test_a_row_whose_key_disagrees_with_its_columns_is_rejected(tmp_path):
    path = tmp_path / "bad.csv"
    write_table(Table({"target": "bad"}, {}), path)
    path.write_text(path.read_text() + "ir-9x9x9-e9-o9-k3-s1-se0-relu,ir,8,9,9,9,3,1,0,relu,1,1,0,1,measured\n")
    with pytest.raises(NasError, match="does not match"):
        read_table(path)


def test_a_line_cut_short_by_an_interrupted_build_is_skipped(tmp_path):
    path = tmp_path / "cut.csv"
    row = Row(Layer("pool", 7, 96, 96), 0.01, 0.01, 0.0, 10)
    write_table(Table({"target": "cut"}, {row.key: row}), path)
    path.write_text(path.read_text() + "ir-7x7x96-e576-o96-k5-s1")
    assert list(read_table(path).rows) == [row.key]


# ---------------------------------------------------------------- prediction

def test_known_targets_include_the_shipped_tables():
    assert "pixel" in known_targets()


def test_an_op_missing_from_the_table_is_modelled_and_flagged():
    p = predict_latency(load_baseline("mobilenet_v3_small"), "pixel")
    modelled = [b for b in p.blocks if b["source"] == "model"]
    assert p.n_modelled == len(modelled) > 0
    assert all(b["ms"] > 0 for b in p.blocks)


def test_ops_in_the_table_are_used_as_measured():
    arch = load_baseline("mobilenet_v2")
    p = predict_latency(arch, "pixel")
    stem = p.blocks[0]
    assert stem["source"] == "table"
    assert stem["ms"] == pytest.approx(read_lut()[1].mean_ms, rel=1e-4)


def test_strict_makes_a_missing_op_an_error():
    with pytest.raises(NasError, match="not in the table"):
        predict_latency(load_baseline("mobilenet_v3_small"), "pixel", strict=True)
    code, out = run("latency", "predict", "mobilenet_v3_small", "--target", "pixel", "--strict")
    assert code == 2 and "not in the table" in out


def test_unknown_target_lists_the_known_ones_and_exits_2():
    code, out = run("latency", "predict", "mobilenet_v2", "--target", "no-such-phone")
    assert code == 2
    assert "known targets:" in out and "pixel" in out
    assert len(out.strip().splitlines()) == 1


def test_predict_json_has_the_contract_fields():
    code, out = run("latency", "predict", "mobilenet_v3_large", "--target", "pixel", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"target", "latency_ms", "blocks", "runtime", "threads", "n_modelled", "overhead_ms"} <= set(data)
    assert data["target"] == "pixel" and data["threads"] == 1
    assert len(data["blocks"]) == len(load_baseline("mobilenet_v3_large").layers())
    assert {"op", "kind", "key", "ms", "source"} <= set(data["blocks"][0])


def test_predict_prints_a_breakdown_and_flags_modelled_ops():
    code, out = run("latency", "predict", "mobilenet_v3_small", "--target", "pixel")
    assert code == 0
    assert "ir-" in out and "latency:" in out
    assert "predicted by the op model" in out


def test_targets_json_lists_provenance():
    code, out = run("latency", "targets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert rows["pixel"]["method"] == "derived"
    assert {"device", "runtime", "version", "threads"} <= set(rows["pixel"])


def test_nas_show_gains_a_latency_per_target():
    code, out = run("show", "mobilenet_v3_small")
    assert code == 0 and "ms on pixel" in out
    code, out = run("show", "mobilenet_v3_small", "--json")
    assert set(json.loads(out)["latency_ms"]) == set(known_targets())


def test_prediction_is_fast_enough_for_every_search_trial():
    arch = load_baseline("mobilenet_v3_large")
    predict_latency(arch, "pixel")
    start = time.perf_counter()
    for _ in range(100):
        predict_latency(arch, "pixel")
    assert (time.perf_counter() - start) / 100 < 0.005


def test_min_latency_is_below_every_baseline_and_positive():
    fastest = min_latency(load_space(), "pixel")
    assert 0 < fastest < predict_all_targets(load_baseline("mobilenet_v3_small"))["pixel"]
    assert fastest == predict_latency(smallest_arch(load_space()), "pixel").latency_ms


def test_a_table_without_a_fitted_model_gets_one_on_load(tmp_path, monkeypatch):
    truth = OpModel({"pw_madds": 0.02, "act_mem": 0.1, "kernels": 0.003})
    space_layers = [l for l in load_baseline("mobilenet_v2").layers()]
    table = Table({"target": "phone", "method": "measured", "runtime": "tflite", "threads": 1},
                  {l.key: Row(l, truth.predict(l), truth.predict(l), 0.0, 5) for l in space_layers})
    write_table(table, tmp_path / "phone.csv")
    monkeypatch.setattr(predict_module, "LATENCY_TABLES", tmp_path)
    arch = load_baseline("mobilenet_v3_small")
    p = predict_latency(arch, "phone")
    assert p.n_modelled > 0
    assert p.latency_ms == pytest.approx(sum(truth.predict(l) for l in arch.layers()), rel=0.25)


# ---------------------------------------------------------------- models

def test_op_model_fit_recovers_the_costs_that_generated_the_data():
    truth = {"pw_madds": 0.01, "dw3_madds": 0.02, "act_mem": 0.2, "kernels": 0.005}
    layers = [l for n in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v1") for l in load_baseline(n).layers()]
    layers += [l for w in (128, 160, 192) for l in load_baseline("mobilenet_v2").with_overrides(resolution=w).layers()]
    ms = [OpModel(truth).predict(l) for l in layers]
    model = fit_op_model(layers, ms, features=list(truth))
    for name, value in truth.items():
        assert model.coef[name] == pytest.approx(value, rel=1e-3)


def test_features_count_the_same_multiply_adds_as_cost():
    for layer in load_baseline("mobilenet_v3_large").layers():
        f = op_features(layer)
        madds = sum(f[k] for k in ("pw_madds", "dw3_madds", "dw5_madds", "dw7_madds", "conv_madds"))
        fc = f["fc_weights"]
        from nas.cost import layer_cost
        assert (madds + fc) * 1e6 == pytest.approx(layer_cost(layer).madds, rel=1e-9)


def test_channel_blocks_make_narrow_ops_cost_like_a_full_block():
    narrow = Layer("ir", 56, 8, 8, 3, 1, 8)
    full = Layer("ir", 56, 16, 16, 3, 1, 16)
    assert op_features(narrow, 16)["pw_madds"] == op_features(full, 16)["pw_madds"]
    assert op_features(narrow, 1)["pw_madds"] < op_features(full, 1)["pw_madds"]


def test_default_overhead_is_the_plain_sum():
    assert Overhead().apply({"ops_ms": 3.5, "n_ops": 20, "const": 1, "weights_m": 2, "act_m": 1}) == 3.5


def test_robust_stats_reject_a_preempted_sample():
    t = robust_stats([1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 9.0])
    assert t.rejected == 1 and t.median_ms == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------- the pixel derivation

@pytest.mark.parametrize("name", sorted(PUBLISHED_PIXEL_MS))
def test_pixel_predicts_the_published_latency_within_10_percent(name):
    arch = {p.name: p.arch for p in load_published()}[name]
    predicted = predict_latency(arch, "pixel").latency_ms
    assert predicted == pytest.approx(PUBLISHED_PIXEL_MS[name], rel=0.10)


def test_pixel_table_is_what_derive_writes(derivation):
    shipped = read_table(Path(predict_module.LATENCY_TABLES) / "pixel.csv")
    assert set(shipped.rows) == set(derivation.table.rows)
    assert shipped.header["overhead"]["ops_ms"] == pytest.approx(derivation.scale, rel=1e-4)


def test_pixel_rows_are_the_72_measured_ops(derivation):
    assert len(derivation.table.rows) == 72
    assert all(r.source == "measured" for r in derivation.table.rows.values())


def test_held_out_published_networks_are_reported_separately(derivation):
    held_out = [r for r in derivation.rows if r["role"] == "holdout"]
    names = {r["name"] for r in held_out}
    assert {"V3-Large 0.75", "V3-Small 0.75", "V2 0.35", "MnasNet-A1", "ProxylessNAS-mobile"} <= names
    summary = derivation.table.header["fit"]["holdout_networks"]
    assert summary["networks"] == len(held_out) >= 40
    assert summary["within_10pct"] >= 80  # a guard against a derivation change that overfits


def test_published_architectures_match_their_published_size():
    pub = {p.name: p.arch for p in load_published()}
    for name, params_m in {"V3-Large 0.75": 4.0, "V3-Small 0.75": 2.0, "V2 0.35": 1.66,
                           "ProxylessNAS-mobile": 4.1, "V2 1.4": 6.06}.items():
        assert arch_cost(pub[name]).params / 1e6 == pytest.approx(params_m, rel=0.06)


# ---------------------------------------------------------------- building by measurement

TINY_SPACE = """
name: tiny
num_classes: 10
resolution: [32]
width_mult: [0.5]
stem: {out: 16, kernel: 3, stride: 2, act: hswish}
block: {kernel: [3], expand: [3], se: [false, true], act: [relu]}
stages:
  - {stride: 2, depth: [1], width: [16]}
  - {stride: 2, depth: [1], width: [24]}
head: {conv_ratio: 2, hidden: [32], act: hswish, dropout: 0.0}
"""
QUICK = TimingPlan(warmup=1, rounds=2, min_samples=2, max_samples=4, budget_s=0.001, retries=0)


def test_build_writes_rows_as_it_goes_and_resumes(tmp_path):
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
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


def test_build_refuses_to_mix_runtimes_in_one_table(tmp_path):
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
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
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
    path = tmp_path / "ort.csv"
    result = build_table("ort", load_space(space_file), samples=6, calibration=6, plan=QUICK, path=path,
                         baselines=False, max_wait_s=0)
    assert result.calibration_mape_pct is not None
    assert set(read_table(path).header["overhead"]) == {"ops_ms", "const", "weights_m"}
