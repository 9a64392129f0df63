"""How much of an isolated op's onnxruntime time is layout reordering that a network does not pay.

    python experiments/latency/overhead/reorder_share.py mobilenet_v1 mobilenet_v2 mobilenet_v3_large mobilenet_v3_small

On x86, onnxruntime's NCHWc transformer wraps a run of convolutions in ReorderInput (NCHW to the
blocked layout) and ReorderOutput (back). An op timed alone pays both at its edges; inside a
network they are paid once, plus around nodes that need NCHW (the SE blocks' ReduceMean and Mul).
For each network this runs onnxruntime's profiler (1 thread, 150 runs, the last two thirds kept)
on every op alone (nas.builder.build_layer) and on the whole network (nas.builder.build), and
prints the per-node times: the ops' summed session time and reorder time, and the network's.
Profiling adds time per node, so compare shares, not milliseconds with a table's.
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort
import torch

from nas.baselines import load_baseline
from nas.builder import build, build_layer
from nas.latency.measure import _onnx_bytes, arch_input, example_input


def profile(module: torch.nn.Module, x: torch.Tensor, runs: int = 150) -> tuple[dict[str, float], float]:
    """Mean ms per run by node type, and the median session run (ms)."""
    with torch.inference_mode():
        model = _onnx_bytes(module.eval(), x)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "nas-reorder")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {"x": x.numpy()})
    path = session.end_profiling()
    events = json.load(open(path))
    os.remove(path)
    nodes, total = collections.defaultdict(list), []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nodes[e["args"]["op_name"]].append(e["dur"])
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            total.append(e["dur"])
    kept = len(total) - len(total) // 3
    per_node = {}
    for kind, durations in nodes.items():  # the last `kept` runs' nodes of this kind
        per_run = len(durations) // len(total)
        per_node[kind] = float(np.sum(durations[-kept * per_run:])) / kept / 1e3
    return per_node, float(np.median(total[-kept:])) / 1e3


def reorder(per_node: dict[str, float]) -> float:
    return sum(v for k, v in per_node.items() if k.startswith("Reorder"))


p = argparse.ArgumentParser()
p.add_argument("networks", nargs="+")
args = p.parse_args()
print(f"{'network':20s} {'ops: run':>9s} {'reorder':>8s} {'share':>6s} | {'network: run':>12s} {'reorder':>8s} "
      f"{'share':>6s} | ops run / network run")
for name in args.networks:
    arch = load_baseline(name)
    torch.manual_seed(0)
    net_nodes, net_run = profile(build(arch), arch_input(arch))
    op_run = op_reorder = 0.0
    for layer in arch.layers():
        nodes, run = profile(build_layer(layer), example_input(layer))
        op_run, op_reorder = op_run + run, op_reorder + reorder(nodes)
    print(f"{name:20s} {op_run:9.3f} {op_reorder:8.3f} {100 * op_reorder / op_run:5.1f}% | {net_run:12.3f} "
          f"{reorder(net_nodes):8.3f} {100 * reorder(net_nodes) / net_run:5.1f}% | {op_run / net_run:.3f}", flush=True)
