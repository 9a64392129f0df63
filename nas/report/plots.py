"""The PNG plots of a run report (matplotlib, no display needed), each drawn from `gather`'s facts:
- pareto.png: the score the run ranks by (proxy validation accuracy, or the ImageNet top-1
  estimate of `--score imagenet-estimate`) vs predicted latency of every trained trial, the
  Pareto front, the latency budget, the MobileNetV3-Large/Small baselines and the winner;
- progress.png: best-so-far score (within the budget) vs trial number;
- latency_blocks.png: the winner's predicted latency per op on the run's target.
Scores are plotted in percent; latencies in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from nas.plotting import figure, save_png
from nas.report.facts import best_so_far, last_epoch
from nas.search.policy import Status
from nas.search.trials_table import score_label


def _score_axis(facts: dict) -> str:
    if facts["ranked_by"] == "accuracy":
        return f"validation accuracy on {facts['dataset']} (%)"
    return "ImageNet top-1 estimate (%)"


def plot_pareto(facts: dict, path: Path) -> Path:
    """Score (%) vs predicted latency (ms): every trained trial, the Pareto front, the budget,
    the baselines and the winner."""
    run, t = facts["run"], facts["trials"]
    fig, ax = figure(10.0, 5.5)
    done = t[(t["state"] == Status.COMPLETE) & t["accuracy"].notna() & ~t["is_baseline"]]
    ax.scatter(done["latency_ms"], done["score"], s=22, color="tab:blue", alpha=0.55,
               label=f"trained trials ({len(done)})")
    front = facts["front"]
    if not front.empty:
        ax.plot(front["latency_ms"], front["score"], "-o", color="tab:orange", ms=6, lw=1.8,
                drawstyle="steps-post",
                label=f"Pareto front ({len(front)})", zorder=3)
    rejected = t[(t["state"] == Status.REJECTED) & t["latency_ms"].notna()]
    if not rejected.empty:
        ax.plot(rejected["latency_ms"], [0.02] * len(rejected), "v", color="tab:gray", ms=7, ls="none",
                transform=ax.get_xaxis_transform(), label=f"rejected over budget, not trained ({len(rejected)})")
    if run.budget_ms is not None:
        ax.axvline(run.budget_ms, color="tab:red", ls="--", lw=1.5, label=f"budget {run.budget_ms:g} ms")
    for b, marker in zip(facts["baselines"], ("s", "D")):
        if b["score"] is not None:
            ax.scatter([b["latency_ms"]], [b["score"]], marker=marker, s=70, color="tab:green",
                       edgecolor="black", zorder=4, label=f"{b['label']} ({b['arch']}, trial {b['trial']})")
            ax.annotate(b["label"], (b["latency_ms"], b["score"]), textcoords="offset points",
                        xytext=(6, -12), fontsize=9)
        else:
            ax.axvline(b["latency_ms"], color="tab:green", ls=":" if marker == "s" else "-.", lw=1.5,
                       label=f"{b['label']} latency, not trained here ({b['latency_ms']:.1f} ms)")
    if facts["winner"] is not None:
        w = t[t["number"] == facts["winner"]].iloc[-1]
        ax.scatter([w["latency_ms"]], [w["score"]], marker="*", s=260, color="gold",
                   edgecolor="black", zorder=5,
                   label=f"winner: trial {int(w['number'])} ({w['score']:.1f} %, {w['latency_ms']:.1f} ms)")
    if done.empty:
        ax.text(0.5, 0.5, "no trained trials yet", transform=ax.transAxes, ha="center", fontsize=12)
        if all(b["score"] is None for b in facts["baselines"]):
            ax.set_ylim(0, 100)
    ax.set_xlabel(f"predicted latency on {facts['target']} (ms)")
    ax.set_ylabel(_score_axis(facts))
    ax.set_title(f"{run.name}: {score_label(facts['ranked_by'])} vs predicted latency")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    return save_png(fig, path)


def plot_progress(facts: dict, path: Path) -> Path:
    """Best-so-far score (%) vs trial number, each trained trial as a dot, pruned trials at
    their last reported accuracy (runs ranked by accuracy), baselines as horizontal lines."""
    run, t = facts["run"], facts["trials"]
    fig, ax = figure(10.0, 4.8)
    s = best_so_far(t)
    done = s[(s["state"] == Status.COMPLETE) & s["accuracy"].notna()]
    inside, outside = done[done["within_budget"]], done[~done["within_budget"]]
    ax.scatter(inside["number"], inside["score"], s=20, color="tab:blue", alpha=0.6,
               label="trained, within budget")
    if not outside.empty:
        ax.scatter(outside["number"], outside["score"], s=20, facecolor="none", edgecolor="tab:blue",
                   label="trained, over budget")
    pruned = s[s["state"] == Status.PRUNED]
    last = [last_epoch(e) for e in pruned["accuracy_epochs"]]
    keep = [i for i, v in enumerate(last) if v is not None] if facts["ranked_by"] == "accuracy" else []
    if keep:
        ax.scatter(pruned["number"].iloc[keep], [100 * last[i] for i in keep], marker="x", s=18,
                   color="tab:gray", label="pruned (last reported epoch)")
    if s["best"].notna().any():
        ax.step(s["number"], s["best"], where="post", color="tab:orange", lw=2,
                label="best so far (within budget)")
    for b, style in zip([b for b in facts["baselines"] if b["score"] is not None], ("--", "-.")):
        ax.axhline(b["score"], color="tab:green", ls=style, lw=1.3,
                   label=f"{b['label']} ({b['score']:.1f} %)")
    if done.empty:
        ax.text(0.5, 0.5, "no trained trials yet", transform=ax.transAxes, ha="center", fontsize=12)
        ax.set_ylim(0, 100)
    ax.set_xlabel("trial number")
    ax.set_ylabel(_score_axis(facts))
    budget = f" (budget {run.budget_ms:g} ms on {facts['target']})" if run.budget_ms is not None else ""
    ax.set_title(f"{run.name}: search progress{budget}")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    return save_png(fig, path)


def plot_latency_blocks(facts: dict, path: Path) -> Path:
    """Horizontal bars: the winner's predicted latency per op (ms), first op at the top,
    coloured by where the number came from (table row or op model)."""
    b = facts["breakdown"]
    ops = b["ops"]
    fig, ax = figure(9.0, max(3.5, 0.28 * len(ops) + 1.6))
    colors = {"table": "tab:blue", "model": "tab:purple"}
    y = list(range(len(ops)))
    ax.barh(y, [o["ms"] for o in ops], color=[colors.get(o["source"], "tab:gray") for o in ops])
    ax.set_yticks(y, [f"{o['op']:>2} {o['label']}" for o in ops], fontsize=7, family="monospace")
    ax.invert_yaxis()
    for source, color in colors.items():
        if any(o["source"] == source for o in ops):
            name = "latency table" if source == "table" else "op model (not in the table)"
            ax.barh([0], [0], color=color, label=name)
    ax.set_xlabel(f"predicted latency on {b['target']} (ms)")
    ops_ms = sum(o["ms"] for o in ops)
    ax.set_title(f"winner (trial {facts['winner']}): {b['total_ms']:.2f} ms = ops {ops_ms:.2f} ms "
                 f"+ overhead {b['overhead_ms']:.2f} ms", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)
