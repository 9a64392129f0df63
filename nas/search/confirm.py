"""Confirming the winner before naming it: the finalists retrained at more seeds, compared on their mean.

A search ranks thousands of networks of nearly equal cost by one proxy training each, and a
network's proxy accuracy moves by about 2 points between seeds (experiments/proxy_fidelity), so
the top of a single-seed ranking is partly the luck of the draw. After the trials, the
`confirm` best trials within the budget, and the best baseline within it, are trained again with
the run's recipe at `seeds` more seeds (the recipe's seed + 1, + 2, ...). The winner is the
finalist with the highest mean score over all its seeds (its trial's, then these), and the summary
states its margin over the runner-up and that margin's noise: the standard error of the
difference of the two means, sqrt(s_a^2 / n_a + s_b^2 / n_b), with s the finalists' seed-to-seed
standard deviations.

    from nas.search.confirm import confirm_finalists
    confirmation = confirm_finalists(frame, out, budget_ms, recipe, score, k=3, seeds=2)

Every retraining appends one row to OUT/confirm.csv (key "trial N@seed S"), so a killed
confirmation resumes where it stopped; the result is also written to OUT/confirmation.json.

With rungs (`nas search --rungs`, nas.search.rungs) the finalists are the best trials of the
highest rung, retrained with that rung's recipe (`rung`; keys "trial N@seed S@IMAGESxEPOCHS"),
their first seed's score being the rung's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from nas.arch import Arch, arch_from_dict
from nas.files import write_text_atomic
from nas.proxy.runner import read_rows, run_jobs
from nas.recipe import Recipe
from nas.search.policy import Status
from nas.search.trials_table import ESTIMATE_COLUMN, finalists, ranking_column
from nas.tables import markdown_table

CONFIRM_COLUMNS = ("key", "trial", "seed", "accuracy", "score", "seconds", "status", "finished_at")


@dataclass(frozen=True)
class ConfirmJob:
    """One finalist retrained at one seed; key "trial N@seed S"."""

    key: str
    trial: int
    seed: int
    arch: Arch
    recipe: Recipe
    score: str
    score_recipe: dict | None = None  # the run's recipe record the score is computed for (None: `recipe`)


def _score(arch: Arch, accuracy: float, recipe: Recipe | dict, score: str) -> float:
    """The value the run ranks by for a proxy accuracy (0..1): the accuracy or its ImageNet
    estimate (%), computed as the trials computed it (nas.search.policy.trial_score) for
    `recipe` (a Recipe or its record)."""
    from nas.recipe import recipe_to_dict
    from nas.search.policy import trial_score

    return trial_score(arch, accuracy, score, recipe if isinstance(recipe, dict) else recipe_to_dict(recipe))


def train_finalist(job: ConfirmJob) -> dict:
    """Train one finalist at one seed; its confirm.csv row."""
    from nas.train import TrainingFailed, train_arch

    try:
        result = train_arch(job.arch, job.recipe)
        acc, status, seconds = result.accuracy, "ok", round(result.seconds, 3)
        value = _score(job.arch, acc, job.score_recipe or job.recipe, job.score)
    except TrainingFailed as e:
        acc = value = seconds = ""
        status = f"failed: {e}"
    return {"key": job.key, "trial": job.trial, "seed": job.seed, "accuracy": acc, "score": value,
            "seconds": seconds, "status": status,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def confirm_finalists(frame: pd.DataFrame, out: str | Path, budget_ms: float | None, recipe: Recipe,
                      score: str, k: int = 3, seeds: int = 2, workers: int = 1, progress: bool = False,
                      rung: dict | None = None, score_recipe: dict | None = None,
                      trained_first: bool = True, by: str = "score") -> dict | None:
    """Retrain the finalists (see `finalists`) at `seeds` more seeds into OUT/confirm.csv and
    return the confirmation as plain data (also written to OUT/confirmation.json): the finalists
    with their scores per seed, mean and standard deviation, the winner's trial number, its margin
    over the runner-up and the margin's noise (the run's score units: proxy accuracy 0..1 or
    ImageNet top-1 %). None when there is nothing to confirm (k or seeds 0, or no finalist).
    With `rung` (a nas.search.rungs table row: "rung", "images", "epochs"), `recipe` is that
    rung's, the finalists come from it (`frame` carries the rung columns) and their first score
    is their `rung_score`; `score_recipe` is then the run's recipe record the score is computed for.
    `trained_first` False (trials scored as subnets of a supernet): the trial's own score is not a
    training's, so each finalist is trained at `seeds` seeds from the recipe's seed on, and only
    those count. `by` "accuracy": the finalists (chosen by the run's score) are compared by their
    proxy accuracy instead, the trained signal alone (`--confirm-by accuracy`)."""
    chosen = finalists(frame, budget_ms, k)
    if k < 1 or seeds < 1 or chosen.empty:
        return None
    out = Path(out)
    column = ranking_column(frame)
    compared = "accuracy" if by == "accuracy" else column
    extra = tuple(recipe.seed + (1 if trained_first else 0) + i for i in range(seeds))
    tag = f"@{recipe.train_subset}x{recipe.epochs}" if rung and rung["rung"] > 0 else ""
    jobs = [ConfirmJob(f"trial {int(r.number)}@seed {s}{tag}", int(r.number), s, arch_from_dict(json.loads(r.arch)),
                       replace(recipe, seed=s), "imagenet-estimate" if column == ESTIMATE_COLUMN else "proxy",
                       score_recipe)
            for s in extra for r in chosen.itertuples()]
    run_jobs(jobs, train_finalist, out / "confirm.csv", CONFIRM_COLUMNS, workers, desc="confirm",
             progress=progress, label=lambda row: f"{row['key']}: {row['score'] or row['status']}")
    rows = {r["key"]: r for r in read_rows(out / "confirm.csv")}
    entries = []
    for r in chosen.itertuples():
        values = {recipe.seed: _first_score(r, compared)} if trained_first else {}
        for s in extra:
            row = rows.get(f"trial {int(r.number)}@seed {s}{tag}")
            if row is not None and row["status"] == "ok":
                values[s] = float(row["accuracy"] if compared == "accuracy" else row["score"])
        if not values:  # every training of this finalist failed: it cannot be named
            continue
        v = np.array(list(values.values()))
        entries.append({"trial": int(r.number), "name": json.loads(r.arch)["name"],
                        "baseline": str(r.baseline) if isinstance(r.baseline, str) else "",
                        "latency_ms": float(r.latency_ms), "scores": {str(s): round(x, 6) for s, x in values.items()},
                        "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
                        "seeds": len(v)})
    if not entries:
        return None
    entries.sort(key=lambda e: (-e["mean"], e["latency_ms"], e["trial"]))
    result = {"ranked_by": compared, "seeds": [recipe.seed, *extra] if trained_first else list(extra),
              "finalists": entries,
              "winner": entries[0]["trial"], "single_seed_winner": int(chosen.iloc[0]["number"])}
    if tag:
        result["rung"] = {k: rung[k] for k in ("rung", "images", "epochs")}
    if len(entries) > 1:
        a, b = entries[0], entries[1]
        result["runner_up"] = b["trial"]
        result["margin"] = a["mean"] - b["mean"]
        result["margin_noise"] = _difference_noise(a, b)
    write_text_atomic(out / "confirmation.json", json.dumps(result, indent=2) + "\n")
    return result


def _first_score(row, column: str) -> float:
    """A finalist's `column` value (its score, or "accuracy") at the recipe's own seed: at its rung
    (`rung_score`, `rung_accuracy`) when the table has one, else the trial's own."""
    value = getattr(row, "rung_accuracy" if column == "accuracy" else "rung_score", None)
    return float(value) if value is not None and pd.notna(value) else float(getattr(row, column))


def _difference_noise(a: dict, b: dict) -> float | None:
    """Standard error of the difference of two finalists' mean scores; None without 2 seeds each."""
    if a["std"] is None or b["std"] is None:
        return None
    return math.sqrt(a["std"] ** 2 / a["seeds"] + b["std"] ** 2 / b["seeds"])


def confirmation_markdown(c: dict) -> list[str]:
    """The finalists table of a confirmation and one line on the winner's margin and its noise."""
    percent = c["ranked_by"] == ESTIMATE_COLUMN  # estimates are top-1 %, proxy accuracies 0..1
    fmt = (lambda v: f"{v:.2f}") if percent else (lambda v: f"{v:.4f}")
    unit = "ImageNet estimate (%)" if percent else "proxy accuracy"
    rows = [{"finalist": f"trial {f['trial']} ({f['baseline'] or f['name']})",
             **{f"seed {s}": fmt(f["scores"][str(s)]) if str(s) in f["scores"] else "-" for s in c["seeds"]},
             "mean": fmt(f["mean"]), "std": "-" if f["std"] is None else fmt(f["std"]),
             "latency (ms)": f"{f['latency_ms']:.1f}"} for f in c["finalists"]]
    at = (f", trained at rung {c['rung']['rung']}: {c['rung']['images']:,} images x {c['rung']['epochs']} epochs"
          if c.get("rung") else "")
    lines = [f"## Confirmation: the finalists at {len(c['seeds'])} seeds ({unit}{at})", "", *markdown_table(rows), ""]
    def margin(m: float, noise: float | None) -> str:
        """ "by M (noise of that margin: +-N, one standard error[; within the noise])." """
        return (f"by {fmt(m)} (noise of that margin: +-{'unknown' if noise is None else fmt(noise)}, one standard "
                f"error" + ("; within the noise" if noise is not None and m < 2 * noise else "") + ").")

    if "margin" in c:
        lines.append(f"Winner: trial {c['winner']}, ahead of trial {c['runner_up']} "
                     + margin(c["margin"], c["margin_noise"]))
    winner = c["finalists"][0]
    for f in c["finalists"][1:]:
        if f["baseline"]:  # a published network among the finalists: what the winner must beat
            lines.append(f"Against {f['baseline']} (trial {f['trial']}): the winner is ahead "
                         + margin(winner["mean"] - f["mean"], _difference_noise(winner, f)))
    if c["winner"] != c["single_seed_winner"]:
        lines.append(f"The single-seed ranking had put trial {c['single_seed_winner']} first.")
    return lines
