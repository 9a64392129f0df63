"""A run folder's trials table, as trials.csv and pareto.csv hold it: the columns, reading it
typed, and the rules a table is ranked by (`ranking_column`, the winner `best_row`, the Pareto
front). The search writes it (`nas.search.results`) and `nas.search.rundir` reads it; both go
through here, and this module imports nothing from the engines. Latencies are milliseconds,
accuracies 0..1 on the proxy data set's validation split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nas.errors import NasError
from nas.search.policy import Status

ESTIMATE_COLUMN = "imagenet_estimate"  # trials.csv column and trial attribute of `--score imagenet-estimate`
DEVICE_COLUMN = "device"  # trials.csv column and trial attribute: where the trial trained
ADDED_COLUMNS = (ESTIMATE_COLUMN, DEVICE_COLUMN)  # trials.csv columns newer than some run folders: read as empty
TRIAL_COLUMNS = ["number", "state", "baseline", "arch", "block_string", "params", "madds", "latency_ms",
                 "accuracy_epochs", "accuracy", "imagenet_estimate", "seconds", "device", "trial_params"]
_TEXT_COLUMNS = ("state", "baseline", "arch", "block_string", "accuracy_epochs", "device", "trial_params")
_NUMBER_COLUMNS = ("params", "madds", "latency_ms", "accuracy", "imagenet_estimate", "seconds")


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


def best_row(frame: pd.DataFrame, budget_ms: float | None) -> pd.Series | None:
    """The winner of a trials table: the completed trial within the budget (all, when None) with
    the highest `ranking_column` value, then the lowest latency, then the lowest number (the
    order of `winner_key`); None when no completed trial fits."""
    ok = frame[(frame["state"] == Status.COMPLETE) & frame["accuracy"].notna()]
    if budget_ms is not None:
        ok = ok[ok["latency_ms"] <= budget_ms]
    if ok.empty:
        return None
    return ok.sort_values([ranking_column(frame), "latency_ms", "number"], ascending=[False, True, True]).iloc[0]


def finalists(frame: pd.DataFrame, budget_ms: float | None, k: int) -> pd.DataFrame:
    """The `k` best completed trials within the budget by the run's ranking column (ties: lower
    latency, then lower number), plus the best baseline within the budget if it is not among them."""
    ok = frame[(frame["state"] == Status.COMPLETE) & frame["accuracy"].notna()]
    if budget_ms is not None:
        ok = ok[ok["latency_ms"] <= budget_ms]
    ranked = ok.sort_values([ranking_column(frame), "latency_ms", "number"], ascending=[False, True, True])
    chosen = ranked.head(k)
    baselines = ranked[ranked["baseline"].fillna("").astype(str) != ""]
    if k > 0 and not baselines.empty and int(baselines.iloc[0]["number"]) not in set(chosen["number"]):
        chosen = pd.concat([chosen, baselines.head(1)])
    return chosen
