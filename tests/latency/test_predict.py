"""nas.latency.predict and `nas latency predict / targets`: a network's latency from its table."""

import json

import pytest
from click.testing import CliRunner

from nas.baselines import load_baseline, load_reference
from nas.cli import main
from nas.errors import NasError
from nas.latency import known_targets, min_latency, predict_all_targets, predict_latency
from nas.latency import predict as predict_module
from nas.latency.model import OpModel
from nas.latency.pixel import read_lut
from nas.latency.table import Row, Table, write_table
from nas.space import load_space, smallest_arch


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_known_targets_include_the_shipped_tables():
    assert "pixel" in known_targets()


def test_an_op_missing_from_the_table_is_modelled_and_flagged():
    p = predict_latency(load_baseline("mobilenet_v3_small"), "pixel")
    modelled = [b for b in p.ops if b["source"] == "model"]
    assert p.n_modelled == len(modelled) > 0
    assert all(b["ms"] > 0 for b in p.ops)


def test_ops_in_the_table_are_used_as_measured():
    arch = load_baseline("mobilenet_v2")
    p = predict_latency(arch, "pixel")
    stem = p.ops[0]
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


def test_ops_the_table_never_measured_are_flagged_as_approximated():
    p = predict_latency(load_reference("efficientnet_b0"), "pixel")
    flagged = [b for b in p.ops if "approximated" in b]
    assert p.n_approximated == len(flagged) > 0
    assert any("swish costed as h-swish" in b["approximated"] for b in flagged)
    assert any("sigmoid SE gate" in b["approximated"] for b in flagged)
    code, out = run("latency", "predict", "efficientnet_b0", "--target", "pixel")
    assert code == 0 and "approximated" in out


def test_mobilenet_ops_are_never_flagged_approximated():
    assert predict_latency(load_baseline("mobilenet_v3_large"), "pixel").n_approximated == 0


def test_fbnet_a_shuffle_blocks_are_predicted_by_the_op_model_and_flagged():
    p = predict_latency(load_reference("fbnet_a"), "pixel")
    flagged = [b for b in p.ops if "approximated" in b]
    assert [b["op"] for b in flagged] == [9, 12, 14]  # the three ir_k*_g2 blocks (op 0 is the stem)
    assert all(b["source"] == "model" and "2-group 1x1 convs" in b["approximated"] for b in flagged)
    assert p.n_approximated == 3 and 0 < p.latency_ms < 100


def test_grouped_1x1_conv_costs_its_grouped_multiply_adds_in_the_op_model():
    from dataclasses import replace

    from nas.arch import Layer
    from nas.latency.model import op_features
    plain = Layer("ir", 14, 112, 112, 5, 1, 336, False, "relu")
    grouped = replace(plain, groups=2)
    assert op_features(grouped)["pw_madds"] == pytest.approx(op_features(plain)["pw_madds"] / 2)
    assert op_features(grouped)["dw5_madds"] == op_features(plain)["dw5_madds"]
    assert op_features(grouped)["kernels"] == op_features(plain)["kernels"] + 1  # the shuffle
