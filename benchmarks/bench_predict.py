"""How long one latency prediction takes: what every search trial pays before it trains.

    python benchmarks/bench_predict.py --calls 200

Times `predict_latency` for each shipped baseline on each latency table (the table is loaded
once, as in a search) and prints milliseconds per call; a search wants well under 5 ms.
"""

from __future__ import annotations

import argparse
import time

from nas.baselines import baseline_names, load_baseline
from nas.latency import predict_latency
from nas.latency.predict import known_targets
from nas.tables import text_table

BUDGET_MS = 5.0  # per trial; a prediction slower than this shows in a search's wall time


def ms_per_call(arch, target: str, calls: int) -> float:
    """Mean wall milliseconds of one `predict_latency(arch, target)` after a warm-up call."""
    predict_latency(arch, target)
    start = time.perf_counter()
    for _ in range(calls):
        predict_latency(arch, target)
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100)
    args = ap.parse_args()
    rows = [{"target": target, "arch": name, "ms per call": ms_per_call(load_baseline(name), target, args.calls)}
            for target in known_targets() for name in baseline_names()]
    print(text_table(rows, ["target", "arch", "ms per call"]))
    slowest = max(r["ms per call"] for r in rows)
    print(f"slowest {slowest:.3f} ms per call; budget {BUDGET_MS:g} ms: {'ok' if slowest < BUDGET_MS else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
