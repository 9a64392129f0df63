"""Reading a search's run folder: its config, its trials table, the winner, a trial's checkpoint.

A run folder (`runs/NAME/`) holds config.yaml, study.db, trials.csv (one row per trial, columns
`TRIAL_COLUMNS`), pareto.csv, best.json, summary.md and `checkpoints/trial_<number>.pt` for the
Pareto trials. Everything here reads; the search writes. Latencies are milliseconds, accuracies
0..1 on the proxy data set's validation split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from nas.arch import Arch, arch_from_dict, load_arch
from nas.errors import NasError

TRIAL_COLUMNS = ["number", "state", "baseline", "arch", "block_string", "params", "madds", "latency_ms",
                 "accuracy_epochs", "accuracy", "seconds", "trial_params"]
TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL", "REJECTED", "RUNNING", "INTERRUPTED")
_TEXT_COLUMNS = ("state", "baseline", "arch", "block_string", "accuracy_epochs", "trial_params")
_NUMBER_COLUMNS = ("params", "madds", "latency_ms", "accuracy", "seconds")


@dataclass(frozen=True)
class Trial:
    """One row of trials.csv with its architecture parsed. `accuracy` is None unless COMPLETE;
    `baseline` is "" for a sampled trial; `latency_ms` is the predicted latency on the target."""

    number: int
    state: str
    baseline: str
    arch: Arch
    block_string: str
    params: int | None
    madds: int | None
    latency_ms: float | None
    accuracy: float | None
    accuracy_epochs: tuple[float, ...]
    seconds: float | None


@dataclass(frozen=True)
class Checkpoint:
    """A trained trial's weights. The weights belong to `proxy_arch` (the network actually trained:
    small input, the proxy data set's classes, relaxed strides); `arch` is the deployment network."""

    path: Path
    arch: Arch
    proxy_arch: Arch
    state_dict: dict
    accuracy: float | None
    dataset: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """An opened run folder: its path, its config (the config.yaml mapping) and its trials."""

    path: Path
    config: dict
    trials: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def budget_ms(self) -> float | None:
        value = self.config.get("budget_ms")
        return None if value is None else float(value)

    @property
    def target(self) -> str | None:
        return self.config.get("target")

    def trial(self, number: int) -> Trial:
        """The trial called `number`; NasError if the run has no such trial or it failed."""
        rows = self.trials[self.trials["number"] == number]
        if rows.empty:
            raise NasError(f"trial {number} is not in {self.path}; its trials are {_number_ranges(self.trials)}")
        trial = _trial_from_row(rows.iloc[-1], self.path)
        if trial.state == "FAIL":
            raise NasError(f"trial {number} in {self.path} failed (state FAIL) and has no result; "
                           f"pick a completed trial: {_number_ranges(self.completed())}")
        return trial

    def best(self) -> Trial:
        """The winner: the trial whose architecture is best.json, else the most accurate completed
        trial within the budget (lowest latency breaks ties). NasError if nothing completed."""
        number = self.best_number()
        if number is None:
            states = ", ".join(f"{n} {s}" for s, n in self.trials["state"].value_counts().items()) or "no trials"
            raise NasError(f"{self.path} has no completed trial within the budget yet ({states}); "
                           "wait for the search or pick one with --trial N")
        return self.trial(number)

    def best_number(self) -> int | None:
        """Trial number of the winner, or None when no completed trial fits the budget."""
        best_file = self.path / "best.json"
        if best_file.is_file():
            number = _trial_with_arch(self.trials, load_arch(best_file))
            if number is not None:
                return number
        done = self.completed()
        if self.budget_ms is not None:
            done = done[done["latency_ms"] <= self.budget_ms]
        if done.empty:
            return None
        return int(done.sort_values(["accuracy", "latency_ms"], ascending=[False, True]).iloc[0]["number"])

    def completed(self) -> pd.DataFrame:
        """The COMPLETE trials (with an accuracy)."""
        t = self.trials
        return t[(t["state"] == "COMPLETE") & t["accuracy"].notna()]

    def pareto(self) -> pd.DataFrame:
        """The accuracy-vs-latency Pareto front: pareto.csv when the search wrote it, else computed."""
        path = self.path / "pareto.csv"
        if path.is_file():
            return read_trials_csv(path)
        return pareto_front(self.trials)

    def checkpoint_path(self, number: int) -> Path | None:
        """`checkpoints/trial_<number>.pt` if the search kept one for that trial."""
        path = self.path / "checkpoints" / f"trial_{number}.pt"
        return path if path.is_file() else None


def is_run_dir(path: str | Path) -> bool:
    """True when `path` is a folder that looks like a run folder (config.yaml or trials.csv)."""
    p = Path(path)
    return p.is_dir() and ((p / "config.yaml").is_file() or (p / "trials.csv").is_file())


def open_run(path: str | Path) -> Run:
    """Read a run folder. NasError naming the folder when it is missing or is not a run folder."""
    p = Path(path)
    if not p.exists():
        raise NasError(f"{p}: no such run folder; runs are written by `nas search --out {p}`")
    if not p.is_dir() or not (p / "trials.csv").is_file():
        raise NasError(f"{p}: not a run folder (no trials.csv); expected the --out folder of `nas search`")
    return Run(path=p, config=read_config(p), trials=read_trials_csv(p / "trials.csv"))


def read_config(run_dir: Path) -> dict:
    """config.yaml as a mapping ({} when the file is missing)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise NasError(f"{path}: expected a YAML mapping of search settings")
    return data


def read_trials_csv(path: Path) -> pd.DataFrame:
    """trials.csv (or pareto.csv) with typed columns: text columns "" when empty, numbers NaN."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False,
                            na_values={c: [""] for c in ("number", *_NUMBER_COLUMNS)})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    missing = [c for c in TRIAL_COLUMNS if c not in frame.columns]
    if missing:
        raise NasError(f"{path}: column {missing[0]!r} is missing; expected columns {', '.join(TRIAL_COLUMNS)}")
    for c in ("number", *_NUMBER_COLUMNS):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame = frame[frame["number"].notna()].copy()
    frame["number"] = frame["number"].astype(int)
    return frame.reset_index(drop=True)


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials that no other COMPLETE trial beats on both accuracy (higher) and
    predicted latency (lower), sorted by latency."""
    done = frame[(frame["state"] == "COMPLETE") & frame["accuracy"].notna()]
    done = done.sort_values(["latency_ms", "accuracy"], ascending=[True, False])
    keep, best = [], float("-inf")
    for idx, acc in done["accuracy"].items():
        if acc > best:
            keep.append(idx)
            best = acc
    return done.loc[keep]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read `checkpoints/trial_<n>.pt` (tensors, architecture dicts and numbers only)."""
    import torch

    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which file, not torch's internals
        raise NasError(f"{path}: not a readable trial checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(data, dict) or not {"arch", "proxy_arch", "state_dict"} <= set(data):
        raise NasError(f"{path}: not a trial checkpoint; expected the keys arch, proxy_arch, state_dict")
    accuracy = data.get("accuracy")
    return Checkpoint(path=path, arch=arch_from_dict(data["arch"]), proxy_arch=arch_from_dict(data["proxy_arch"]),
                      state_dict=data["state_dict"], accuracy=None if accuracy is None else float(accuracy),
                      dataset=str(data.get("dataset", "")), classes=tuple(data.get("classes", ()) or ()))


def _trial_from_row(row: pd.Series, run_dir: Path) -> Trial:
    number = int(row["number"])
    if not row["arch"]:
        raise NasError(f"trial {number} in {run_dir} has no architecture (state {row['state']})")
    arch = arch_from_dict(_json(row["arch"], f"trials.csv trial {number} arch"))
    epochs = _json(row["accuracy_epochs"], f"trials.csv trial {number} accuracy_epochs") if row["accuracy_epochs"] else []
    return Trial(number=number, state=row["state"], baseline=row["baseline"], arch=arch,
                 block_string=row["block_string"], params=_int_or_none(row["params"]),
                 madds=_int_or_none(row["madds"]), latency_ms=_float_or_none(row["latency_ms"]),
                 accuracy=_float_or_none(row["accuracy"]), accuracy_epochs=tuple(float(a) for a in epochs),
                 seconds=_float_or_none(row["seconds"]))


def _trial_with_arch(frame: pd.DataFrame, arch: Arch) -> int | None:
    """The last COMPLETE trial whose architecture equals `arch` (names ignored)."""
    target = replace(arch, name="")
    for _, row in frame[frame["state"] == "COMPLETE"].iloc[::-1].iterrows():
        try:
            if replace(arch_from_dict(json.loads(row["arch"])), name="") == target:
                return int(row["number"])
        except (ValueError, TypeError):
            continue
    return None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise NasError(f"{where}: malformed JSON at column {e.colno}: {e.msg}") from None


def _int_or_none(v: Any) -> int | None:
    return None if pd.isna(v) else int(v)


def _float_or_none(v: Any) -> float | None:
    return None if pd.isna(v) else float(v)


def _number_ranges(frame: pd.DataFrame) -> str:
    """Trial numbers as compact ranges, e.g. "0-4, 7, 9-12" ("none" when empty)."""
    numbers = sorted(int(n) for n in frame["number"])
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
