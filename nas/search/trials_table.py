"""A run folder's trials table, as trials.csv and pareto.csv hold it: the columns, reading it
typed, and the rules a table is ranked by (`ranking_column`, the winner `best_row`, the Pareto
front). The search writes it (`nas.search.results`) and `nas.search.rundir` reads it; both go
through here, and this module imports nothing from the engines. Latencies are milliseconds,
accuracies 0..1 on the proxy data set's validation split.

With `nas search --rungs` (nas.search.rungs) the best trials are trained again with more data;
`rung` is the highest rung a completed trial reached (0: the search's own training) and
`rung_accuracy`, `rung_score` its proxy accuracy and score there (`with_rungs`). The winner and
the finalists are chosen among the trials of the highest rung, by `rung_score` (`top_rung`);
`accuracy` and the ranking column keep the rung-0 values, and the Pareto front is drawn from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nas.errors import NasError
from nas.search.policy import Status

ESTIMATE_COLUMN = "imagenet_estimate"  # trials.csv column and trial attribute of `--score imagenet-estimate`
DEVICE_COLUMN = "device"  # trials.csv column and trial attribute: where the trial trained
RUNG_COLUMNS = ("rung", "rung_accuracy", "rung_score")  # the highest rung a trial reached, its accuracy and score there
# trials.csv columns newer than some run folders: read as empty
ADDED_COLUMNS = (ESTIMATE_COLUMN, DEVICE_COLUMN, *RUNG_COLUMNS)
TRIAL_COLUMNS = ["number", "state", "baseline", "arch", "block_string", "params", "madds", "latency_ms",
                 "accuracy_epochs", "accuracy", "imagenet_estimate", "seconds", "device", "trial_params",
                 *RUNG_COLUMNS]
_TEXT_COLUMNS = ("state", "baseline", "arch", "block_string", "accuracy_epochs", "device", "trial_params")
_NUMBER_COLUMNS = ("params", "madds", "latency_ms", "accuracy", "imagenet_estimate", "seconds", *RUNG_COLUMNS)


def read_trials_csv(path: Path) -> pd.DataFrame:
    """trials.csv (or pareto.csv) with typed columns: text columns "" when empty, numbers NaN."""
    return typed_trials(path, str(path))


def typed_trials(source: Any, where: str) -> pd.DataFrame:
    """A trials table read from `source` (a path or a text buffer; `where` names it in errors)."""
    try:
        frame = pd.read_csv(source, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False,
                            na_values={c: [""] for c in ("number", *_NUMBER_COLUMNS)})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise NasError(f"{where}: not a readable trials table ({str(e).splitlines()[0][:160]})") from None
    for column in ADDED_COLUMNS:  # a run folder written before the column existed
        if column not in frame.columns:
            frame.insert(TRIAL_COLUMNS.index(column), column, "" if column in _TEXT_COLUMNS else float("nan"))
    missing = [c for c in TRIAL_COLUMNS if c not in frame.columns]
    if missing:
        raise NasError(f"{where}: column {missing[0]!r} is missing; expected columns {', '.join(TRIAL_COLUMNS)}")
    for c in ("number", *_NUMBER_COLUMNS):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame = frame[frame["number"].notna()].copy()
    frame["number"] = frame["number"].astype(int)
    return frame.reset_index(drop=True)


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials that no other COMPLETE trial beats on both score (higher; the
    `ranking_column`: the ImageNet estimate or the proxy accuracy) and predicted latency (lower),
    sorted by latency."""
    score = ranking_column(frame)
    done = frame[(frame["state"] == Status.COMPLETE) & frame["accuracy"].notna()]
    done = done.sort_values(["latency_ms", score], ascending=[True, False])
    keep, best = [], float("-inf")
    for idx, acc in done[score].items():
        if acc > best:
            keep.append(idx)
            best = acc
    return done.loc[keep]


def number_ranges(numbers: list[int]) -> str:
    """Sorted trial numbers as compact ranges, e.g. "0-4, 7, 9-12" ("none" when empty)."""
    if not numbers:
        return "none"
    parts, start, prev = [], numbers[0], numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def score_label(column: str) -> str:
    """How a report names the `ranking_column` it ranks by."""
    return "ImageNet top-1 estimate" if column == ESTIMATE_COLUMN else "proxy accuracy"


# What the ImageNet estimate is made of, as summary.md and report.md describe it.
ESTIMATE_BASIS = ("proxy accuracy, cost and a published prior for SE and h-swish blocks, fitted on 53 "
                  "published networks")


def searched_rho_lines(resolutions: list[int] | tuple[int, ...] | None) -> list[str]:
    """The line summary.md and report.md give a search narrowed to some rho (`--resolution`), or none."""
    if not resolutions:
        return []
    return [f"Searched at rho {', '.join(map(str, resolutions))} only (`--resolution`; with proxy ranking a search "
            "compares networks at the space's largest rho unless told otherwise: docs/training.md)."]


def ranking_column(frame: pd.DataFrame) -> str:
    """The trials.csv column the winner is chosen by: the ImageNet estimate when the run scored
    by it (its completed trials carry one), else the proxy accuracy."""
    done = frame[frame["state"] == Status.COMPLETE]
    if ESTIMATE_COLUMN in frame and len(done) and done[ESTIMATE_COLUMN].notna().all():
        return ESTIMATE_COLUMN
    return "accuracy"


def ranking_value(attrs: dict) -> float:
    """What a stored completed trial (its attributes) is ranked by: its estimate, else accuracy."""
    value = attrs.get(ESTIMATE_COLUMN)
    return value if value is not None else attrs["accuracy_epochs"][-1]


def winner_key(attrs: dict, latency_ms: float, number: int) -> tuple:
    """The order the winner is chosen in, smallest first: highest score (`ranking_value`), then
    lowest latency, then the earliest trial. `best_row` sorts a trials table the same way."""
    return -ranking_value(attrs), latency_ms, number


def completed_within(frame: pd.DataFrame, budget_ms: float | None) -> pd.DataFrame:
    """The completed trials of `frame` with an accuracy, within `budget_ms` (all, when None)."""
    ok = frame[(frame["state"] == Status.COMPLETE) & frame["accuracy"].notna()]
    return ok if budget_ms is None else ok[ok["latency_ms"] <= budget_ms]


def top_rung(frame: pd.DataFrame, budget_ms: float | None) -> pd.DataFrame:
    """The candidates for winner, best first: the completed trials within the budget (all, when
    None) that reached the highest rung, by their score there (`rung_score`; without rungs: the
    `ranking_column`), then the lowest latency, then the lowest number (the order of `winner_key`)."""
    ok = completed_within(frame, budget_ms)
    value = ok[ranking_column(frame)]
    if has_rungs(ok):
        rung = pd.to_numeric(ok["rung"], errors="coerce")
        ok = ok[rung == rung.max()]
        value = pd.to_numeric(ok["rung_score"], errors="coerce")
    ranked = ok.assign(_value=value).sort_values(["_value", "latency_ms", "number"], ascending=[False, True, True])
    return ranked.drop(columns="_value")


def has_rungs(frame: pd.DataFrame) -> bool:
    """Whether a trial of `frame` was trained at a rung above 0 (nas.search.rungs)."""
    return "rung" in frame and bool((pd.to_numeric(frame["rung"], errors="coerce") > 0).any())


def best_row(frame: pd.DataFrame, budget_ms: float | None) -> pd.Series | None:
    """The winner of a trials table: the first of `top_rung` (the completed trial within the
    budget with the highest score at the highest rung, then the lowest latency, then the lowest
    number); None when no completed trial fits."""
    ranked = top_rung(frame, budget_ms)
    return None if ranked.empty else ranked.iloc[0]


def finalists(frame: pd.DataFrame, budget_ms: float | None, k: int) -> pd.DataFrame:
    """The `k` best of `top_rung` (the completed trials within the budget at the highest rung, by
    their score there; ties: lower latency, then lower number), plus the best baseline among them
    if it is not one of the `k`."""
    ranked = top_rung(frame, budget_ms)
    chosen = ranked.head(k)
    baselines = ranked[ranked["baseline"].fillna("").astype(str) != ""]
    if k > 0 and not baselines.empty and int(baselines.iloc[0]["number"]) not in set(chosen["number"]):
        chosen = pd.concat([chosen, baselines.head(1)])
    return chosen


def with_rungs(frame: pd.DataFrame, rungs: dict | None) -> pd.DataFrame:
    """`frame` with its RUNG_COLUMNS filled: every completed trial at rung 0 with its accuracy and
    score (the `ranking_column`), then the trials `rungs` (a nas.search.rungs result, its
    "trials": {"N": {"rung", "accuracy", "score"}}) trained higher at their highest rung."""
    t = frame.copy()
    done = (t["state"] == Status.COMPLETE) & t["accuracy"].notna()
    score = pd.to_numeric(t[ranking_column(t)], errors="coerce")
    t["rung"] = pd.Series(0.0, index=t.index).where(done)
    t["rung_accuracy"] = pd.to_numeric(t["accuracy"], errors="coerce").where(done)
    t["rung_score"] = score.where(done)
    for number, r in ((rungs or {}).get("trials") or {}).items():
        at = done & (t["number"] == int(number))
        t.loc[at, list(RUNG_COLUMNS)] = [float(r["rung"]), float(r["accuracy"]), float(r["score"])]
    return t
