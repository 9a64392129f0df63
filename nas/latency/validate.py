"""Validating a measured table: predicted vs measured end-to-end latency of random networks of the
space (disjoint from the build's calibration networks) and the baselines, on this machine.

The networks are two groups, reported apart: random networks of the space ("random") and
networks outside it ("outside": the baselines, MnasNet-A1, ProxylessNAS-mobile and hand-made
variants, see `outside_networks`). Reported twice: as the table stands (ops it lacks come from the op model), and with the lacking
ops timed in isolation the way `build` times them (what a table covering them would give), plus
the op model's accuracy on those ops. Output: experiments/latency/<target>-validation.{json,csv,png}.

Other jobs on a shared machine slow whole networks (cache and memory contention) by an amount
that changes from minute to minute. So the batches of networks also re-time the build's
calibration networks (up to REPEAT_NETWORKS, spread over the batches), whose end-to-end
latencies were stored when the overhead model was fitted: their slowdown is their batch's
contention factor, and their agreement with the stored latencies is how well the machine's
timings of one network repeat across sessions ("repeatability"): the noise in the very timings
a table is checked against. Metrics are reported on the raw measurements and, separately, on
measurements divided by their batch's factor ("adjusted").
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nas.arch import Arch
from nas.baselines import baseline_names, load_baseline, load_reference, reference_names
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.latency.build import (BATCH, EDGES_SUBTRACTED, NETWORK_BATCH, calibration_archs,
                               calibration_timings, measure_archs, network_canary, op_row, repeat_networks,
                               validation_archs)
from nas.latency.measure import Canary, Pace, TimingPlan, layer_runner, load_average, wait_for_quiet
from nas.latency.model import network_terms
from nas.latency.predict import load_target, predict_latency
from nas.paths import EXPERIMENTS
from nas.plotting import figure, save_png
from nas.space import Space


OUTSIDE_VARIANTS = (("mobilenet_v1", 0.5, 160), ("mobilenet_v2", 0.75, 192), ("mobilenet_v2", 1.4, 224),
                    ("mobilenet_v3_large", 0.75, 224), ("mobilenet_v3_small", 1.25, 160))


def outside_networks() -> list[Arch]:
    """Networks the search space cannot produce, in order: the 4 baselines (V1, V2, V3-Large,
    V3-Small), the published ones of latency_tables/published_archs/ (MnasNet-A1 and -B1,
    ProxylessNAS GPU, mobile and mobile 1.4, and since issue 34 EfficientNet-B0, FBNet-B/C,
    MoGA-A/B/C, two Once-for-All subnets, HardCoRe-NAS A-F, Single-Path NAS, ProxylessNAS-CPU
    and V3-Large/Small minimalistic), and hand-made variants (OUTSIDE_VARIANTS: baselines
    at other widths and resolutions). No table's overhead model is fitted on any of them."""
    from dataclasses import replace as with_name

    nets = [load_reference(n) for n in reference_names()]
    for name, width, res in OUTSIDE_VARIANTS:
        a = load_baseline(name).with_overrides(width=width, resolution=res)
        nets.append(with_name(a, name=f"{name}-{width:g}-{res}"))
    return nets


def metrics(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """Spearman rank correlation, mean absolute percentage error, share within +-10 %, worst error."""
    err = predicted / measured - 1
    rho = float(spearmanr(predicted, measured)[0]) if len(measured) > 2 else float("nan")
    return {"n": int(len(measured)), "spearman": round(rho, 4),
            "mape_pct": round(float(np.mean(np.abs(err))) * 100, 2),
            "within_10pct": round(float(np.mean(np.abs(err) <= 0.10)) * 100, 1),
            "max_abs_error_pct": round(float(np.max(np.abs(err))) * 100, 1),
            "mean_error_pct": round(float(np.mean(err)) * 100, 2)}


@dataclass(frozen=True)
class Validation:
    target: str
    report: dict
    rows: list[dict]
    png: Path | None


def validate(target: str, space: Space, samples: int = 50, measure_missing: bool = True,
             out_dir: Path | None = None, plan: TimingPlan = TimingPlan(), progress=None,
             max_wait_s: float = 600.0) -> Validation:
    """Measure `samples` random networks of `space` and the baselines end to end with the table's
    runtime and threads (after waiting up to `max_wait_s` for a quiet machine), compare with
    `predict_latency`, write the report files, return them."""
    t = load_target(target)
    h = t.header
    if h.get("method") != "measured":
        raise NasError(f"target {target!r} is {h.get('method', 'not measured')}; validate times networks "
                       f"on this machine, so it needs a table measured here (e.g. local-cpu)")
    if h.get("measured_on") == "device":
        raise NasError(f"target {target!r} was measured on a device ({h.get('device', 'not this machine')}); "
                       f"validate times networks on this machine, so it cannot check that table here")
    runtime, threads = h["runtime"], int(h["threads"])
    calib = {a.layers() for a in calibration_archs(space, int(h.get("samples", 0)))}
    randoms = [a for a in validation_archs(space, samples) if a.layers() not in calib]
    archs = randoms + outside_networks()
    quiet = wait_for_quiet(max_wait_s=max_wait_s)
    load_before = load_average()
    reference = h.get("calibration_contention", h.get("contention", {})).get("canary_ms")
    pace, net_pace = Pace.for_table(h, runtime, threads), Pace.for_networks(h, runtime, threads)
    canary = network_canary(runtime, threads, plan, reference, net_pace)
    measured, factors, repeat = _measure_with_references(archs, target, space, runtime, threads, plan, canary)
    preds = [predict_latency(a, target) for a in archs]
    predicted = np.array([p.latency_ms for p in preds])
    sums = np.array([sum(b["ms"] for b in p.ops) for p in preds])
    rows = [{"arch": a.name, "resolution": a.resolution, "width_mult": a.width_mult,
             "n_ops": len(p.ops), "n_modelled": p.n_modelled, "sum_of_ops_ms": round(float(s), 4),
             "predicted_ms": p.latency_ms, "measured_ms": round(float(m), 4)}
            for a, p, s, m in zip(archs, preds, sums, measured)]
    adjusted = measured / factors
    n_base = slice(len(randoms), len(randoms) + len(baseline_names()))
    for row, f in zip(rows, factors):
        row["contention_factor"] = round(float(f), 4)
    report = {"target": target, "date": datetime.date.today().isoformat(), "runtime": h.get("runtime_version"),
              "threads": threads, "space": Path(space.path).name, "random_networks": len(randoms),
              "baselines": len(baseline_names()), "outside_networks": [a.name for a in archs[len(randoms):]],
              "as_shipped": {"all": metrics(predicted, measured),
                             "random": metrics(predicted[:len(randoms)], measured[:len(randoms)]),
                             "baselines": metrics(predicted[n_base], measured[n_base]),
                             "outside": metrics(predicted[len(randoms):], measured[len(randoms):])},
              "as_shipped_adjusted": {"all": metrics(predicted, adjusted),
                                      "random": metrics(predicted[:len(randoms)], adjusted[:len(randoms)]),
                                      "outside": metrics(predicted[len(randoms):], adjusted[len(randoms):])},
              "repeatability": repeatability(repeat),
              "contention_factor": {"min": round(float(factors.min()), 3), "max": round(float(factors.max()), 3),
                                    "how": "per batch of networks: mean slowdown of the calibration networks "
                                           "re-timed with it, against their latency when the table was calibrated"},
              "naive_sum_of_ops": {"sum_over_measured_min": round(float(min(sums / measured)), 3),
                                   "sum_over_measured_max": round(float(max(sums / measured)), 3),
                                   **metrics(sums, measured)},
              "overhead_model": h.get("overhead"), "op_model_fit": h.get("op_model_fit"),
              "modelled_ops_per_network": round(float(np.mean([p.n_modelled for p in preds])), 1)}
    if measure_missing:
        op_canary = Canary(runtime, threads, plan, reference=reference, pace=pace)
        report.update(_table_complete(t, archs, measured, adjusted, rows, op_canary, plan, progress))
    report["load_average"] = {"before": load_before, "after": load_average(), "waited_s": quiet["waited_s"]}
    report["contention"] = canary.summary()
    report["pace"] = pace.summary() if pace else "none: the table stores no pace reference, so its ms are raw"
    if net_pace:
        report["network_pace"] = net_pace.summary()
    if report["contention"]["worst_accepted_slowdown"] > canary.tolerance:
        report["warning"] = (f"the canaries ran up to {report['contention']['worst_accepted_slowdown']:.2f}x "
                             f"slower than when the table was built: the machine was busier, and "
                             f"measured latencies are inflated accordingly")
    out_dir = Path(out_dir or EXPERIMENTS / "latency")
    png = _write(out_dir, target, report, rows, predicted, measured, adjusted, sums, len(randoms))
    return Validation(target, report, rows, png)


REPEAT_NETWORKS = 24  # calibration networks re-timed by a validation (all of a quick build's)


def _measure_with_references(archs: list[Arch], target: str, space: Space, runtime: str, threads: int,
                             plan: TimingPlan, canary: Canary) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """End-to-end ms of `archs`; per network its batch's contention factor (the mean slowdown of
    the calibration networks re-timed in its batch against their build-time latency; 1.0 where
    none are stored); and the re-timed calibration networks themselves (arch, build_ms, now_ms).

    The calibration networks (`repeat_networks`) are spread over the batches: each batch's give
    its contention factor, and together they say how well this machine's timings of one network
    agree between the build and now (`repeatability`)."""
    stored = calibration_timings(target)
    refs = repeat_networks(space, stored, REPEAT_NETWORKS)
    batches = max(1, -(-(len(archs) + len(refs)) // NETWORK_BATCH))
    own, extra = np.array_split(np.arange(len(archs)), batches), np.array_split(np.arange(len(refs)), batches)
    measured, factors, repeat = [], [], []
    for mine, theirs in zip(own, extra):
        chunk, again = [archs[i] for i in mine], [refs[j] for j in theirs]
        ms = measure_archs(chunk + again, runtime, threads, plan, canary)
        repeat.extend({"arch": a.name, "build_ms": stored[a.name], "now_ms": round(float(m), 4)}
                      for a, m in zip(again, ms[len(chunk):]))
        ratios = [m / stored[a.name] for a, m in zip(again, ms[len(chunk):])]
        measured.extend(ms[:len(chunk)])
        factors.append(float(np.mean(ratios)) if ratios else None)
    known = [f for f in factors if f is not None]
    fill = float(np.mean(known)) if known else 1.0
    per_net = [f if f is not None else fill for f, mine in zip(factors, own) for _ in mine]
    return np.array(measured), np.array(per_net), repeat


def repeatability(repeat: list[dict]) -> dict | None:
    """How the re-timed calibration networks agree with their build-time timings (`metrics`, the
    build-time latency in the place of a prediction), or None when there are fewer than 3."""
    if len(repeat) < 3:
        return None
    build, now = (np.array([r[k] for r in repeat]) for k in ("build_ms", "now_ms"))
    return {**metrics(build, now), "how": "calibration networks timed again now against their latency "
            "when the table was calibrated: how well this machine's timings of one network repeat "
            "across sessions, the noise in the timings a table is checked against", "networks": repeat}


def _table_complete(t, archs: list[Arch], measured: np.ndarray, adjusted: np.ndarray, rows: list[dict],
                    canary: Canary, plan: TimingPlan, progress) -> dict:
    """Time the ops the table lacks in isolation; report the op model's accuracy on them and the
    network predictions with them measured instead of modelled."""
    missing = {}
    for a in archs:
        for layer in a.layers():
            if t.table.lookup(layer) is None:
                missing[layer.key] = layer
    layers = list(missing.values())
    batches = [layers[i:i + BATCH] for i in range(0, len(layers), BATCH)]
    timed: dict[str, float] = {}
    edges = t.header.get("edges") == EDGES_SUBTRACTED  # timed as the table's rows were
    for i, batch in enumerate(progress(batches, len(layers)) if progress else batches):
        runners = {l.key: layer_runner(l, t.header["runtime"], int(t.header["threads"])) for l in batch}
        timings = canary.time(runners, seed=500 + i, plan=plan)
        timed.update((l.key, op_row(l, timings[l.key], runners[l.key], edges).ms) for l in batch)
    out: dict = {"modelled_ops_timed": len(layers)}
    if layers:
        model_ms = np.array([t.op_model.predict(l) for l in layers])
        true_ms = np.array([timed[l.key] for l in layers])
        err = model_ms / true_ms - 1
        out["op_model_on_missing_ops"] = {
            "n": len(layers), "mape_pct": round(float(np.mean(np.abs(err))) * 100, 2),
            "within_10pct": round(float(np.mean(np.abs(err) <= 0.1)) * 100, 1),
            "mean_error_pct": round(float(np.mean(err)) * 100, 2)}
    complete = []
    for a, row in zip(archs, rows):
        total = sum(timed.get(l.key) or t.table.lookup(l).ms for l in a.layers())
        complete.append(t.overhead.apply(network_terms(a, total)))
        row["predicted_table_complete_ms"] = round(complete[-1], 4)
    n = len([a for a in archs if a.name.startswith("val")])
    complete = np.array(complete)
    out["table_complete"] = {"all": metrics(complete, measured), "random": metrics(complete[:n], measured[:n]),
                             "outside": metrics(complete[n:], measured[n:])}
    out["table_complete_adjusted"] = {"all": metrics(complete, adjusted),
                                      "random": metrics(complete[:n], adjusted[:n]),
                                      "outside": metrics(complete[n:], adjusted[n:])}
    return out


def _write(out_dir: Path, target: str, report: dict, rows: list[dict], predicted: np.ndarray,
           measured: np.ndarray, adjusted: np.ndarray, sums: np.ndarray, n_random: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"{target}-validation.json", json.dumps(report, indent=2) + "\n")
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out_dir / f"{target}-validation.csv", text.getvalue())
    fig, axes = figure(11.0, 5.5, ncols=2)
    lo = 0.9 * min(measured.min(), adjusted.min(), predicted.min(), sums.min())
    hi = 1.1 * max(measured.max(), adjusted.max(), predicted.max(), sums.max())
    grid = np.linspace(lo, hi, 50)
    panels = [(axes[0], measured, report["as_shipped"]["all"], "measured"),
              (axes[1], adjusted, report["as_shipped_adjusted"]["all"],
               "measured / batch contention factor")]
    for ax, x, m, label in panels:
        ax.fill_between(grid, grid * 0.9, grid * 1.1, color="0.9", label="±10 %")
        ax.plot(grid, grid, color="0.5", lw=1)
        if x is measured:
            ax.scatter(x, sums, s=10, marker="x", color="0.6", lw=0.8, label="naive sum of isolated ops")
        ax.scatter(x[:n_random], predicted[:n_random], s=14, label="random networks of the space")
        ax.scatter(x[n_random:], predicted[n_random:], s=30, marker="s", color="C3", label="baselines")
        for r, mx, p in zip(rows[n_random:], x[n_random:], predicted[n_random:]):
            ax.annotate(r["arch"], (mx, p), fontsize=7, xytext=(4, -8), textcoords="offset points")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{label} (ms)",
               ylabel="predicted (ms)",
               title=f"{target}, {label}: Spearman {m['spearman']:.3f}, MAPE {m['mape_pct']:.1f} %, "
                     f"{m['within_10pct']:.0f} % within ±10 %")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7, loc="upper left")
    return save_png(fig, out_dir / f"{target}-validation.png")
