# Each network run 8 times right after 3 runs of another: run k over run 8.
# python experiments/latency/pace/warm/warm_probe.py   (README.md in this folder has the output)
import numpy as np
from nas.baselines import load_baseline, baseline_names
from nas.latency.measure import arch_runner, pace_network, _one
from nas.latency.build import validation_archs
from nas.space import load_space
archs=[load_baseline(n) for n in baseline_names()]+[pace_network()]+validation_archs(load_space(),3)
nets={a.name:arch_runner(a,"onnxruntime",1) for a in archs}
for r in nets.values():
    for _ in range(5): _one(r)
rng=np.random.default_rng(1); names=list(nets)
rec={n:[] for n in names}
for it in range(400):
    a,b=rng.choice(len(names),2,replace=False)
    for _ in range(3): _one(nets[names[a]])
    rec[names[b]].append([_one(nets[names[b]]) for _ in range(8)])
for n,v in rec.items():
    v=np.array(v); med=np.median(v,0)
    print(f"{n:28s} n={len(v):3d} run k / run 8 (median):", np.round(med/med[-1],3), f" run8 {med[-1]:.2f} ms")
