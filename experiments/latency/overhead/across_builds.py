"""Overhead models refitted on every recorded build's calibration and scored on its validation.

    python experiments/latency/overhead/across_builds.py [--adjusted] [--csv OUT]

Each recorded build (a folder of experiments/latency/ holding TARGET.csv, TARGET-calibration.csv
and TARGET-validation.csv, 24 calibration networks: 16 random + 8 wide) gives the summed isolated
ops of its calibration networks and of its validation networks (24 random of another stream, 14
outside the space) with their end-to-end timings. Every candidate model is fitted on the
calibration networks alone and scored on the validation networks, so only the overhead model
differs between rows. "as shipped" is the overhead each build stored, "chosen per table (LOO)"
reapplies to every build the rule builds used until 2026-12-04 (`chosen_by_loo`). `--adjusted` divides each validation timing by its batch's contention factor
(its re-timed calibration networks' slowdown), as `nas latency validate` does for "adjusted".
"""
import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from nas.latency.build import calibration_archs, validation_archs, wide_archs
from nas.latency.model import OVERHEAD_CANDIDATES, fit_overhead, network_terms, score_overhead_terms
from nas.latency.validate import outside_networks
from nas.space import load_space

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "ops+const+weights": ("ops_ms", "const", "weights_m"),
    "ops+const+weights+boundary": ("ops_ms", "const", "weights_m", "boundary_m"),
    "ops+const+boundary": ("ops_ms", "const", "boundary_m"),
    "ops+boundary": ("ops_ms", "boundary_m"),
    "ops+const": ("ops_ms", "const"),
    "ops": ("ops_ms",),
}
# offset models: the summed ops count once (coefficient fixed at 1), the other terms are fitted
OFFSET = {
    "1*ops+const": ("const",),
    "1*ops+const+weights": ("const", "weights_m"),
    "1*ops+const+boundary": ("const", "boundary_m"),
    "1*ops+const+weights+boundary": ("const", "weights_m", "boundary_m"),
    "1*ops+const+n_ops": ("const", "n_ops"),
    "1*ops+const+n_ops+weights": ("const", "n_ops", "weights_m"),
}


def builds() -> list[Path]:
    """TARGET.csv paths of every recorded build with 24 calibration and 38 validation networks."""
    out = []
    for cal in sorted(ROOT.glob("**/*-calibration.csv")):
        base = cal.with_name(cal.name.removesuffix("-calibration.csv"))
        val = base.with_name(base.name + "-validation.csv")
        if val.is_file() and base.with_suffix(".csv").is_file() and \
                sum(1 for _ in open(cal)) == 25 and sum(1 for _ in open(val)) == 39:
            out.append(base)
    return out


def fit_offset(terms, y, use):
    """Least squares on relative error of (latency - summed ops) against `use`."""
    x = np.array([[t[u] for u in use] for t in terms])
    ops = np.array([t["ops_ms"] for t in terms])
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(x * w[:, None], (y - ops) * w, rcond=None)
    return lambda t: t["ops_ms"] + sum(c * t[u] for c, u in zip(coef, use))


def fit_signed(terms, y, use, nonpositive=("boundary_m",)):
    """`fit_overhead` on `use`, dropping a term of `nonpositive` whose fitted coefficient comes
    out above zero (a least-squares fit with that coefficient bounded at 0)."""
    m = fit_overhead(terms, y, use)
    if any(m.coef[t] > 0 for t in nonpositive if t in m.coef):
        m = fit_overhead(terms, y, [u for u in use if u not in nonpositive])
    return m.apply


def chosen_by_loo(terms, y) -> tuple[str, ...]:
    """The rule builds used until 2026-12-04: the candidate with the lowest leave-one-out MAPE,
    of those within 0.1 points of it the one with the fewest terms."""
    scores = score_overhead_terms(terms, y, OVERHEAD_CANDIDATES)
    lowest = min(scores.values())
    best = min((k for k, v in scores.items() if v <= lowest + 0.1), key=lambda k: (k.count("+"), scores[k]))
    return tuple(best.split("+"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--adjusted", action="store_true")
    p.add_argument("--csv")
    args = p.parse_args()
    space = load_space()
    archs = {a.name: a for a in calibration_archs(space, 400) + wide_archs(400)
             + validation_archs(space, 400) + outside_networks()}
    rows = []
    for base in builds():
        cal = list(csv.DictReader(open(f"{base}-calibration.csv")))
        val = list(csv.DictReader(open(f"{base}-validation.csv")))
        ct = [network_terms(archs[r["arch"]], float(r["sum_of_ops_ms"])) for r in cal]
        cy = np.array([float(r["measured_ms"]) for r in cal])
        vt = [network_terms(archs[r["arch"]], float(r["sum_of_ops_ms"])) for r in val]
        vy = np.array([float(r["measured_ms"]) for r in val])
        if args.adjusted and "contention_factor" in val[0]:
            vy = vy / np.array([float(r["contention_factor"] or 1) for r in val])
        group = np.array(["random" if r["arch"].startswith("val") else "outside" for r in val])
        preds = {"as shipped (the build's own overhead)": np.array([float(r["predicted_ms"]) for r in val])}
        m = fit_overhead(ct, cy, chosen_by_loo(ct, cy))
        preds["chosen per table (LOO)"] = np.array([m.apply(t) for t in vt])
        for name, use in MODELS.items():
            m = fit_overhead(ct, cy, use)
            preds[name] = np.array([m.apply(t) for t in vt])
        for name, use in OFFSET.items():
            f = fit_offset(ct, cy, use)
            preds[name] = np.array([f(t) for t in vt])
        for name, use in (("ops+const+weights-boundary(<=0)", ("ops_ms", "const", "weights_m", "boundary_m")),
                          ("ops+const-boundary(<=0)", ("ops_ms", "const", "boundary_m"))):
            f = fit_signed(ct, cy, use)
            preds[name] = np.array([f(t) for t in vt])
        for name, pred in preds.items():
            e = pred / vy - 1
            rows.append({"build": str(base.relative_to(ROOT)), "model": name,
                         "within_all": np.mean(np.abs(e) <= 0.1) * 100,
                         "within_random": np.mean(np.abs(e[group == "random"]) <= 0.1) * 100,
                         "within_outside": np.mean(np.abs(e[group == "outside"]) <= 0.1) * 100,
                         "mape": np.mean(np.abs(e)) * 100})
    import pandas as pd
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(f"{df.build.nunique()} builds; validation timings {'adjusted' if args.adjusted else 'raw'}")
    summary = df.groupby("model")[["within_all", "within_random", "within_outside", "mape"]].mean()
    print(summary.sort_values("within_all", ascending=False).round(1).to_string())


if __name__ == "__main__":
    sys.exit(main())
