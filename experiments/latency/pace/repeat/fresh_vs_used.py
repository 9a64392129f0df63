"""Networks timed in this process after it timed a quick build's ops, against the same networks timed
in fresh processes, alternating (A B A B ...): is a build's calibration slowed by its op phase?"""
import gc, json, subprocess, sys
import numpy as np
from nas.latency.build import calibration_set, build_layers, wide_count, measure_archs, QUICK_PLAN, BATCH
from nas.latency.measure import layer_runner, time_interleaved
from nas.space import load_space
space = load_space()
nets = calibration_set(space, 16)[:12]
def timed():
    return measure_archs(nets, "onnxruntime", 1, QUICK_PLAN)
if len(sys.argv) > 1 and sys.argv[1] == "child":
    print(json.dumps(timed())); sys.exit()
layers = build_layers(space, 24, True, heads=False, wide=wide_count(16))
for i in range(0, len(layers), BATCH):
    runners = {l.key: layer_runner(l, "onnxruntime", 1) for l in layers[i:i + BATCH]}
    time_interleaved(runners, QUICK_PLAN, seed=i)
del runners; gc.collect()
rows = []
for k in range(4):
    used = np.array(timed())
    fresh = np.array(json.loads(subprocess.run([sys.executable, __file__, "child"], capture_output=True, text=True).stdout))
    rows.append(float(np.median(used / fresh)))
    print(f"round {k}: used / fresh median {rows[-1]:.3f}", flush=True)
print("median over rounds", round(float(np.median(rows)), 3))
