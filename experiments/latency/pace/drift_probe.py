# The probe behind "the machine drifts": MobileNetV1 and the pace op timed in 3-second windows.
# python experiments/latency/pace/drift_probe.py 60
import time, numpy as np
from nas.baselines import load_baseline
from nas.latency.measure import arch_runner, layer_runner, CANARY_LAYERS
net = arch_runner(load_baseline("mobilenet_v1"), "onnxruntime", 1)
op = layer_runner(CANARY_LAYERS[0], "onnxruntime", 1)
t0=time.time()
while time.time()-t0 < float(__import__("sys").argv[1]):
    a=[];b=[]; w=time.time()
    while time.time()-w < 3:
        s=time.thread_time(); net(); a.append(time.thread_time()-s)
        s=time.thread_time(); op(); b.append(time.thread_time()-s)
    print(f"{time.time()-t0:5.0f}s net p10 {np.quantile(a,.1)*1e3:.2f} med {np.median(a)*1e3:.2f}  op p10 {np.quantile(b,.1)*1e3:.4f} ratio {np.quantile(a,.1)/np.quantile(b,.1):.1f}", flush=True)
