"""Op-cost ratios of two latency tables: how much a 5x5 or 7x7 depthwise kernel, squeeze-excite
and h-swish cost against 3x3, no SE and ReLU, on each. Each ratio is the summed predicted time of
the inverted-residual blocks of MobileNetV3-Large with every block changed, over the same sum
with every block at the reference choice (the table's timed rows where it has them, its op model
elsewhere; the overhead model is left out, so only op costs are compared).

    python experiments/latency/litert/op_ratios.py --targets pixel litert-here local-cpu \
        > experiments/latency/litert/op_ratios.md
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from pathlib import Path

from nas.arch import Arch
from nas.baselines import load_baseline
from nas.latency import predict as predict_module
from nas.latency import predict_latency

# litert-here.csv lives beside this script (a record, not a shipped table): look here first.
predict_module.USER_LATENCY_TABLES = Path(__file__).resolve().parent

# name -> (reference change, variant change) applied to every "ir" block
CHOICES = {
    "5x5 / 3x3 depthwise": (dict(kernel=3), dict(kernel=5)),
    "7x7 / 3x3 depthwise": (dict(kernel=3), dict(kernel=7)),
    "SE / no SE": (dict(se=False), dict(se=True)),
    "h-swish / ReLU": (dict(act="relu"), dict(act="hswish")),
}


def with_blocks(arch: Arch, **change) -> Arch:
    return replace(arch, blocks=tuple(replace(b, **change) if b.type == "ir" else b for b in arch.blocks))


def block_ms(arch: Arch, target: str) -> float:
    """Summed predicted time of the block ops (not stem, head, pool, classifier or overhead)."""
    return sum(op["ms"] for op in predict_latency(arch, target).ops if op["kind"] == "ir")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", default=["pixel", "litert-here"])
    args = p.parse_args()
    base = load_baseline("mobilenet_v3_large")
    print("| ratio (MobileNetV3-Large blocks) | " + " | ".join(args.targets) + " |")
    print("|---|" + "---|" * len(args.targets))
    for name, (ref, var) in CHOICES.items():
        cells = [block_ms(with_blocks(base, **var), t) / block_ms(with_blocks(base, **ref), t) for t in args.targets]
        print(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
