"""How repeatable end-to-end timings are on this machine, raw and paced (nas.latency.measure.Pace).

    python benchmarks/bench_timing_repeatability.py --passes 12 --out experiments/latency/pace/repeatability

The 4 baselines and 4 random networks of the space are timed in `--passes` passes, one after the
other (a few minutes in all); every pass times them three times, interleaved as a build does:
raw, with each run of samples scaled by the pace op, and scaled by the pace network
(`pace_network()`, as builds, validation and a measured winner pace networks). Per network, the
spread of its timings across passes is the noise a latency table and its validation are up
against: a table cannot be truer than the timings that check it. Reports the mean coefficient of
variation, the mean max/min - 1, and the share of timings within +-5 % and +-10 % of the
network's own median; writes <out>.json with every timing and the load average.
`--network-reads 8` adds the pace network read as the fastest of 8 runs instead of 3, in the
same passes (experiments/latency/pace/warm/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from nas.baselines import baseline_names, load_baseline
from nas.latency.build import network_plan, validation_archs
from nas.latency.measure import (Pace, TimingPlan, arch_runner, cpu_name, load_average, pace_network,
                                 time_interleaved)
from nas.paths import SEARCH_SPACES
from nas.space import load_space


def spread(timings: dict[str, list[float]]) -> dict:
    """Mean CV, mean max/min - 1 and share within 5 / 10 % of each network's own median (%)."""
    dev = np.array([abs(x / np.median(v) - 1) for v in timings.values() for x in v])
    return {"mean_cv_pct": round(100 * float(np.mean([np.std(v) / np.mean(v) for v in timings.values()])), 2),
            "mean_max_over_min_pct": round(100 * float(np.mean([max(v) / min(v) - 1 for v in timings.values()])), 1),
            "within_5pct_of_own_median": round(100 * float(np.mean(dev <= 0.05)), 1),
            "within_10pct_of_own_median": round(100 * float(np.mean(dev <= 0.10)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", type=int, default=12)
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--out", type=Path, default=Path("experiments/latency/pace/repeatability"))
    ap.add_argument("--network-reads", type=int, nargs="*", default=[], metavar="N",
                    help="also pace by the pace network read as the fastest of N runs (each N a variant)")
    args = ap.parse_args()
    nets = [load_baseline(n) for n in baseline_names()] + validation_archs(load_space(SEARCH_SPACES / "mobilenet_v3.yaml"), 4)
    runs = {a.name: arch_runner(a, args.runtime, 1) for a in nets}
    pace = Pace(args.runtime, 1)
    net_pace = Pace(args.runtime, 1, arch=pace_network())  # as builds and validation pace networks
    plan = network_plan(TimingPlan())
    raw: dict[str, list[float]] = {k: [] for k in runs}
    paced: dict[str, list[float]] = {k: [] for k in runs}
    net_paced: dict[str, list[float]] = {k: [] for k in runs}
    by_reads = {n: (Pace(args.runtime, 1, arch=pace_network(), reads=n), {k: [] for k in runs})
                for n in args.network_reads}
    before, started = load_average(), time.monotonic()
    for p in range(args.passes):
        variants = [(raw, None, p), (paced, pace, 100 + p), (net_paced, net_pace, 200 + p)]
        variants += [(store, with_pace, 300 + 100 * i + p) for i, (with_pace, store) in enumerate(by_reads.values())]
        for store, with_pace, seed in variants:
            timings = time_interleaved(runs, plan, seed=seed, pace=with_pace)
            for k in runs:
                store[k].append(round(timings[k].ms, 4))
        print(f"pass {p + 1}/{args.passes}: mobilenet_v1 raw {raw['mobilenet_v1'][-1]:.2f} ms, "
              f"paced {paced['mobilenet_v1'][-1]:.2f} ms, network-paced {net_paced['mobilenet_v1'][-1]:.2f} ms", flush=True)
    reads = f" --network-reads {' '.join(map(str, args.network_reads))}" if args.network_reads else ""
    out = {"command": f"python benchmarks/bench_timing_repeatability.py --passes {args.passes} --out {args.out}{reads}",
           "cpu": cpu_name(), "runtime": args.runtime, "passes": args.passes,
           "seconds": round(time.monotonic() - started), "load_average": {"before": before, "after": load_average()},
           "raw": spread(raw), "paced": spread(paced), "network_paced": spread(net_paced),
           "pace": pace.summary(), "network_pace": net_pace.summary(),
           "raw_ms": raw, "paced_ms": paced, "network_paced_ms": net_paced}
    for n, (with_pace, store) in by_reads.items():
        out[f"network_paced_{n}reads"], out[f"network_paced_{n}reads_ms"] = spread(store), store
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    for name in ("raw", "paced", "network_paced", *(f"network_paced_{n}reads" for n in by_reads)):
        s = out[name]
        print(f"{name:13s}: mean CV {s['mean_cv_pct']:.2f} %, max/min {s['mean_max_over_min_pct']:.1f} %, "
              f"within ±5 % {s['within_5pct_of_own_median']:.1f} %, within ±10 % {s['within_10pct_of_own_median']:.1f} %")


if __name__ == "__main__":
    main()
