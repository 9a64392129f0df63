"""The one plotting style: a bare matplotlib Figure (Agg, no pyplot state, no display needed) at
120 dpi with constrained layout, written to PNG atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.files import write_atomic

DPI = 120


def figure(width: float = 8.0, height: float = 5.5, ncols: int = 1) -> tuple[Any, Any]:
    """A new figure of width x height inches and its axes: one Axes, or an array of `ncols`."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.add_subplot()
    return fig, axes


def save_png(fig: Any, path: Path) -> Path:
    """Write `fig` to `path` as PNG (temp file + rename) and return `path`."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path
