# The pace network run 12 times after each baseline: its reading as the fastest of runs a-b, by predecessor.
# python experiments/latency/pace/warm/pace_probe.py   (README.md in this folder has the output)
import numpy as np
from nas.baselines import load_baseline, baseline_names
from nas.latency.measure import arch_runner, pace_network, _one, PACE_LAYER, layer_runner
nets={n:arch_runner(load_baseline(n),"onnxruntime",1) for n in baseline_names()}
pace=arch_runner(pace_network(),"onnxruntime",1)
op=layer_runner(PACE_LAYER,"onnxruntime",1)
for r in list(nets.values())+[pace,op]:
    for _ in range(5): _one(r)
rng=np.random.default_rng(0)
rec={n:[] for n in nets}; 
for it in range(300):
    n=list(nets)[rng.integers(4)]
    for _ in range(5): _one(nets[n])
    reads=[_one(pace) for _ in range(12)]
    opr=[_one(op) for _ in range(3)]
    rec[n].append(reads+opr)
for n,v in rec.items():
    v=np.array(v)
    print(f"after {n:20s} n={len(v)} pace runs 1..6 median:", np.round(np.median(v[:,:6],0),3), " min3:",np.round(np.median(v[:,:3].min(1)),3),
          " min3 p10/p90", np.round(np.quantile(v[:,:3].min(1),[.1,.9]),3), " op min3", np.round(np.median(v[:,12:].min(1)),3))
print("strategy: median by predecessor | pooled p10-p90 spread / median")
for lo,hi in [(0,3),(3,6),(5,8),(7,10),(9,12),(0,12)]:
    meds=[];pool=[]
    for n,v in rec.items():
        v=np.array(v); m=v[:,lo:hi].min(1); meds.append(np.median(m)); pool+=list(m)
    pool=np.array(pool)
    print(f"min runs {lo+1}-{hi}: ", np.round(meds,3), f" spread {np.ptp(meds)/np.mean(meds)*100:.1f}%  p10-p90 {(np.quantile(pool,.9)-np.quantile(pool,.1))/np.median(pool)*100:.1f}%")
