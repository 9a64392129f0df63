"""A readable per-block description of an architecture (what `nas show` prints)."""

from __future__ import annotations

from nas.arch import Arch
from nas.cost import arch_cost, layer_costs
from nas.latency import predict_all_targets


def describe(arch: Arch) -> dict:
    """`{"name", "params", "madds", "resolution", "width_mult", "blocks": [...]}`: one row per op
    with input size, channels, kernel, expansion, SE, activation, stride, params and MAdds, and
    the groups of its 1x1 convs where any op of the network has grouped ones (FBNet-A)."""
    rows, costs = [], layer_costs(arch)
    grouped = any(layer.groups > 1 for layer, _ in costs)
    for i, (layer, cost) in enumerate(costs):
        rows.append({"op": i, "kind": layer.kind, "input": f"{layer.size}x{layer.size}x{layer.cin}",
                     "exp": layer.exp or None, "out": layer.cout,
                     "kernel": layer.kernel, "stride": layer.stride, "se": layer.se, "act": layer.act,
                     **({"groups": layer.groups} if grouped else {}),
                     "params": cost.params, "madds": cost.madds, "key": layer.key})
    total = arch_cost(arch)
    info = {"name": arch.name, "params": total.params, "madds": total.madds,
            "resolution": arch.resolution, "width_mult": arch.width_mult, "blocks": rows}
    latency = predict_all_targets(arch)
    if latency:
        info["latency_ms"] = latency
    return info
