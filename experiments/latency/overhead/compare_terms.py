"""The overhead model's candidate terms and calibration sets, scored on one validation's timings.

    python experiments/latency/overhead/compare_terms.py xeon-full --dir experiments/latency/overhead

Reads experiments/latency/TARGET-calibration.csv (the build's calibration networks: random ones
of the space and wide ones, with their summed op times and end-to-end timings) and
TARGET-validation.csv (`nas latency validate`: random networks of another stream and networks
outside the space, never fitted on). For each candidate term set (nas.latency.model.
OVERHEAD_CANDIDATES), fitted on the random calibration networks alone (what builds did before the
wide networks) and on all of them, it prints the error on the two validation groups. The
validation's own per-network sums of ops are used, so only the overhead model differs.
"""
import argparse
import csv

import numpy as np

from nas.latency.build import calibration_archs, validation_archs, wide_archs
from nas.latency.model import OVERHEAD_CANDIDATES, fit_overhead, network_terms
from nas.latency.validate import outside_networks
from nas.paths import EXPERIMENTS
from nas.space import load_space

p = argparse.ArgumentParser()
p.add_argument("target")
p.add_argument("--dir", default=str(EXPERIMENTS / "latency"))
args = p.parse_args()
space = load_space()
cal = list(csv.DictReader(open(f"{args.dir}/{args.target}-calibration.csv")))
val = list(csv.DictReader(open(f"{args.dir}/{args.target}-validation.csv")))
archs = {a.name: a for a in calibration_archs(space, 400) + wide_archs(400) + validation_archs(space, 400)
         + outside_networks()}


def terms(rows):
    return [network_terms(archs[r["arch"]], float(r["sum_of_ops_ms"])) for r in rows], \
        np.array([float(r["measured_ms"]) for r in rows])


def score(pred, y):
    e = np.abs(pred / y - 1)
    return f"MAPE {100 * e.mean():5.2f} % within ±10 % {100 * np.mean(e <= 0.1):5.1f} % worst {100 * e.max():5.1f} %"


groups = {"random": [r for r in val if r["arch"].startswith("val")],
          "outside": [r for r in val if not r["arch"].startswith("val")]}
for fitted_on in ("random", "random+wide"):
    rows = [r for r in cal if fitted_on == "random+wide" or not r["arch"].startswith("wide")]
    t, y = terms(rows)
    print(f"fitted on {fitted_on} calibration networks ({len(rows)})")
    for use in OVERHEAD_CANDIDATES:
        model = fit_overhead(t, y, use)
        line = [f"  {'+'.join(use):34s}"]
        for g, grows in groups.items():
            vt, vy = terms(grows)
            line.append(f"{g} ({len(grows)}): {score(np.array([model.apply(x) for x in vt]), vy)}")
        print(" | ".join(line))
