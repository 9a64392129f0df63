"""Derive the `pixel` table (Google Pixel 1, float TFLite, one big core) from measured data.

Inputs, all under `latency_tables/` (copies of the shared raw data with their provenance):
  pixel1_proxylessnas_lut.yaml  72 ops measured on a Pixel 1 with 2018 TFLite (ProxylessNAS)
  pixel1_published.yaml         published whole-network Pixel-1 latencies, each marked fit/holdout
  published_archs/*.json        architectures of published networks that are not baselines

Steps (`derive_pixel`):
  1. translate the measured ops to our keys (ReLU6, no SE); they enter the table as measured;
  2. fit the per-op model on the 70 measured blocks and head conv together with the 2018
     networks marked `fit` (MobileNetV2 1.0 from 96 to 224 pixels): pointwise / depthwise (per
     kernel size) multiply-adds, convolution weights, activation traffic, residual adds, kernel
     count; the stem and the classifier have one measurement each and get their own rate;
  3. fit what the 2018 ops cannot tell: the cost per h-swish element (the slope of the
     MobileNetV3 paper's h-swish ablation), then on the 2019 networks marked `fit` the cost per
     squeeze-excite element and the 2018 -> 2019 TFLite scale;
  4. predict every published network (2018 ones without the scale) and report the errors,
     held-out networks separately.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import nnls

from nas.arch import Arch, Layer
from nas.baselines import load_reference
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.latency.model import OpModel, Overhead, feature_matrix, op_features
from nas.latency.predict import sum_of_ops
from nas.latency.table import KEY_FORMAT, Row, Table, write_table
from nas.paths import LATENCY_TABLES, WRITTEN_LATENCY_TABLES
from nas.tables import markdown_table
from nas.transforms import apply_variant, scale_like

LUT_FILE = LATENCY_TABLES / "pixel1_proxylessnas_lut.yaml"
PUBLISHED_FILE = LATENCY_TABLES / "pixel1_published.yaml"
LUT_FEATURES = ("pw_madds", "dw3_madds", "dw5_madds", "dw7_madds", "conv_weights", "act_mem",
                "add_elems", "kernels")
_BLOCK_KEY = re.compile(r"expanded_conv-input:(\d+)x\d+x(\d+)-output:\d+x\d+x(\d+)-expand:(\d+)"
                        r"-kernel:(\d+)-stride:(\d+)-idskip:([01])$")
_LUT_ACT = "relu6"  # ProxylessNAS's blocks use ReLU6


# ---------------------------------------------------------------- the measured op table

@dataclass(frozen=True)
class LutEntry:
    source_key: str
    layer: Layer
    mean_ms: float
    std_ms: float
    count: int


def read_lut(path: Path = LUT_FILE) -> tuple[list[LutEntry], LutEntry, LutEntry]:
    """The measured blocks plus head conv, then the stem, then the classifier ("Logits": global
    pool + fully connected layer), translated to our layers."""
    raw = yaml.safe_load(Path(path).read_text())
    blocks, stem, logits = [], None, None
    for key, v in raw.items():
        stats = dict(mean_ms=float(v["mean"]), std_ms=float(v["var"]) ** 0.5, count=int(v["count"]))
        m = _BLOCK_KEY.match(key)
        if m:
            size, cin, cout, expand, kernel, stride, skip = map(int, m.groups())
            layer = Layer("ir", size, cin, cout, kernel, stride, cin * expand, False, _LUT_ACT)
            if layer.residual != bool(skip):
                raise NasError(f"{path}: {key}: idskip {skip} disagrees with the block's shape")
            blocks.append(LutEntry(key, layer, **stats))
        elif key.startswith("Conv-"):
            stem = LutEntry(key, Layer("stem", 224, 3, 32, 3, 2, act=_LUT_ACT), **stats)
        elif key.startswith("Conv_1-"):
            blocks.append(LutEntry(key, Layer("conv", 7, 320, 1280, act=_LUT_ACT), **stats))
        elif key.startswith("Logits-"):
            logits = LutEntry(key, Layer("fc", 1, 1280, 1000), **stats)
    if stem is None or logits is None:
        raise NasError(f"{path}: expected a 'Conv-...' stem and a 'Logits-...' classifier entry")
    return blocks, stem, logits


# ---------------------------------------------------------------- published networks

@dataclass(frozen=True)
class Published:
    name: str
    arch: Arch
    ms: float
    era: int
    source: str
    role: str
    group: str = ""


def load_published(path: Path = PUBLISHED_FILE) -> list[Published]:
    """The published networks of `pixel1_published.yaml`, built as architectures."""
    entries = yaml.safe_load(Path(path).read_text())["networks"]
    out = []
    for e in entries:
        if e.get("role") not in ("fit", "holdout") or e.get("era") not in (2018, 2019):
            raise NasError(f"{path}: {e.get('name')}: role must be fit/holdout and era 2018/2019")
        arch = load_reference(e["base"])
        arch = scale_like(arch, float(e.get("width", 1.0)), e.get("scaling", "v3"))
        arch = apply_variant(arch, e.get("variant"))
        arch = arch.with_overrides(resolution=int(e.get("resolution", 224)))
        out.append(Published(e["name"], replace(arch, name=e["name"]), float(e["ms"]), e["era"],
                             e["source"], e["role"], e.get("group", "")))
    return out


# ---------------------------------------------------------------- derivation

@dataclass(frozen=True)
class Derivation:
    table: Table
    op_model: OpModel
    scale: float
    lut_fit: dict
    rows: list[dict]  # one per published network: name, era, role, published, predicted, error


def _network_rows(networks: list[Published], table: Table, fixed: dict[str, float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per network: the summed features of its ops the table lacks, and its latency minus the
    table's ops and the fixed-rate part of the others."""
    x, y = [], []
    for p in networks:
        known, missing = 0.0, []
        for layer in p.arch.layers():
            row = table.lookup(layer)
            if row is None:
                missing.append(layer)
            else:
                known += row.ms
        f = feature_matrix(missing, (*LUT_FEATURES, *fixed)).sum(axis=0)
        x.append(f[:len(LUT_FEATURES)])
        y.append(p.ms - known - f[len(LUT_FEATURES):] @ np.array(list(fixed.values())))
    return np.array(x).reshape(len(networks), len(LUT_FEATURES)), np.array(y)


def _measured_table(blocks: list[LutEntry], stem: LutEntry, logits: LutEntry, pool_ms: float) -> Table:
    """The measured ops as table rows. "Logits" timed the global pool and the classifier
    together; the pool's modelled share is taken off so the pool is not counted twice."""
    table = Table(_pixel_header())
    for e in [*blocks, stem]:
        table.rows[e.layer.key] = Row(e.layer, e.mean_ms, e.mean_ms, e.std_ms, e.count, "measured")
    fc_ms = logits.mean_ms - pool_ms
    table.rows[logits.layer.key] = Row(logits.layer, fc_ms, fc_ms, logits.std_ms, logits.count, "measured")
    return table


def _fit_op_model(blocks: list[LutEntry], stem: LutEntry, logits: LutEntry,
                  networks: list[Published]) -> tuple[OpModel, Table, dict]:
    """NNLS on relative error over the measured blocks and the 2018 networks marked `fit` (their
    measured ops taken as measured), the networks together weighing as much as all the blocks.
    The stem and the classifier, measured once each, get their own rate (all of their time per
    multiply-add, per weight). Returns the model, the measured table and fit statistics."""
    stem_f, fc_f = op_features(stem.layer), op_features(logits.layer)
    fixed = {"conv_madds": stem.mean_ms / stem_f["conv_madds"],
             "fc_weights": logits.mean_ms / fc_f["fc_weights"]}
    layers = [b.layer for b in blocks]
    ms = np.array([b.mean_ms for b in blocks])
    net_ms = np.array([p.ms for p in networks])
    x_ops = feature_matrix(layers, LUT_FEATURES)
    pool_ms = 0.0
    for _ in range(3):  # the pool's share of "Logits" depends on the fit; three rounds settle it
        table = _measured_table(blocks, stem, logits, pool_ms)
        x_net, y_net = _network_rows(networks, table, fixed)
        x = np.vstack([x_ops, x_net])
        y = np.concatenate([ms, y_net])
        w = np.concatenate([1 / ms, len(ms) / max(1, len(networks)) / net_ms])
        solution, _ = nnls(x * w[:, None], y * w, maxiter=1000)
        model = OpModel({**dict(zip(LUT_FEATURES, solution.tolist())), **fixed})
        pool_ms = model.predict(Layer("pool", 7, 1280, 1280))
    table = _measured_table(blocks, stem, logits, pool_ms)
    pred = x_ops @ solution
    net_pred = np.array([sum_of_ops(table, p.arch, model) for p in networks])
    stats = {"ops": len(layers), "op_mape_pct": _pct(np.mean(np.abs(pred / ms - 1))),
             "op_within_10pct": _pct(np.mean(np.abs(pred / ms - 1) < 0.1)),
             "networks": [p.name for p in networks],
             "network_mape_pct": _pct(np.mean(np.abs(net_pred / net_ms - 1))) if len(networks) else None,
             "pool_share_of_logits_ms": round(pool_ms, 4)}
    return model, table, stats


def _pct(v: float) -> float:
    return round(float(v) * 100, 1)


def _hswish_slope(networks: list[Published]) -> float:
    """Milliseconds per million h-swish elements: the least-squares slope of latency over h-swish
    elements across one network's activation layouts (the MobileNetV3 paper's ablation)."""
    hs = np.array([feature_matrix(p.arch.layers(), ("hswish_elems",)).sum() for p in networks])
    ms = np.array([p.ms for p in networks])
    return float(np.polyfit(hs, ms, 1)[0])


def _fit_calibration(published: list[Published], table: Table, model: OpModel
                     ) -> tuple[OpModel, float, float]:
    """The 2019 costs the 2018 ops cannot tell.

    h-swish: the slope of the `hswish-ablation` group (2019 ms per million elements).
    Then on the other 2019 networks marked `fit`, non-negative least squares on relative error of
        latency_2019 = s * (sum of 2018 op ms + a_se * se_elems) + slope * hswish_elems
    (linear in s and s*a_se). Returns the op model with a_hs = slope / s and a_se in 2018 ms,
    the scale s, and the slope."""
    ablation = [p for p in published if p.group == "hswish-ablation"]
    slope = max(0.0, _hswish_slope(ablation)) if len(ablation) >= 2 else 0.0
    fit = [p for p in published if p.role == "fit" and p.era == 2019 and p.group != "hswish-ablation"]
    x, y = [], []
    for p in fit:
        hs, se = feature_matrix(p.arch.layers(), ("hswish_elems", "se_elems")).sum(axis=0)
        x.append([sum_of_ops(table, p.arch, model), se])
        y.append(p.ms - slope * hs)
    x, y = np.array(x), np.array(y)
    w = 1.0 / np.array([p.ms for p in fit])
    (s, b_se), _ = nnls(x * w[:, None], y * w)
    return OpModel(dict(model.coef, hswish_elems=slope / s, se_elems=b_se / s)), float(s), slope


def derive_pixel(lut: Path = LUT_FILE, published_file: Path = PUBLISHED_FILE,
                 out: Path | None = WRITTEN_LATENCY_TABLES / "pixel.csv") -> Derivation:
    """Fit the pixel op model and calibration, predict every published network, write the table
    (unless `out` is None) and return the derivation with its per-network report rows."""
    blocks, stem, logits = read_lut(lut)
    published = load_published(published_file)
    fit_2018 = [p for p in published if p.role == "fit" and p.era == 2018]
    op_model, table, lut_stats = _fit_op_model(blocks, stem, logits, fit_2018)
    op_model, scale, slope = _fit_calibration(published, table, op_model)
    rows = []
    for p in published:
        raw = sum_of_ops(table, p.arch, op_model)
        pred = raw * (scale if p.era == 2019 else 1.0)
        rows.append({"name": p.name, "era": p.era, "role": p.role, "source": p.source,
                     "published_ms": p.ms, "predicted_ms": round(pred, 2),
                     "error_pct": round((pred / p.ms - 1) * 100, 1)})
    table.header["op_model"] = op_model.to_dict()
    table.header["overhead"] = Overhead({"ops_ms": scale}).to_dict()
    table.header["fit"] = _fit_summary(lut_stats, rows, scale, op_model)
    if out is not None:
        write_table(table, out)
    return Derivation(table, op_model, scale, lut_stats, rows)


def _pixel_header() -> dict:
    return {
        "target": "pixel",
        "device": "Google Pixel 1 (Snapdragon 821), one big Kryo core",
        "runtime": "tflite",
        "runtime_version": "TFLite of the MobileNetV3 paper (2019); ops measured on 2018 TFLite",
        "threads": 1,
        "date": datetime.date.today().isoformat(),
        "method": "derived",
        "measured_on": "derived",
        "how": ("Rows: the 72 ops ProxylessNAS measured on a Pixel 1 (2018 float TFLite, big core), "
                "as measured (latency_tables/pixel1_proxylessnas_lut.yaml), in 2018 milliseconds; the "
                "classifier row is 'Logits' minus the modelled global pool. Ops not in the table come "
                "from op_model, fitted on those ops and the 2018 networks marked 'fit' in "
                "pixel1_published.yaml; its h-swish and squeeze-excite costs are fitted on the 2019 "
                "networks marked 'fit'. overhead.ops_ms scales a "
                "network's 2018 sum to the TFLite of the MobileNetV3 paper. Re-derive with "
                "'nas latency derive --target pixel'."),
        "key_format": KEY_FORMAT,
        "act_aliases": {"relu": "relu6"},
    }


def _fit_summary(lut_stats: dict, rows: list[dict], scale: float, model: OpModel) -> dict:
    def summary(sel: list[dict]) -> dict:
        err = np.array([abs(r["error_pct"]) for r in sel])
        return {"networks": len(sel), "mape_pct": round(float(err.mean()), 1),
                "within_10pct": round(float(np.mean(err <= 10)) * 100, 1),
                "max_abs_error_pct": round(float(err.max()), 1)} if sel else {}
    return {"lut_op_model": lut_stats, "era_scale_2018_to_2019": round(scale, 4),
            "hswish_ms_per_m_elems": round(model.coef["hswish_elems"], 4),
            "hswish_2019_ms_per_m_elems": round(model.coef["hswish_elems"] * scale, 4),
            "se_ms_per_m_elems": round(model.coef["se_elems"], 4),
            "fitted_networks": summary([r for r in rows if r["role"] == "fit"]),
            "holdout_networks": summary([r for r in rows if r["role"] == "holdout"])}


def write_report(d: Derivation, path: Path = WRITTEN_LATENCY_TABLES / "pixel-derivation.md") -> Path:
    """The derivation as markdown: coefficients, fit statistics, every published network."""
    fit = d.table.header["fit"]
    lut = fit["lut_op_model"]
    lines = [
        "# How `latency_tables/pixel.csv` was derived",
        "",
        "Written by `nas latency derive --target pixel` (nas/latency/pixel.py); do not edit by hand.",
        "",
        "## Per-op model (2018 TFLite milliseconds per unit; MAdds and elements in millions)",
        "",
        *markdown_table([{"feature": k, "coefficient": f"{v:.6g}"} for k, v in d.op_model.coef.items()]),
        "",
        f"Fitted on {lut['ops']} measured ops (MAPE {lut['op_mape_pct']} %, {lut['op_within_10pct']} % "
        f"within ±10 %) together with {', '.join(lut['networks'])} (network MAPE "
        f"{lut['network_mape_pct']} %). The stem and the classifier each have one measurement and their "
        f"own rate (conv_madds, fc_weights); the global pool's modelled share of 'Logits' is "
        f"{lut['pool_share_of_logits_ms']} ms.",
        "",
        "## Calibration to the TFLite of the MobileNetV3 paper",
        "",
        f"- h-swish: {fit['hswish_2019_ms_per_m_elems']} ms per million elements (2019), the slope of the "
        f"paper's Table 5 ablation;",
        f"- squeeze-excite: {fit['se_ms_per_m_elems']} ms per million gated elements (2018 ms), and",
        f"- 2018 -> 2019 scale: {fit['era_scale_2018_to_2019']} (overhead.ops_ms in the table header),",
        "  both fitted on the 2019 networks marked `fit`.",
        "",
        "## Published vs predicted (Pixel 1, ms)",
        "",
        f"Fitted on: {fit['fitted_networks']['networks']} networks, MAPE {fit['fitted_networks']['mape_pct']} %. "
        f"Held out: {fit['holdout_networks']['networks']} networks, MAPE {fit['holdout_networks']['mape_pct']} %, "
        f"{fit['holdout_networks']['within_10pct']} % within ±10 %, worst {fit['holdout_networks']['max_abs_error_pct']} %.",
        "2018 networks are predicted without the 2018 -> 2019 scale (their runtime is the op table's).",
        "",
        *markdown_table([{"network": r["name"], "TFLite": str(r["era"]), "role": r["role"],
                          "published": f"{r['published_ms']:g}", "predicted": f"{r['predicted_ms']:.1f}",
                          "error": f"{r['error_pct']:+.1f} %", "source": r["source"]} for r in d.rows]),
        "",
        "Sources: see the header of latency_tables/pixel1_published.yaml.",
    ]
    return write_text_atomic(path, "\n".join(lines) + "\n")
