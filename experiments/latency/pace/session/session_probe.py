# Does a network's paced latency depend on the process (or session) it is timed in?
# python experiments/latency/pace/session/session_probe.py SESSIONS [PACE_REF_MS]   (one process; JSON lines)
# Each session: fresh onnxruntime sessions of 3 networks + the pace network, timed as
# calibration/validation time them (time_interleaved, network-paced, default plan).
import json, sys
from dataclasses import replace
from nas.baselines import load_baseline
from nas.latency.measure import Pace, TimingPlan, arch_runner, pace_network, time_interleaved

NETS = {"v1": load_baseline("mobilenet_v1"), "v3l": load_baseline("mobilenet_v3_large"),
        "v2-0.75-192": replace(load_baseline("mobilenet_v2").with_overrides(width=0.75, resolution=192), name="v2s")}
pace_ref = float(sys.argv[2]) if len(sys.argv) > 2 else None  # fixed across processes
for s in range(int(sys.argv[1])):
    pace = Pace("onnxruntime", 1, reference_ms=pace_ref, arch=pace_network())
    pace_ref = pace.reference_ms
    runners = {k: arch_runner(a, "onnxruntime", 1) for k, a in NETS.items()}
    paced = time_interleaved(runners, TimingPlan(), seed=s, pace=pace)
    raw = time_interleaved(runners, TimingPlan(), seed=s)
    print(json.dumps({"session": s, "pace_ref": round(pace_ref, 4),
                      "paced": {k: round(v.ms, 3) for k, v in paced.items()},
                      "raw": {k: round(v.ms, 3) for k, v in raw.items()}}), flush=True)
