"""Accuracy of latency tables against one set of end-to-end timings on this machine.

    python benchmarks/bench_latency_tables.py --tables local-cpu local-cpu-quick --samples 24 \
        --out experiments/latency/tables-vs-measured

Measures once, interleaved with a canary network: `--samples` random networks of the space (the
validation stream, disjoint from every build's networks), the 4 baselines (V1, V2, V3-Large,
V3-Small), the published networks of latency_tables/published_archs/ (MnasNet-A1 and
-B1, ProxylessNAS GPU, mobile and mobile 1.4) and hand-made variants outside the space (other widths and resolutions of
the baselines). Then reports, per table, Spearman, MAPE, share within +-10 % and worst error for
the networks inside the space and for those outside it. Writes <out>.csv (one row per network)
and <out>.json, and records the load average before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from nas.latency.build import measure_archs, validation_archs
from nas.latency.measure import Canary, TimingPlan, load_average
from nas.latency.predict import load_target, predict_latency
from nas.latency.validate import metrics, outside_networks
from nas.space import load_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", nargs="+", default=["local-cpu"])
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--out", default="experiments/latency/tables-vs-measured")
    args = ap.parse_args()
    h = load_target(args.tables[0]).header
    runtime, threads = h["runtime"], int(h["threads"])
    inside = validation_archs(load_space(), args.samples)
    outside = outside_networks()
    archs = inside + outside
    load_before, start = load_average(), time.monotonic()
    canary = Canary(runtime, threads, TimingPlan(), networks=True)
    measured = np.array(measure_archs(archs, runtime, threads, TimingPlan(), canary))
    report = {"runtime": runtime, "threads": threads, "networks": {"inside": len(inside), "outside": len(outside)},
              "load_average": {"before": load_before, "after": load_average()},
              "seconds": round(time.monotonic() - start), "contention": canary.summary(), "tables": {}}
    rows = [{"arch": a.name, "group": "inside" if i < len(inside) else "outside", "measured_ms": round(float(m), 4)}
            for i, (a, m) in enumerate(zip(archs, measured))]
    for table in args.tables:
        pred = np.array([predict_latency(a, table).latency_ms for a in archs])
        for r, p in zip(rows, pred):
            r[f"{table}_ms"] = round(float(p), 4)
        n = len(inside)
        report["tables"][table] = {"inside": metrics(pred[:n], measured[:n]),
                                   "outside": metrics(pred[n:], measured[n:]),
                                   "all": metrics(pred, measured)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import csv
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    for table, groups in report["tables"].items():
        for group, m in groups.items():
            print(f"{table:18s} {group:8s} n={m['n']:3d}  Spearman {m['spearman']:.3f}  MAPE {m['mape_pct']:5.2f} %  "
                  f"within ±10 % {m['within_10pct']:5.1f} %  worst {m['max_abs_error_pct']:5.1f} %  "
                  f"mean {m['mean_error_pct']:+.2f} %")
    print(f"load average {report['load_average']}, {report['seconds']} s, canaries {report['contention']['worst_accepted_slowdown']}")


if __name__ == "__main__":
    main()
