"""Per-device latency: lookup tables of op latencies, a fitted per-op model for ops a table lacks,
an overhead model for what a sum of isolated ops misses, and the tools that build, derive and
validate them. See docs/latency.md.

    from nas.latency import known_targets, predict_latency
    predict_latency(arch, "pixel").latency_ms
"""

from __future__ import annotations

from nas.latency.predict import (Prediction, Target, known_targets, load_target, predict_all_targets,
                                 predict_latency)
from nas.space import Space, smallest_arch


def min_latency(space: Space, target: str) -> float:
    """Latency in milliseconds on `target` of the fastest architecture of `space` (its
    `smallest_arch`), for checking that a latency budget is reachable."""
    return predict_latency(smallest_arch(space), target).latency_ms


__all__ = ["Prediction", "Target", "known_targets", "load_target", "min_latency",
           "predict_all_targets", "predict_latency"]
