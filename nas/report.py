"""`report.md` and PNG plots for a run folder: what the search found and what it cost.

    from nas.report import write_report
    result = write_report("runs/pixel-60ms-tpe-s0")   # writes report.md, *.png in that folder

Plots (matplotlib, Agg backend, no display needed):
- pareto.png: validation accuracy vs predicted latency of every trained trial, the Pareto front,
  the latency budget, the MobileNetV3-Large/Small baselines and the winner;
- progress.png: best-so-far accuracy (within the budget) vs trial number;
- latency_blocks.png: the winner's predicted latency per op on the run's target.
Accuracies are 0..1 on the proxy data set's validation split (plotted in percent); latencies are
milliseconds predicted for the run's target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nas.errors import NasError
from nas.files import write_atomic, write_text_atomic
from nas.rundir import Run, open_run

REPORT_BASELINES = {"mobilenet_v3_large": "V3-Large", "mobilenet_v3_small": "V3-Small"}
PLOTS = ("pareto.png", "progress.png", "latency_blocks.png")
_DPI = 120


@dataclass
class ReportResult:
    """The files written (report.md first), the headline numbers, and notes on what is missing."""

    files: list[Path]
    headline: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe (what `nas report --json` prints)."""
        return {"files": [str(p) for p in self.files], "headline": self.headline, "notes": self.notes}


def write_report(run_dir: str | Path, top_k: int = 10, progress: bool = False) -> ReportResult:
    """Read the run folder and write report.md plus the plots into it. `top_k`: rows of the
    table of most accurate trials. The trials come from the run's study, the record; where
    trials.csv disagrees with it, a note says so. NasError for a missing or malformed run
    folder, a damaged study, or a file that cannot be written."""
    from tqdm import tqdm

    if top_k < 1:
        raise NasError(f"--top-k {top_k} is not allowed; expected an integer >= 1")
    steps = tqdm(total=5, desc="report", disable=None if progress else True, leave=False,
                 bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
    try:
        steps.set_postfix_str("reading the run")
        run = open_run(run_dir)
        facts = gather(run)
        steps.update(1)
        files: list[Path] = []
        steps.set_postfix_str("accuracy vs latency")
        files.append(plot_pareto(facts, run.path / "pareto.png"))
        steps.update(1)
        steps.set_postfix_str("best so far")
        files.append(plot_progress(facts, run.path / "progress.png"))
        steps.update(1)
        steps.set_postfix_str("latency per block")
        if facts["breakdown"] is not None:
            files.append(plot_latency_blocks(facts, run.path / "latency_blocks.png"))
        steps.update(1)
        steps.set_postfix_str("report.md")
        md = run.path / "report.md"
        write_text_atomic(md, report_markdown(facts, [f.name for f in files], top_k))
        steps.update(1)
    finally:
        steps.close()
    return ReportResult([md, *files], headline(facts), facts["notes"])


# ---------------------------------------------------------------- the facts a report shows

def gather(run: Run) -> dict:
    """Everything the plots and the markdown read, computed once: the trials table with derived
    columns, the Pareto front, the winner, the baselines and the winner's latency breakdown."""
    t = run.trials.copy()
    t["is_baseline"] = t["baseline"] != ""
    budget = run.budget_ms
    t["within_budget"] = t["latency_ms"] <= budget if budget is not None else True
    front = run.pareto()
    t["pareto"] = t["number"].isin(set(front["number"]))
    t["checkpoint"] = [run.checkpoint_path(int(n)) is not None for n in t["number"]]
    t["name"] = [_arch_field(a, "name") for a in t["arch"]]
    winner = run.best_number()
    notes: list[str] = list(run.notes)
    breakdown = None
    if winner is not None:
        trial = run.trial(winner)
        breakdown, note = latency_breakdown(trial.arch, run.target)
        if note:
            notes.append(note)
        elif trial.latency_ms and abs(breakdown["total_ms"] - trial.latency_ms) > 0.01 * trial.latency_ms:
            notes.append(f"the latency table of {run.target!r} changed since the search: the breakdown predicts "
                         f"{breakdown['total_ms']:.2f} ms for the winner, the search recorded {trial.latency_ms:.2f} ms")
    else:
        notes.append("no completed trial within the budget yet: no winner, no latency breakdown")
    return {"run": run, "trials": t, "front": t[t["pareto"]].sort_values("latency_ms"), "winner": winner,
            "baselines": baseline_marks(run, t, notes), "breakdown": breakdown, "notes": notes,
            "dataset": run.config.get("dataset") or "proxy data", "target": run.target or "target"}


def baseline_marks(run: Run, t: pd.DataFrame, notes: list[str]) -> list[dict]:
    """One mark per V3-Large / V3-Small: the trained trial's (latency, accuracy) when the run
    trained it, else its predicted latency on the target only (accuracy None)."""
    marks = []
    for name, label in REPORT_BASELINES.items():
        rows = t[t["baseline"] == name]
        done = rows[(rows["state"] == "COMPLETE") & rows["accuracy"].notna()]
        if not done.empty:
            r = done.iloc[-1]
            marks.append({"baseline": name, "label": label, "trial": int(r["number"]), "arch": r["name"],
                          "latency_ms": float(r["latency_ms"]), "accuracy": float(r["accuracy"]),
                          "state": "COMPLETE"})
            continue
        if not rows.empty and pd.notna(rows.iloc[-1]["latency_ms"]):
            r = rows.iloc[-1]
            marks.append({"baseline": name, "label": label, "trial": int(r["number"]), "arch": r["name"],
                          "latency_ms": float(r["latency_ms"]), "accuracy": None, "state": r["state"]})
            continue
        ms = _predicted_baseline_ms(name, run.target)
        if ms is None:
            notes.append(f"{label} is not in this run and its latency on {run.target!r} cannot be predicted")
            continue
        marks.append({"baseline": name, "label": label, "trial": None, "arch": name, "latency_ms": ms,
                      "accuracy": None, "state": "not in run"})
    return marks


def latency_breakdown(arch: Any, target: str | None) -> tuple[dict | None, str]:
    """The winner's predicted latency per op on `target` (nas.latency.predict_latency) as
    {"total_ms", "overhead_ms", "runtime", "threads", "n_modelled", "ops": [...]}, or None and a
    note saying why it is unavailable."""
    try:
        from nas.latency import predict_latency
    except ImportError:
        return None, "latency breakdown unavailable: nas.latency is not installed"
    if not target:
        return None, "latency breakdown unavailable: config.yaml names no target"
    try:
        p = predict_latency(arch, target)
    except NasError as e:
        return None, f"latency breakdown unavailable: {e}"
    layers = arch.layers()
    ops = []
    for b in p.blocks:
        layer = layers[b["op"]]
        ops.append({"op": b["op"], "kind": b["kind"], "label": op_label(layer), "ms": float(b["ms"]),
                    "source": b["source"], "key": b["key"]})
    return {"target": target, "total_ms": float(p.latency_ms), "overhead_ms": float(p.overhead_ms),
            "runtime": p.runtime, "threads": p.threads, "n_modelled": p.n_modelled, "ops": ops}, ""


def op_label(layer: Any) -> str:
    """A short readable name of one op, e.g. `ir k5 e120 SE 28px 40->48 s1 hswish`."""
    if layer.kind in ("ir", "ds"):
        se = " SE" if layer.se else ""
        exp = f" e{layer.exp}" if layer.kind == "ir" else ""
        return (f"{layer.kind} k{layer.kernel}{exp}{se} {layer.size}px {layer.cin}->{layer.cout} "
                f"s{layer.stride} {layer.act}")
    if layer.kind == "stem":
        return f"stem k{layer.kernel} {layer.size}px 3->{layer.cout} s{layer.stride}"
    if layer.kind == "conv":
        return f"head 1x1 {layer.size}px {layer.cin}->{layer.cout}"
    if layer.kind == "pool":
        return f"pool {layer.size}px"
    return f"fc {layer.cin}->{layer.cout}"


def headline(facts: dict) -> dict:
    """The numbers a script wants: counts, budget, the winner and the baselines."""
    run, t = facts["run"], facts["trials"]
    out = {"run": str(run.path), "target": run.target, "budget_ms": run.budget_ms,
           "objective": run.config.get("objective"), "dataset": facts["dataset"], "trials": int(len(t)),
           "states": {k: int(v) for k, v in t["state"].value_counts().items()},
           "pareto_size": int(len(facts["front"])), "winner": None,
           "baselines": {b["baseline"]: _clean(b) for b in facts["baselines"]}}
    if facts["winner"] is not None:
        r = t[t["number"] == facts["winner"]].iloc[-1]
        out["winner"] = {"trial": int(r["number"]), "arch": r["name"], "accuracy": float(r["accuracy"]),
                         "latency_ms": float(r["latency_ms"]), "params": _int(r["params"]),
                         "madds": _int(r["madds"]), "block_string": r["block_string"],
                         "checkpoint": bool(r["checkpoint"])}
    if facts["breakdown"] is not None:
        out["winner_latency_breakdown_ms"] = {"total": facts["breakdown"]["total_ms"],
                                              "overhead": facts["breakdown"]["overhead_ms"]}
    return out


# ---------------------------------------------------------------- plots

def _figure(width: float = 8.0, height: float = 5.5):
    from matplotlib.figure import Figure  # a bare Figure renders with Agg, no pyplot state

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    return fig, fig.add_subplot()


def plot_pareto(facts: dict, path: Path) -> Path:
    """Accuracy (%) vs predicted latency (ms): every trained trial, the Pareto front, the budget,
    the baselines and the winner."""
    run, t = facts["run"], facts["trials"]
    fig, ax = _figure(10.0, 5.5)
    done = t[(t["state"] == "COMPLETE") & t["accuracy"].notna() & ~t["is_baseline"]]
    ax.scatter(done["latency_ms"], 100 * done["accuracy"], s=22, color="tab:blue", alpha=0.55,
               label=f"trained trials ({len(done)})")
    front = facts["front"]
    if not front.empty:
        ax.plot(front["latency_ms"], 100 * front["accuracy"], "-o", color="tab:orange", ms=6, lw=1.8,
                drawstyle="steps-post",
                label=f"Pareto front ({len(front)})", zorder=3)
    rejected = t[(t["state"] == "REJECTED") & t["latency_ms"].notna()]
    if not rejected.empty:
        ax.plot(rejected["latency_ms"], [0.02] * len(rejected), "v", color="tab:gray", ms=7, ls="none",
                transform=ax.get_xaxis_transform(), label=f"rejected over budget, not trained ({len(rejected)})")
    if run.budget_ms is not None:
        ax.axvline(run.budget_ms, color="tab:red", ls="--", lw=1.5, label=f"budget {run.budget_ms:g} ms")
    for b, marker in zip(facts["baselines"], ("s", "D")):
        if b["accuracy"] is not None:
            ax.scatter([b["latency_ms"]], [100 * b["accuracy"]], marker=marker, s=70, color="tab:green",
                       edgecolor="black", zorder=4, label=f"{b['label']} ({b['arch']}, trial {b['trial']})")
            ax.annotate(b["label"], (b["latency_ms"], 100 * b["accuracy"]), textcoords="offset points",
                        xytext=(6, -12), fontsize=9)
        else:
            ax.axvline(b["latency_ms"], color="tab:green", ls=":" if marker == "s" else "-.", lw=1.5,
                       label=f"{b['label']} latency, not trained here ({b['latency_ms']:.1f} ms)")
    if facts["winner"] is not None:
        w = t[t["number"] == facts["winner"]].iloc[-1]
        ax.scatter([w["latency_ms"]], [100 * w["accuracy"]], marker="*", s=260, color="gold",
                   edgecolor="black", zorder=5,
                   label=f"winner: trial {int(w['number'])} ({100 * w['accuracy']:.1f} %, {w['latency_ms']:.1f} ms)")
    if done.empty:
        ax.text(0.5, 0.5, "no trained trials yet", transform=ax.transAxes, ha="center", fontsize=12)
        if all(b["accuracy"] is None for b in facts["baselines"]):
            ax.set_ylim(0, 100)
    ax.set_xlabel(f"predicted latency on {facts['target']} (ms)")
    ax.set_ylabel(f"validation accuracy on {facts['dataset']} (%)")
    ax.set_title(f"{run.name}: accuracy vs predicted latency")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


def best_so_far(t: pd.DataFrame) -> pd.DataFrame:
    """Searched (non-baseline) trials by number with `best`: the highest accuracy of a completed
    trial within the budget up to and including that trial (NaN before the first)."""
    searched = t[~t["is_baseline"]].sort_values("number")
    ok = searched["accuracy"].where((searched["state"] == "COMPLETE") & searched["within_budget"])
    return searched.assign(best=ok.cummax().ffill())


def plot_progress(facts: dict, path: Path) -> Path:
    """Best-so-far accuracy (%) vs trial number, each trained trial as a dot, pruned trials at
    their last reported accuracy, baselines as horizontal lines."""
    run, t = facts["run"], facts["trials"]
    fig, ax = _figure(10.0, 4.8)
    s = best_so_far(t)
    done = s[(s["state"] == "COMPLETE") & s["accuracy"].notna()]
    inside, outside = done[done["within_budget"]], done[~done["within_budget"]]
    ax.scatter(inside["number"], 100 * inside["accuracy"], s=20, color="tab:blue", alpha=0.6,
               label="trained, within budget")
    if not outside.empty:
        ax.scatter(outside["number"], 100 * outside["accuracy"], s=20, facecolor="none", edgecolor="tab:blue",
                   label="trained, over budget")
    pruned = s[s["state"] == "PRUNED"]
    last = [_last_epoch(e) for e in pruned["accuracy_epochs"]]
    keep = [i for i, v in enumerate(last) if v is not None]
    if keep:
        ax.scatter(pruned["number"].iloc[keep], [100 * last[i] for i in keep], marker="x", s=18,
                   color="tab:gray", label="pruned (last reported epoch)")
    if s["best"].notna().any():
        ax.step(s["number"], 100 * s["best"], where="post", color="tab:orange", lw=2,
                label="best so far (within budget)")
    for b, style in zip([b for b in facts["baselines"] if b["accuracy"] is not None], ("--", "-.")):
        ax.axhline(100 * b["accuracy"], color="tab:green", ls=style, lw=1.3,
                   label=f"{b['label']} ({100 * b['accuracy']:.1f} %)")
    if done.empty:
        ax.text(0.5, 0.5, "no trained trials yet", transform=ax.transAxes, ha="center", fontsize=12)
        ax.set_ylim(0, 100)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"validation accuracy on {facts['dataset']} (%)")
    budget = f" (budget {run.budget_ms:g} ms on {facts['target']})" if run.budget_ms is not None else ""
    ax.set_title(f"{run.name}: search progress{budget}")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


def plot_latency_blocks(facts: dict, path: Path) -> Path:
    """Horizontal bars: the winner's predicted latency per op (ms), first op at the top,
    coloured by where the number came from (table row or op model)."""
    b = facts["breakdown"]
    ops = b["ops"]
    fig, ax = _figure(9.0, max(3.5, 0.28 * len(ops) + 1.6))
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
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


# ---------------------------------------------------------------- markdown

def report_markdown(facts: dict, images: list[str], top_k: int) -> str:
    """The text of report.md; `images` are the plot files written beside it."""
    run, t = facts["run"], facts["trials"]
    c = run.config
    counts = t["state"].value_counts()
    lines = [f"# Search report: {run.name}", "",
             f"Target `{facts['target']}`, budget {_ms(run.budget_ms)}, objective {c.get('objective', '?')}, "
             f"sampler {c.get('sampler', '?')}, engine {c.get('engine', '?')}, seed {c.get('seed', '?')}, "
             f"data set {facts['dataset']}, created {c.get('created', '?')}.",
             "Trials: " + (", ".join(f"{int(n)} {s.lower()}" for s, n in counts.items()) or "none") + ".",
             "Accuracies are validation accuracies of the proxy training on the data set above; latencies "
             f"are predicted for `{facts['target']}` from its latency table.", ""]
    lines += _winner_section(facts)
    for name, title in (("pareto.png", "Accuracy vs predicted latency"), ("progress.png", "Best so far"),
                        ("latency_blocks.png", "Winner latency per block")):
        if name in images:
            lines += [f"## {title}", "", f"![{title}]({name})", ""]
            if name == "latency_blocks.png":
                lines += _breakdown_table(facts["breakdown"]) + [""]
    top = top_trials(t, top_k)
    lines += [f"## Top {top_k} trials by accuracy", ""]
    lines += _md_table([_without(r, "blocks") for r in top]) + [""]
    lines += [f"- trial {r['trial']}: {r['blocks']}" for r in top if r["blocks"]] + [""]
    lines += ["## Pareto front", "", "Trials no other trained trial beats on both accuracy and latency; "
              "the search keeps their checkpoints.", ""]
    lines += _md_table([_without(_trial_row(r), "blocks", "Pareto") for _, r in facts["front"].iterrows()]) + [""]
    if facts["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in facts["notes"]] + [""]
    storage = c.get("storage") or f"sqlite:///{run.path / 'study.db'}"
    lines += ["## Browse the study", "", "Every trial, its parameters and its per-epoch curve:", "",
              f"    optuna-dashboard {storage}", "",
              f"Export the winner: `nas export {run.path} --format onnx --out winner.onnx`.", ""]
    return "\n".join(lines)


def _winner_section(facts: dict) -> list[str]:
    t = facts["trials"]
    lines = ["## Winner", ""]
    if facts["winner"] is None:
        return lines + ["No completed trial fits the budget yet.", ""]
    w = t[t["number"] == facts["winner"]].iloc[-1]
    weights = ("trained weights kept in `checkpoints/`" if w["checkpoint"]
               else "no checkpoint kept (export gives initialised weights)")
    lines += [f"Trial {int(w['number'])} (`{w['name']}`): {100 * w['accuracy']:.2f} % at "
              f"{w['latency_ms']:.2f} ms, {_int(w['params']) or 0:,} parameters, "
              f"{(_int(w['madds']) or 0) / 1e6:.1f} M multiply-adds; {weights}.", "",
              f"Blocks: `{w['block_string']}`", ""]
    rows = [{"network": f"winner (trial {int(w['number'])})", "accuracy %": round(100 * w["accuracy"], 2),
             "latency ms": round(float(w["latency_ms"]), 2)}]
    for b in facts["baselines"]:
        rows.append({"network": f"{b['label']} ({b['arch']}, {b['state'].lower()})",
                     "accuracy %": None if b["accuracy"] is None else round(100 * b["accuracy"], 2),
                     "latency ms": round(b["latency_ms"], 2)})
    return lines + _md_table(rows) + [""]


def top_trials(t: pd.DataFrame, k: int) -> list[dict]:
    """The `k` most accurate completed trials (baselines included and named), as table rows."""
    done = t[(t["state"] == "COMPLETE") & t["accuracy"].notna()]
    done = done.sort_values(["accuracy", "latency_ms"], ascending=[False, True]).head(k)
    return [{"rank": i + 1, **_trial_row(r)} for i, (_, r) in enumerate(done.iterrows())]


def _trial_row(r: pd.Series) -> dict:
    return {"trial": int(r["number"]), "network": r["baseline"] or r["name"],
            "accuracy %": round(100 * float(r["accuracy"]), 2) if pd.notna(r["accuracy"]) else None,
            "latency ms": round(float(r["latency_ms"]), 2) if pd.notna(r["latency_ms"]) else None,
            "in budget": "yes" if r["within_budget"] else "no",
            "params M": round(r["params"] / 1e6, 2) if pd.notna(r["params"]) else None,
            "MAdds M": round(r["madds"] / 1e6, 1) if pd.notna(r["madds"]) else None,
            "res": _arch_field(r["arch"], "resolution"), "width": _arch_field(r["arch"], "width_mult"),
            "Pareto": "yes" if r["pareto"] else "", "checkpoint": "yes" if r["checkpoint"] else "",
            "blocks": f"`{r['block_string']}`" if r["block_string"] else ""}


def _without(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


def _breakdown_table(b: dict) -> list[str]:
    total = b["total_ms"]
    rows = [{"op": o["op"], "op (kind, kernel, expansion, input, channels, stride)": o["label"],
             "ms": round(o["ms"], 3), "share %": round(100 * o["ms"] / total, 1) if total else None,
             "source": o["source"]} for o in b["ops"]]
    rows.append({"op": "", "op (kind, kernel, expansion, input, channels, stride)": "overhead (whole network)",
                 "ms": round(b["overhead_ms"], 3),
                 "share %": round(100 * b["overhead_ms"] / total, 1) if total else None, "source": "overhead model"})
    head = (f"Total {total:.2f} ms predicted on `{b['target']}` ({b['runtime'] or 'runtime ?'}, "
            f"{b['threads']} thread(s)); {b['n_modelled']} op(s) not in the table came from the op model.")
    return [head, ""] + _md_table(rows)


def _md_table(rows: list[dict]) -> list[str]:
    if not rows:
        return ["(none)"]
    cols = list(rows[0])
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in cols]
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


# ---------------------------------------------------------------- small helpers

def _predicted_baseline_ms(name: str, target: str | None) -> float | None:
    if not target:
        return None
    try:
        from nas.baselines import load_baseline
        from nas.latency import predict_latency

        return float(predict_latency(load_baseline(name), target).latency_ms)
    except (ImportError, NasError):
        return None


def _arch_field(text: str, key: str) -> Any:
    try:
        return json.loads(text).get(key) if text else None
    except (json.JSONDecodeError, AttributeError):
        return None


def _last_epoch(text: str) -> float | None:
    try:
        epochs = json.loads(text) if text else []
    except json.JSONDecodeError:
        return None
    return float(epochs[-1]) if epochs else None


def _int(v: Any) -> int | None:
    return None if pd.isna(v) else int(v)


def _ms(v: float | None) -> str:
    return "none" if v is None else f"{v:g} ms"


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "baseline"}
