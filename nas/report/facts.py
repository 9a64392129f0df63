"""The facts a run report shows, computed once from the run folder: the trials table with derived
columns, the Pareto front, the winner, the baselines and the winner's latency per op.
Accuracies are 0..1 on the proxy data set's validation split; latencies are milliseconds
predicted for the run's target."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from nas.baselines import load_baseline
from nas.errors import NasError
from nas.latency import predict_latency
from nas.search.policy import Status
from nas.search.rundir import Run
from nas.search.trials_table import ESTIMATE_COLUMN, ranking_column

REPORT_BASELINES = {"mobilenet_v3_large": "V3-Large", "mobilenet_v3_small": "V3-Small"}


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
    t["name"] = [arch_field(a, "name") for a in t["arch"]]
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
    measured = measured_latency(run, t, winner, notes)
    ranked_by = ranking_column(t)
    t["score"] = t[ranked_by] * (100 if ranked_by == "accuracy" else 1)  # what the run ranks by, in %
    return {"run": run, "trials": t, "front": t[t["pareto"]].sort_values("latency_ms"), "winner": winner,
            "baselines": baseline_marks(run, t, notes), "breakdown": breakdown, "notes": notes,
            "measured": measured, "ranked_by": ranked_by, "confirmation": _confirmation(run, winner),
            "rungs": _rungs(run),
            "dataset": run.config.get("dataset") or "proxy data", "target": run.target or "target"}


def _confirmation(run: Run, winner: int | None) -> dict | None:
    """The run's confirmation of its winner (confirmation.json), when it names this winner."""
    from nas.search.rundir import read_confirmation

    c = read_confirmation(run.path)
    return c if c is not None and c["winner"] == winner else None


def _rungs(run: Run) -> dict | None:
    """The run's rung table (rungs.json, nas.search.rungs), when its trials carry rungs."""
    from nas.search.rundir import read_rungs
    from nas.search.trials_table import has_rungs

    r = read_rungs(run.path)
    return r if r is not None and has_rungs(run.trials) else None


def measured_latency(run: Run, t: pd.DataFrame, winner: int | None, notes: list[str]) -> dict | None:
    """The run folder's measured.json (the winner and baselines timed on the machine that ran
    the search, `nas.latency.winner`), or None when there is none; a note when it cannot be read
    or timed another winner than today's."""
    from nas.fileio import read_json
    from nas.latency.winner import MEASURED_FILE

    path = run.path / MEASURED_FILE
    if not path.is_file():
        return None
    try:
        m = read_json(path, "measured latency file")
        if not isinstance(m, dict) or not isinstance(m.get("measured"), bool):
            raise NasError(f"{path}: not a measured latency file (no 'measured': true or false)")
        rows = m.get("networks", []) if m["measured"] else []
        if not all(isinstance(r, dict) and {"name", "predicted_ms", "measured_ms", "error_pct"} <= r.keys()
                   for r in rows):
            raise NasError(f"{path}: a network entry lacks name, predicted_ms, measured_ms or error_pct")
    except NasError as e:
        notes.append(f"measured latency not shown: {e}")
        return None
    timed = next((r["name"] for r in rows if r.get("label") == "winner"), None)
    if timed is not None and winner is not None:
        name = t[t["number"] == winner]["name"].iloc[-1]
        if name != timed:
            notes.append(f"{MEASURED_FILE} timed {timed} as the winner, today's winner is {name}: "
                         f"rerun the search command to time it")
    return m


def baseline_marks(run: Run, t: pd.DataFrame, notes: list[str]) -> list[dict]:
    """One mark per V3-Large / V3-Small: the trained trial's (latency, accuracy, score: what the
    run ranks by, in %) when the run trained it, else its predicted latency on the target only
    (accuracy and score None). `t` carries the `score` column of `gather`."""
    marks = []
    for name, label in REPORT_BASELINES.items():
        rows = t[t["baseline"] == name]
        done = rows[(rows["state"] == Status.COMPLETE) & rows["accuracy"].notna()]
        if not done.empty:
            r = done.iloc[-1]
            marks.append({"baseline": name, "label": label, "trial": int(r["number"]), "arch": r["name"],
                          "latency_ms": float(r["latency_ms"]), "accuracy": float(r["accuracy"]),
                          "score": float(r["score"]) if pd.notna(r["score"]) else None,
                          ESTIMATE_COLUMN: _float(r.get(ESTIMATE_COLUMN)), "state": Status.COMPLETE})
            continue
        if not rows.empty and pd.notna(rows.iloc[-1]["latency_ms"]):
            r = rows.iloc[-1]
            marks.append({"baseline": name, "label": label, "trial": int(r["number"]), "arch": r["name"],
                          "latency_ms": float(r["latency_ms"]), "accuracy": None, "score": None,
                          ESTIMATE_COLUMN: None, "state": r["state"]})
            continue
        ms = _predicted_baseline_ms(name, run.target)
        if ms is None:
            notes.append(f"{label} is not in this run and its latency on {run.target!r} cannot be predicted")
            continue
        marks.append({"baseline": name, "label": label, "trial": None, "arch": name, "latency_ms": ms,
                      "accuracy": None, "score": None, ESTIMATE_COLUMN: None, "state": "not in run"})
    return marks


def latency_breakdown(arch: Any, target: str | None) -> tuple[dict | None, str]:
    """The winner's predicted latency per op on `target` (nas.latency.predict_latency) as
    {"total_ms", "overhead_ms", "runtime", "threads", "n_modelled", "ops": [...]}, or None and a
    note saying why it is unavailable."""
    if not target:
        return None, "latency breakdown unavailable: config.yaml names no target"
    try:
        p = predict_latency(arch, target)
    except NasError as e:
        return None, f"latency breakdown unavailable: {e}"
    layers = arch.layers()
    ops = []
    for b in p.ops:
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
           "ranked_by": facts["ranked_by"],
           "states": {k: int(v) for k, v in t["state"].value_counts().items()},
           "pareto_size": int(len(facts["front"])), "winner": None,
           "baselines": {b["baseline"]: _clean(b) for b in facts["baselines"]}}
    if facts["winner"] is not None:
        r = t[t["number"] == facts["winner"]].iloc[-1]
        out["winner"] = {"trial": int(r["number"]), "arch": r["name"], "accuracy": float(r["accuracy"]),
                         ESTIMATE_COLUMN: _float(r.get(ESTIMATE_COLUMN)),
                         "latency_ms": float(r["latency_ms"]), "params": as_int(r["params"]),
                         "madds": as_int(r["madds"]), "block_string": r["block_string"],
                         "checkpoint": bool(r["checkpoint"])}
        if facts.get("rungs") and pd.notna(r.get("rung")):
            out["winner"] |= {"rung": int(r["rung"]), "rung_accuracy": float(r["rung_accuracy"]),
                              "rung_score": float(r["rung_score"])}
    if facts.get("measured") is not None:
        out["measured"] = facts["measured"]
    if facts["breakdown"] is not None:
        out["winner_latency_breakdown_ms"] = {"total": facts["breakdown"]["total_ms"],
                                              "overhead": facts["breakdown"]["overhead_ms"]}
    return out


def best_so_far(t: pd.DataFrame) -> pd.DataFrame:
    """Searched (non-baseline) trials by number with `best`: the highest `score` (what the run
    ranks by, %) of a completed trial within the budget up to and including that trial (NaN
    before the first)."""
    searched = t[~t["is_baseline"]].sort_values("number")
    ok = searched["score"].where((searched["state"] == Status.COMPLETE) & searched["within_budget"])
    return searched.assign(best=ok.cummax().ffill())


# ---------------------------------------------------------------- small helpers

def _predicted_baseline_ms(name: str, target: str | None) -> float | None:
    if not target:
        return None
    try:
        return float(predict_latency(load_baseline(name), target).latency_ms)
    except NasError:
        return None


def arch_field(text: str, key: str) -> Any:
    try:
        return json.loads(text).get(key) if text else None
    except (json.JSONDecodeError, AttributeError):
        return None


def last_epoch(text: str) -> float | None:
    try:
        epochs = json.loads(text) if text else []
    except json.JSONDecodeError:
        return None
    return float(epochs[-1]) if epochs else None


def _float(v: Any) -> float | None:
    return float(v) if v is not None and pd.notna(v) else None


def as_int(v: Any) -> int | None:
    return None if pd.isna(v) else int(v)


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "baseline"}
