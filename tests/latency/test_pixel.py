"""nas.latency.pixel: the pixel table derived from the ProxylessNAS ops and published latencies."""

from pathlib import Path

import pytest

from nas.cost import arch_cost
from nas.latency import predict_latency
from nas.latency import predict as predict_module
from nas.latency.pixel import derive_pixel, load_published
from nas.latency.table import read_table


PUBLISHED_PIXEL_MS = {"V3-Large 1.0": 51.0, "V3-Small 1.0": 15.8, "V2 1.0": 64.0}


@pytest.fixture(scope="module")
def derivation():
    return derive_pixel(out=None)


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
