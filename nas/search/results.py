"""What a search leaves in its run folder, rebuilt from the stored trials after every trial and at
the end: trials.csv, pareto.csv, best.json, summary.md; checkpoints of non-Pareto trials removed.
After the trials, the rungs (nas.search.rungs) and the confirmation (nas.search.confirm) are
written in with them: the winner is then the confirmed one, chosen among the top rung's trials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nas.arch import arch_from_dict, save_arch
from nas.files import write_atomic, write_text_atomic
from nas.search.config import RunSettings
from nas.search.policy import FINISHED, Status
from nas.search.trials_table import (ESTIMATE_BASIS, ESTIMATE_COLUMN, TRIAL_COLUMNS, best_row, finalists, has_rungs,
                                     pareto_front, ranking_column, score_label, searched_rho_lines, top_rung,
                                     with_rungs)
from nas.tables import markdown_table



@dataclass(frozen=True)
class TrialRecord:
    """One stored trial in engine-neutral form (an Optuna FrozenTrial or a Ray Tune result)."""

    number: int
    status: str
    user_attrs: dict
    params: dict


def trials_frame(records: list[TrialRecord], rungs: dict | None = None) -> pd.DataFrame:
    """One row per trial with the run-folder columns; trials never scored (WAITING) are left out.
    The rung columns say rung 0 for every completed trial, or where `rungs` (a nas.search.rungs
    result) trained it higher, its highest rung (`with_rungs`)."""
    rows = []
    for r in sorted(records, key=lambda r: r.number):
        a = r.user_attrs
        if "arch" not in a:
            continue
        epochs = a.get("accuracy_epochs", [])
        rows.append({"number": r.number, "state": r.status, "baseline": a.get("baseline", ""),
                     "arch": a["arch"], "block_string": a.get("block_string", ""),
                     "params": a.get("params"), "madds": a.get("madds"), "latency_ms": a.get("latency_ms"),
                     "accuracy_epochs": json.dumps(epochs),
                     "accuracy": epochs[-1] if r.status == Status.COMPLETE and epochs else None,
                     ESTIMATE_COLUMN: a.get(ESTIMATE_COLUMN) if r.status == Status.COMPLETE else None,
                     "seconds": a.get("seconds"), "device": a.get("device", ""),
                     "trial_params": json.dumps(r.params)})
    return with_rungs(pd.DataFrame(rows, columns=TRIAL_COLUMNS), rungs)


def write_results(records: list[TrialRecord], run: RunSettings, confirmation: dict | None = None,
                  rungs: dict | None = None) -> dict:
    """Write trials.csv, pareto.csv, best.json and summary.md into `run.out`; drop checkpoints that left the
    Pareto front (the best trial's, the `run.finalists` confirmation may name and those of the
    top rung's trials are always kept). Returns the summary as a dict. With `rungs`
    (nas.search.rungs), trials.csv says the rung each trial reached, the winner comes from the
    highest rung and the summary shows the rung table. With a
    `confirmation` (nas.search.confirm), its winner is the run's winner and the summary shows
    the finalists, the margin and its noise.
    Every file is written whole or not at all; NasError (one line) for an I/O error, which
    loses nothing: the trials are in the study, and the next run rewrites these files."""
    out = Path(run.out)
    frame = trials_frame(records, rungs)
    write_atomic(out / "trials.csv", lambda tmp: frame.astype({"rung": "Int64"}).to_csv(tmp, index=False))
    front = pareto_front(frame)
    write_atomic(out / "pareto.csv", lambda tmp: front.to_csv(tmp, index=False))
    best = best_row(frame, run.budget_ms)
    if confirmation is not None:
        best = frame[frame["number"] == confirmation["winner"]].iloc[0]
    if best is not None:
        arch = arch_from_dict(json.loads(best["arch"]))
        write_atomic(out / "best.json", lambda tmp: save_arch(arch, tmp))
    # A trial still running (or not yet recorded) may already have written its checkpoint: another
    # worker's trial finishing first must not remove it. Only finished trials off the front go.
    finished = set(frame[frame["state"].isin(FINISHED)]["number"])
    # The finalists confirmation may name keep theirs too, so the confirmed winner has its weights.
    keep = (set(front["number"]) | set(finalists(frame, run.budget_ms, run.finalists)["number"])
            | ({int(best["number"])} if best is not None else set())
            | (set(top_rung(frame, run.budget_ms)["number"]) if has_rungs(frame) else set()))
    _prune_checkpoints(out, finished - keep)
    summary = summarize(frame, run, best)
    if rungs is not None:
        summary["rungs"] = rungs
    if confirmation is not None:
        summary["confirmation"] = confirmation
    write_text_atomic(out / "summary.md", summary_markdown(summary))
    return summary


def _prune_checkpoints(out: Path, drop: set[int]) -> None:
    """Remove the checkpoints of the trials in `drop` (best effort: one that cannot be removed stays)."""
    folder = out / "checkpoints"
    if not folder.is_dir():
        return
    for path in folder.glob("trial_*.pt"):
        number = path.stem.split("_")[1]
        if number.isdigit() and int(number) in drop:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass


def _row_summary(row: pd.Series) -> dict:
    estimate = row.get(ESTIMATE_COLUMN)
    rung = row.get("rung")
    arch = json.loads(row["arch"])
    return {"trial": int(row["number"]), "name": arch["name"],
            "accuracy": float(row["accuracy"]) if pd.notna(row["accuracy"]) else None,
            ESTIMATE_COLUMN: float(estimate) if pd.notna(estimate) else None,
            "latency_ms": float(row["latency_ms"]), "params": int(row["params"]), "madds": int(row["madds"]),
            "resolution": int(arch["resolution"]),
            "block_string": row["block_string"],
            **({"rung": int(rung), "rung_accuracy": float(row["rung_accuracy"]), "rung_score": float(row["rung_score"])}
               if rung is not None and pd.notna(rung) else {})}


def summarize(frame: pd.DataFrame, run: RunSettings, best: pd.Series | None) -> dict:
    """Counts, the winner and the baselines of the run, as plain data."""
    counts = frame["state"].value_counts().to_dict()
    baselines = {}
    for name in run.baselines:
        rows = frame[frame["baseline"] == name]
        if not rows.empty:
            baselines[name] = _row_summary(rows.iloc[-1]) | {"state": rows.iloc[-1]["state"]}
    return {"out": run.out, "target": run.target, "budget_ms": run.budget_ms,
            "resolution_aware": run.resolution_aware,
            "resolutions": list(run.resolutions) if run.resolutions else None,
            "objective": run.objective, "sampler": run.sampler, "engine": run.engine,
            "ranked_by": ranking_column(frame),
            "trials": int(len(frame)), "counts": {k: int(v) for k, v in counts.items()},
            "best": _row_summary(best) if best is not None else None, "baselines": baselines}


# Measured in experiments/truth (pixel-40-60-mixed, rho_bias.py) and experiments/proxy_winner.
LOW_RHO_CAUTION = (
    "Caution: the winner is a rho-{rho} network ranked by proxy accuracy at a resolution-aware side. "
    "The short proxy overrates networks below rho 224 against a 5x longer training (in the 40-60 ms "
    "truth set, rho-192 networks rank 9.8th on average by the proxy and 12.5th by the long training), "
    "and both rho-192 winners of experiments/proxy_winner lost to MobileNetV3-Large at 20x. Confirm it "
    "with a longer training before deploying (`nas train best.json --recipe LONG.yaml --test`).")

# Measured in experiments/proxy_winner (the main command with --score proxy, winners retrained 20x).
NO_RUNGS_NOTE = (
    "Ranked by proxy accuracy without rungs: the finalists were compared at the search's own short "
    "training. In experiments/proxy_winner (CIFAR-10, Pixel 60 ms), four winners named that way ended "
    "-2.7 to +3.7 points from MobileNetV3-Large when both were trained 20x longer; the four named after "
    "two rungs (`--rungs 2 --confirm-seeds 1`) +1.8, +0.1, +1.6 and -0.7. `nas search --budget {budget}ms --out {out} "
    "--rungs 2 --confirm-seeds 1 --resume` adds them to this run (about 15 minutes on 2 cores at the default recipe).")


def summary_markdown(s: dict) -> str:
    """A short human summary: the winner against the baselines trained with the same recipe."""
    c = s["counts"]
    lines = [f"# Search {s['out']}", "",
             f"Target `{s['target']}`, budget {s['budget_ms']:g} ms, objective {s['objective']}, "
             f"sampler {s['sampler']}, engine {s['engine']}.",
             f"Trials: {s['trials']} ({c.get('COMPLETE', 0)} complete, {c.get('PRUNED', 0)} pruned, "
             f"{c.get('REJECTED', 0)} rejected over budget, {c.get('FAIL', 0)} failed).",
             f"Ranked by: {score_label(s['ranked_by'])}" + (
                 f" ({ESTIMATE_BASIS}; docs/training.md)."
                 if s["ranked_by"] == ESTIMATE_COLUMN else " (validation split of the proxy training)."),
             *searched_rho_lines(s.get("resolutions")), ""]
    entries = ([("winner", s["best"])] if s["best"] else []) + list(s["baselines"].items())
    with_estimate = s["ranked_by"] == ESTIMATE_COLUMN
    lines += markdown_table([{"network": f"{label} ({r['name']})", "trial": r["trial"],
                              **({"ImageNet estimate (%)": "-" if r.get(ESTIMATE_COLUMN) is None
                                  else f"{r[ESTIMATE_COLUMN]:.1f}"} if with_estimate else {}),
                              "val accuracy": f"{r['accuracy']:.4f}" if r["accuracy"] is not None
                              else r.get("state", "-"),
                              "latency (ms)": f"{r['latency_ms']:.1f}", "params": f"{r['params']:,}",
                              "MAdds (M)": f"{r['madds'] / 1e6:.1f}"} for label, r in entries])
    if not s["best"]:
        lines += ["", "No trained trial fits the budget yet."]
    else:
        lines += ["", f"Winner blocks: `{s['best']['block_string']}`"]
        if not with_estimate and s.get("resolution_aware") and s["best"].get("resolution", 224) < 224:
            lines += ["", LOW_RHO_CAUTION.format(rho=s["best"]["resolution"])]
        if not with_estimate and not s.get("rungs") and not s["best"].get("rung"):
            lines += ["", NO_RUNGS_NOTE.format(budget=f"{s['budget_ms']:g}", out=s["out"])]
        if s["best"].get("rung"):
            b = s["best"]
            value = f"{b['rung_score']:.2f} %" if with_estimate else f"{b['rung_score']:.4f}"
            lines += ["", f"Chosen at rung {b['rung']}: {score_label(s['ranked_by'])} {value} there "
                          f"({100 * b['rung_accuracy']:.2f} % proxy accuracy with the rung's longer training); "
                          "the table's accuracies are rung 0's, the training every trial had."]
    if s.get("rungs"):
        from nas.search.rungs import rungs_markdown

        lines += ["", *rungs_markdown(s["rungs"])]
    if s.get("confirmation"):
        from nas.search.confirm import confirmation_markdown

        lines += ["", *confirmation_markdown(s["confirmation"])]
    return "\n".join(lines) + "\n"


def optuna_records(study) -> list[TrialRecord]:
    """Stored Optuna trials as engine-neutral records."""
    from nas.search.progress import trial_status

    return [TrialRecord(t.number, trial_status(t), dict(t.user_attrs), dict(t.params))
            for t in study.get_trials(deepcopy=False)]
