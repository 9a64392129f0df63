"""Raw vs paced timings, the factor over the last 15 readings (as shipped) or the last 5 s.
python experiments/latency/pace/warm/windows.py PASSES OUT.json  (windows.json: 12 passes)"""
import json, sys, time
import numpy as np
from nas.baselines import baseline_names, load_baseline
from nas.latency.build import network_plan, validation_archs
from nas.latency.measure import Pace, TimingPlan, arch_runner, pace_network, time_interleaved
from nas.space import load_space
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "benchmarks")); from bench_timing_repeatability import spread

class TimePace(Pace):
    W = 5.0
    def factor(self):
        now = time.monotonic()
        if not hasattr(self, "ts"): self.ts = []
        self.readings.append(self._read()); self.ts.append(now)
        ts = np.array(self.ts); k = max(int(np.searchsorted(ts, now - self.W)), 0)
        k = min(k, len(ts) - 15)
        self.factors.append(self.reference_ms / float(np.median(self.readings[max(k,0):])))
        return self.factors[-1]

nets = [load_baseline(n) for n in baseline_names()] + validation_archs(load_space(), 4)
runs = {a.name: arch_runner(a, "onnxruntime", 1) for a in nets}
variants = {"raw": None, "op_count15": Pace("onnxruntime", 1), "op_5s": TimePace("onnxruntime", 1),
            "net3_count15": Pace("onnxruntime", 1, arch=pace_network(), reads=3),
            "net8_5s": TimePace("onnxruntime", 1, arch=pace_network(), reads=8)}
store = {v: {k: [] for k in runs} for v in variants}
plan = network_plan(TimingPlan())
P = int(sys.argv[1])
for p in range(P):
    for j, (v, pace) in enumerate(variants.items()):
        t = time_interleaved(runs, plan, seed=100 * j + p, pace=pace)
        for k in runs: store[v][k].append(round(t[k].ms, 4))
    print(p, {v: store[v]["mobilenet_v1"][-1] for v in variants}, flush=True)
for v in variants: print(f"{v:14s}", spread(store[v]), {k: round(float(np.median(x)), 3) for k, x in store[v].items() if k in ("mobilenet_v1", "val000")})
json.dump(store, open(sys.argv[2], "w"))
