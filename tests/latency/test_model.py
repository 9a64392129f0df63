"""nas.latency.model and measure: the per-op model, the overhead model, robust timing statistics."""

import pytest

from nas.arch import Layer
from nas.baselines import load_baseline
from nas.latency.measure import robust_stats
from nas.latency.model import OpModel, Overhead, fit_op_model, op_features


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


def test_boundary_term_counts_every_op_input_and_output():
    from nas.latency.model import boundary_elements, network_terms
    ir = Layer("ir", 56, 24, 24, 3, 1, 72)
    assert boundary_elements(ir) == 24 * 56 * 56 * 2
    assert boundary_elements(Layer("pool", 7, 576, 576)) == 576 * 49 + 576
    assert boundary_elements(Layer("fc", 1, 576, 1024, act="hswish")) == 576 + 1024
    arch = load_baseline("mobilenet_v3_small")
    assert network_terms(arch, 2.0)["boundary_m"] * 1e6 == pytest.approx(
        sum(boundary_elements(l) for l in arch.layers()))


def test_every_table_fits_the_default_overhead_terms_and_scores_the_others():
    import numpy as np
    from nas.latency.model import DEFAULT_OVERHEAD_TERMS, network_terms, overhead_terms, score_overhead_terms
    archs = [load_baseline(n).with_overrides(width=w, resolution=r)
             for n in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small") for w in (0.5, 1.0) for r in (160, 224)]
    terms = [network_terms(a, 1.0 + i) for i, a in enumerate(archs)]
    truth = Overhead({"ops_ms": 0.9, "boundary_m": -0.3})   # what isolated timing adds at the boundaries
    measured = np.array([truth.apply(t) for t in terms])
    scores = score_overhead_terms(terms, measured)
    assert scores["ops_ms+boundary_m"] < 1e-6 < scores["ops_ms+const+weights_m"]
    assert set(score_overhead_terms(terms[:3], measured[:3])) == {"ops_ms+boundary_m"}  # fewer terms than networks
    assert overhead_terms(len(archs)) == DEFAULT_OVERHEAD_TERMS  # whichever scored best here
    assert overhead_terms(3) == ("ops_ms",)  # too few networks for three terms
