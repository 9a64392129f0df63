"""The fidelity scatter plot: proxy accuracy against published ImageNet top-1, one colour per family."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nas.plotting import figure, save_png
from nas.proxy.networks import FAMILIES, Network

_FAMILY_COLOURS = {"V1": "tab:gray", "V2": "tab:blue", "V3-Large": "tab:orange", "V3-Small": "tab:green",
                   "MnasNet-A1": "tab:red", "MnasNet-B1": "tab:purple", "ProxylessNAS": "tab:brown"}


def plot_fidelity(networks: Sequence[Network], proxy: dict[str, float], result: dict, path: Path) -> Path:
    """Proxy accuracy (%) vs published ImageNet top-1 (%), one colour per family; the title gives
    Kendall tau and the matched-latency pairs."""
    fig, ax = figure(8.0, 5.5)
    known = [f for f in FAMILIES.values() if any(n.family == f for n in networks)]
    for family in dict.fromkeys(known + [n.family for n in networks]):
        nets = [n for n in networks if n.family == family and n.name in proxy]
        if nets:
            ax.scatter([n.top1 for n in nets], [100 * proxy[n.name] for n in nets], s=30, alpha=0.8,
                       color=_FAMILY_COLOURS.get(family, "tab:olive"), edgecolor="black", linewidth=0.4,
                       label=f"{family} ({len(nets)})")
    if not proxy:
        ax.text(0.5, 0.5, "no trained networks", transform=ax.transAxes, ha="center", fontsize=12)
    s = result["scores"]["proxy"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    ax.set_title(f"proxy vs ImageNet top-1 on {result['networks']} networks: Kendall tau "
                 f"{fmt(s['kendall_tau'])}, matched-latency pairs {fmt(s['matched_pairs'])}")
    ax.set_xlabel("published ImageNet top-1 (%)")
    ax.set_ylabel("proxy validation accuracy (%)")
    ax.grid(alpha=0.3)
    if proxy:
        ax.legend(fontsize=8, loc="best")
    return save_png(fig, path)
