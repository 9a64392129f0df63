"""Multi-fidelity search: the best trials trained again with more data before a winner is named.

A search trains every candidate with one short recipe, whose ranking is noisy: in the Pixel 40-60 ms
decision band the default proxy ranks networks with Kendall tau ~0.6 against a 5x longer training
(experiments/truth). Successive halving over the training budget (images x epochs) spends more
training on the few networks that matter. Rung 0 is the search's own training. Rung r trains with
eta^r x rung 0's budget (`rung_budget`): eta^r x the recipe's `train_subset` images, as long as
the data set's training split (less the validation images) holds that many, then the epochs grow
to make up the rest. After the engine's trials, the best ceil(n / eta) of the n completed trials
within the budget at rung r, and the best baseline among them (`finalists`), are trained at rung
r + 1, up to `rungs` rungs; a rung of one trial has nothing left to decide and ends it. Trials are
ranked at every rung by the run's score (`nas.search.policy.trial_score`: proxy accuracy, or the
ImageNet estimate computed as for the run's recipe: only its order within a rung matters).

    from nas.search.rungs import run_rungs
    result = run_rungs(frame, out, budget_ms, recipe, rungs=2, eta=3)

Every rung training appends one row to OUT/rungs.csv, keyed by the trial and the recipe's budget
("trial N@7500x4": images per epoch x epochs), so a killed run resumes training only what is
missing, and a resume with other `rungs` or `eta` reuses every training of the same budget. Each
rung training saves its weights over the trial's checkpoint (checkpoints/trial_N.pt then holds
the weights of the trial's highest rung). The result (the rung table, and each promoted trial's
highest rung with its accuracy and score there) is written to OUT/rungs.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nas.arch import Arch, arch_from_dict
from nas.files import write_text_atomic
from nas.proxy.runner import read_rows, run_jobs
from nas.recipe import Recipe, recipe_to_dict
from nas.search.trials_table import (ESTIMATE_COLUMN, RUNG_COLUMNS, completed_within, finalists, ranking_column,
                                     score_label)
from nas.tables import markdown_table

RUNGS_FILE = "rungs.json"
RUNG_CSV_COLUMNS = ("key", "trial", "rung", "images", "epochs", "accuracy", "score", "seconds", "status",
                    "finished_at")


@dataclass(frozen=True)
class RungJob:
    """One trial trained with one rung's recipe; key "trial N@IMAGESxEPOCHS". `score_recipe` is
    the run's recipe record its score is computed for; the checkpoint goes to `out`/checkpoints."""

    key: str
    trial: int
    rung: int
    arch: Arch
    recipe: Recipe
    score: str
    score_recipe: dict
    out: str


def rung_budget(recipe: Recipe, rung: int, eta: int, available: int) -> tuple[int, int]:
    """(training images per epoch, epochs) of `rung`: eta^rung x rung 0's images x epochs, the
    images grown first (up to `available`, the training split less the validation images), the
    epochs then rounded to make up the rest (never fewer than the recipe's)."""
    base = recipe.train_subset or available
    images = min(base * eta ** rung, available)
    epochs = max(recipe.epochs, round(base * recipe.epochs * eta ** rung / images))
    return images, epochs


def rung_recipe(recipe: Recipe, rung: int, eta: int, available: int) -> Recipe:
    """The run's recipe with the `rung_budget` of `rung` (rung 0: the recipe itself)."""
    if rung == 0:
        return recipe
    images, epochs = rung_budget(recipe, rung, eta, available)
    return replace(recipe, train_subset=images, epochs=epochs)


def job_key(trial: int, recipe: Recipe) -> str:
    """The rungs.csv key of a trial trained with a rung's recipe: "trial N@IMAGESxEPOCHS"."""
    return f"trial {trial}@{recipe.train_subset}x{recipe.epochs}"


def promoted(members: pd.DataFrame, budget_ms: float | None, eta: int) -> pd.DataFrame:
    """The trials of rung r + 1 from rung r's `members` (a trials table whose accuracy and
    ranking column hold their rung-r values): the best ceil(n / eta) of the n completed ones
    within the budget, plus the best baseline among them if it is not one of those."""
    return finalists(members, budget_ms, math.ceil(len(completed_within(members, budget_ms)) / eta))


def train_rung(job: RungJob) -> dict:
    """Train one trial with its rung's recipe, save its weights over the trial's checkpoint;
    its rungs.csv row."""
    from nas.search.policy import trial_score
    from nas.train import TrainingFailed, train_arch

    try:
        result = train_arch(job.arch, job.recipe)
        acc, status, seconds = result.accuracy, "ok", round(result.seconds, 3)
        value = trial_score(job.arch, acc, job.score, job.score_recipe)
        _save_weights(job, result)
    except TrainingFailed as e:
        acc = value = seconds = ""
        status = f"failed: {e}"
    return {"key": job.key, "trial": job.trial, "rung": job.rung, "images": job.recipe.train_subset,
            "epochs": job.recipe.epochs, "accuracy": acc, "score": value, "seconds": seconds, "status": status,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _save_weights(job: RungJob, result) -> None:
    """The rung's trained weights as checkpoints/trial_N.pt (as the trial saved its own); a file
    that cannot be written leaves the trial's older one and a warning."""
    import sys

    from nas.checkpoint import save_checkpoint
    from nas.errors import NasError
    from nas.recipe import proxy_arch

    model = result.model
    try:
        save_checkpoint(Path(job.out) / "checkpoints" / f"trial_{job.trial}.pt", job.arch, model.state_dict(),
                        proxy_arch=proxy_arch(job.arch, job.recipe, model.classifier.out_features),
                        accuracy=result.accuracy, dataset=job.recipe.dataset, trial=job.trial,
                        normalisation=result.normalisation, rung=job.rung)
    except NasError as e:
        print(f"warning: trial {job.trial} at rung {job.rung} is kept without its checkpoint: {e}", file=sys.stderr)


def run_rungs(frame: pd.DataFrame, out: str | Path, budget_ms: float | None, recipe: Recipe, rungs: int,
              eta: int = 3, workers: int = 1, progress: bool = False) -> dict | None:
    """Promote the best trials of `frame` (the run's trials table, rung 0) through `rungs` rungs,
    training what OUT/rungs.csv lacks; return the result as plain data (also OUT/rungs.json):
    "eta", "ranked_by" (the ranking column), "rungs" (per rung: "rung", "images", "epochs",
    "budget" (x rung 0), "trials" trained there, "failed", "best", "best_score") and "trials"
    ({"N": {"rung", "accuracy", "score"}} for each trial trained above rung 0, at its highest).
    None when `rungs` is 0 or no trial completed within the budget."""
    from nas.train import train_images

    out = Path(out)
    column = ranking_column(frame)
    members = completed_within(frame, budget_ms)
    if rungs < 1 or members.empty:
        return None
    members = members.drop(columns=[c for c in RUNG_COLUMNS if c in members])  # ranked by the columns below
    score = "imagenet-estimate" if column == ESTIMATE_COLUMN else "proxy"
    available = train_images(recipe)
    base = rung_budget(recipe, 0, eta, available)
    levels = [_level(0, members, column, base, base, [])]
    reached: dict[str, dict] = {}
    for rung in range(1, rungs + 1):
        if len(members) <= 1:
            break
        chosen = promoted(members, budget_ms, eta)
        at = rung_recipe(recipe, rung, eta, available)
        jobs = [RungJob(job_key(int(r.number), at), int(r.number), rung, arch_from_dict(json.loads(r.arch)), at,
                        score, recipe_to_dict(recipe), str(out)) for r in chosen.itertuples()]
        run_jobs(jobs, train_rung, out / "rungs.csv", RUNG_CSV_COLUMNS, workers, desc=f"rung {rung}",
                 progress=progress, label=lambda row: f"{row['key']}: {row['score'] or row['status']}")
        rows = {r["key"]: r for r in read_rows(out / "rungs.csv")}
        done = [rows.get(j.key) for j in jobs]
        ok = [r for r in done if r is not None and r["status"] == "ok"]
        failed = [j.trial for j, r in zip(jobs, done) if r is None or r["status"] != "ok"]
        members = chosen[chosen["number"].isin([int(r["trial"]) for r in ok])].copy()
        by_trial = {int(r["trial"]): r for r in ok}
        members["accuracy"] = [float(by_trial[int(n)]["accuracy"]) for n in members["number"]]
        members[column] = [float(by_trial[int(n)]["score"]) for n in members["number"]]
        for n in members["number"]:
            reached[str(int(n))] = {"rung": rung, "accuracy": float(by_trial[int(n)]["accuracy"]),
                                    "score": float(by_trial[int(n)]["score"])}
        levels.append(_level(rung, members, column, (at.train_subset, at.epochs), base, failed))
        if members.empty:
            break
    result = {"eta": eta, "ranked_by": column, "rungs": levels, "trials": reached}
    write_text_atomic(out / RUNGS_FILE, json.dumps(result, indent=2) + "\n")
    return result


def _level(rung: int, members: pd.DataFrame, column: str, budget: tuple[int, int], base: tuple[int, int],
           failed: list[int]) -> dict:
    """One row of the rung table: its budget (images, epochs; and as a multiple of rung 0's
    `base`), its trials and the best of them."""
    images, epochs = budget
    ranked = members.sort_values([column, "latency_ms", "number"], ascending=[False, True, True])
    best = ranked.iloc[0] if not ranked.empty else None
    return {"rung": rung, "images": int(images), "epochs": int(epochs),
            "budget": round(images * epochs / (base[0] * base[1]), 3),
            "trials": sorted(int(n) for n in members["number"]), "failed": sorted(failed),
            "best": None if best is None else int(best["number"]),
            "best_score": None if best is None else float(best[column])}


def top_recipe(result: dict, recipe: Recipe) -> tuple[Recipe, dict]:
    """The recipe of the highest rung that trained a trial, and that rung's table row: the
    finalists are confirmed with it."""
    level = next(lv for lv in reversed(result["rungs"]) if lv["trials"])
    if level["rung"] == 0:
        return recipe, level
    return replace(recipe, train_subset=level["images"], epochs=level["epochs"]), level


def rungs_markdown(result: dict) -> list[str]:
    """The rung table (per rung: its budget, how many trials trained there, the best of them)
    and a line on where the winner is chosen."""
    percent = result["ranked_by"] == ESTIMATE_COLUMN
    fmt = (lambda v: f"{v:.2f}") if percent else (lambda v: f"{v:.4f}")
    rows = [{"rung": lv["rung"], "images x epochs": f"{lv['images']:,} x {lv['epochs']}",
             "budget": f"{lv['budget']:g}x", "trials": len(lv["trials"]),
             "failed": len(lv["failed"]) if lv["rung"] else "-",
             "best": "-" if lv["best"] is None else f"trial {lv['best']}",
             score_label(result["ranked_by"]): "-" if lv["best_score"] is None else fmt(lv["best_score"])}
            for lv in result["rungs"]]
    top = next((lv for lv in reversed(result["rungs"]) if lv["trials"]), result["rungs"][0])
    return [f"## Rungs: the best trials trained again with more data (eta {result['eta']})", "",
            *markdown_table(rows), "",
            f"The winner is chosen among the {len(top['trials'])} trials of rung {top['rung']} "
            f"({top['images']:,} images x {top['epochs']} epochs)."]
