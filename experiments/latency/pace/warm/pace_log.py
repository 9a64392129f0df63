# Every pace reading logged with its time during 4 interleaved passes: when is the pace slow?
# python experiments/latency/pace/warm/pace_log.py
import numpy as np, time
from nas.baselines import load_baseline, baseline_names
from nas.latency.measure import Pace, arch_runner, pace_network, time_interleaved, TimingPlan, _one
from nas.latency.build import validation_archs, network_plan
from nas.space import load_space
nets=[load_baseline(n) for n in baseline_names()]+validation_archs(load_space(),4)
runs={a.name:arch_runner(a,"onnxruntime",1) for a in nets}
class P(Pace):
    def _read(self):
        t=time.monotonic(); r=[_one(self.run) for _ in range(self.reads)]
        self.log.append((t, min(r), r))
        return min(r)
for arch in [None, pace_network()]:
    P.log=[]
    p=P("onnxruntime",1,arch=arch); n0=len(P.log)
    for k in range(4): time_interleaved(runs, network_plan(TimingPlan()), seed=k, pace=p)
    L=P.log[n0:]; v=np.array([x[1] for x in L])
    print(arch and arch.name, "ref", round(p.reference_ms,4), "readings", len(v), "quantiles", np.round(np.quantile(v,[0,.1,.5,.9,.99,1]),3))
    slow=[x for x in L if x[1]>1.3*p.reference_ms]
    print("  slow readings", len(slow), [ (round(x[0]-L[0][0],2), np.round(x[2],2).tolist()) for x in slow[:8]])
    f=np.array(p.factors); print("  factors q", np.round(np.quantile(f,[0,.01,.1,.5,.9,1]),3))
