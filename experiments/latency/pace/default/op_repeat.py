"""How well two raw quick builds' timings of the same ops agree, and what the faster of two buys.

    python experiments/latency/pace/default/op_repeat.py

For each pair of the raw quick builds of 2026-12-03 (../protocol/epyc-p1, -p2 and epyc-q1, -q2
here; all AMD EPYC, onnxruntime 1.32.0, 1 thread, the same 538 ops), the MAPE between their op
timings after one common scale (the median ratio); then, for each build C, the MAPE of C against
each other build alone and against the faster of two other builds (each op's minimum).
"""
import itertools
from pathlib import Path

import numpy as np

from nas.latency.table import read_table

HERE = Path(__file__).parent
BUILDS = {"p1": HERE.parent / "protocol/epyc-p1.csv", "p2": HERE.parent / "protocol/epyc-p2.csv",
          "q1": HERE / "epyc-q1.csv", "q2": HERE / "epyc-q2.csv"}
tables = {n: read_table(p) for n, p in BUILDS.items()}
keys = sorted(set.intersection(*({k for k, r in t.rows.items() if r.source == "measured"} for t in tables.values())))
ms = {n: np.array([t.rows[k].ms for k in keys]) for n, t in tables.items()}


def mape(a: np.ndarray, b: np.ndarray) -> float:
    """MAPE of `a` against `b` after scaling `a` by the median ratio (percent)."""
    return float(np.mean(np.abs(a * np.median(b / a) / b - 1)) * 100)


print(f"{len(keys)} ops timed by every build")
for a, b in itertools.combinations(ms, 2):
    print(f"  {a} vs {b}: MAPE {mape(ms[a], ms[b]):5.1f} %")
for c in ms:
    others = [n for n in ms if n != c]
    single = [mape(ms[o], ms[c]) for o in others]
    pairs = [mape(np.minimum(ms[x] * np.median(ms[y] / ms[x]), ms[y]), ms[c])
             for x, y in itertools.combinations(others, 2)]
    print(f"  against {c}: one other build {min(single):.1f}-{max(single):.1f} %, "
          f"faster of two others {min(pairs):.1f}-{max(pairs):.1f} %")
