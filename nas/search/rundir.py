"""Reading a search's run folder: its config, its trials table, the winner, a trial's checkpoint.

A run folder (`runs/NAME/`) holds config.yaml, study.db, trials.csv (one row per trial, columns
`TRIAL_COLUMNS` of `nas.search.trials_table`), pareto.csv, best.json, summary.md and
`checkpoints/trial_<number>.pt` for the Pareto trials (with `--rungs`, also rungs.csv and rungs.json:
the rung each promoted trial reached, merged into the trials). Everything here reads; the search writes
(`nas.search.results`). Latencies are milliseconds, accuracies 0..1 on the proxy data set's
validation split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from nas.arch import Arch, arch_from_dict, load_arch
from nas.checkpoint import Checkpoint, load_checkpoint
from nas.errors import NasError
from nas.search.policy import Status
from nas.search.trials_table import (best_row, number_ranges, pareto_front, read_trials_csv, typed_trials,
                                     with_rungs)


@dataclass(frozen=True)
class RunTrial:
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
class Run:
    """An opened run folder: its path, its config (the config.yaml mapping) and its trials.
    `from_study`: the trials were rebuilt from the search's study (the record) rather than read
    from trials.csv; `notes` say where trials.csv, pareto.csv or best.json disagree with it."""

    path: Path
    config: dict
    trials: pd.DataFrame
    from_study: bool = False
    notes: tuple[str, ...] = ()

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

    def trial(self, number: int) -> RunTrial:
        """The trial called `number`; NasError if the run has no such trial or it failed."""
        rows = self.trials[self.trials["number"] == number]
        if rows.empty:
            raise NasError(f"trial {number} is not in {self.path}; its trials are {_number_ranges(self.trials)}")
        trial = _trial_from_row(rows.iloc[-1], self.path)
        if trial.state == Status.FAIL:
            raise NasError(f"trial {number} in {self.path} failed (state FAIL) and has no result; "
                           f"pick a completed trial: {_number_ranges(self.completed())}")
        return trial

    def best(self) -> RunTrial:
        """The winner: the trial whose architecture is best.json, else the most accurate completed
        trial within the budget (lowest latency breaks ties). NasError if nothing completed."""
        number = self.best_number()
        if number is None:
            states = ", ".join(f"{n} {s}" for s, n in self.trials["state"].value_counts().items()) or "no trials"
            raise NasError(f"{self.path} has no completed trial within the budget yet ({states}); "
                           "wait for the search or pick one with --trial N")
        return self.trial(number)

    def best_number(self) -> int | None:
        """Trial number of the winner, or None when no completed trial fits the budget: the
        confirmed winner (confirmation.json, nas.search.confirm) when the run confirmed one, else
        the trial of best.json, else `best_row`."""
        confirmed = confirmed_winner(self.path, self.trials)
        if confirmed is not None:
            return confirmed
        best_file = self.path / "best.json"
        if best_file.is_file() and not self.from_study:
            number = _trial_with_arch(self.trials, load_arch(best_file))
            if number is not None:
                return number
        row = best_row(self.trials, self.budget_ms)
        return None if row is None else int(row["number"])

    def completed(self) -> pd.DataFrame:
        """The COMPLETE trials (with an accuracy)."""
        t = self.trials
        return t[(t["state"] == Status.COMPLETE) & t["accuracy"].notna()]

    def pareto(self) -> pd.DataFrame:
        """The accuracy-vs-latency Pareto front, computed from the trials (pareto.csv is derived
        data: only read for an old run folder without a study)."""
        path = self.path / "pareto.csv"
        if path.is_file() and not self.from_study:
            return read_trials_csv(path)
        return pareto_front(self.trials)

    def checkpoint_path(self, number: int) -> Path | None:
        """`checkpoints/trial_<number>.pt` if the search kept one for that trial."""
        path = self.path / "checkpoints" / f"trial_{number}.pt"
        return path if path.is_file() else None

    def checkpoint(self, trial: RunTrial) -> Checkpoint | None:
        """The kept checkpoint of `trial`, checked to be that trial's: its architecture (names
        aside) and, when recorded, its trial number must be the trial's. None when the search
        kept no checkpoint; NasError for a checkpoint of another trial or a damaged file."""
        path = self.checkpoint_path(trial.number)
        if path is None:
            return None
        c = load_checkpoint(path)
        if c.trial is not None and c.trial != trial.number:
            raise NasError(f"{path}: holds the weights of trial {c.trial}, not trial {trial.number}; "
                           "restore the right file, or pass --deploy-arch for initialised weights")
        if replace(c.arch, name="") != replace(trial.arch, name=""):
            raise NasError(f"{path}: holds the weights of another architecture ({c.arch.name!r}), not "
                           f"trial {trial.number}'s; restore the right file, or pass --deploy-arch for "
                           "initialised weights")
        return c


def open_run(path: str | Path) -> Run:
    """Read a run folder. The trials come from the search's study (study.db, or the storage
    config.yaml names), the record; trials.csv is checked against it and every disagreement
    becomes a note. A folder without a study (an older or hand-made run) is read from
    trials.csv, whose states must be real ones. NasError naming the folder when it is missing,
    is not a run folder, or its study is damaged or another search's."""
    p = Path(path)
    if not p.exists():
        raise NasError(f"{p}: no such run folder; runs are written by `nas search --out {p}`")
    has_csv = (p / "trials.csv").is_file()
    if not p.is_dir() or not (has_csv or (p / "study.db").is_file()):
        raise NasError(f"{p}: not a run folder (no trials.csv); expected the --out folder of `nas search`")
    config = read_config(p)
    csv = _read_trials_csv_or_note(p / "trials.csv") if has_csv else (None, "trials.csv is missing")
    study = _run_study(config, p)
    if study is None:
        if csv[0] is None:
            raise NasError(f"{p / 'trials.csv'}: {csv[1]}, and the run folder has no study to rebuild it from")
        _check_states(csv[0], p / "trials.csv")
        return Run(path=p, config=config, trials=csv[0])
    frame = with_rungs(study_trials(study), read_rungs(p))
    notes = [n for n in (_csv_disagreement(csv, frame), _best_json_disagreement(p, frame, config)) if n]
    return Run(path=p, config=config, trials=frame, from_study=True, notes=tuple(notes))


def study_trials(study: Any) -> pd.DataFrame:
    """A study's trials as trials.csv would hold them (same columns and types)."""
    import io

    from nas.search.results import optuna_records, trials_frame

    buffer = io.StringIO()
    trials_frame(optuna_records(study)).to_csv(buffer, index=False)
    buffer.seek(0)
    return typed_trials(buffer, "the study")


def _run_study(config: dict, run_dir: Path) -> Any:
    """The run's study (None without one), refused when its stored settings are not config.yaml's."""
    from nas.search.study import STUDY_ATTR, load_run_study

    study = load_run_study(config, run_dir)
    if study is None:
        return None
    stored = study.user_attrs.get(STUDY_ATTR) or {}
    differ = [k for k in ("target", "budget_ms", "objective", "sampler", "pruner", "seed", "engine")
              if k in stored and k in config and stored[k] != config[k]]
    if differ:
        k = differ[0]
        raise NasError(f"{run_dir}: its study belongs to another search ({k} {stored[k]!r} in the study, "
                       f"{config[k]!r} in config.yaml); restore the run's own study.db or config.yaml")
    return study


def _read_trials_csv_or_note(path: Path) -> tuple[pd.DataFrame | None, str]:
    try:
        return read_trials_csv(path), ""
    except (NasError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        return None, f"trials.csv is unreadable ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})"


def _check_states(frame: pd.DataFrame, path: Path) -> None:
    bad = frame[~frame["state"].isin(list(Status))]
    if not bad.empty:
        r = bad.iloc[0]
        raise NasError(f"{path}: trial {int(r['number'])} has state {r['state']!r}; expected one of "
                       f"{', '.join(Status)}")


_COMPARED = ("state", "arch", "accuracy", "latency_ms")


def _csv_disagreement(csv: tuple[pd.DataFrame | None, str], study: pd.DataFrame) -> str:
    """One note saying where trials.csv disagrees with the study ("" when it agrees)."""
    frame, why = csv
    lead = "trials.csv disagrees with the study (the record, which this reads)"
    if frame is None:
        return f"{why}: the trials were read from the study"
    problems = []
    listed, held = set(frame["number"]), set(study["number"])
    if held - listed:
        problems.append(f"it lacks trials {number_ranges(sorted(held - listed))}")
    if listed - held:
        problems.append(f"it lists trials {number_ranges(sorted(listed - held))} the study does not hold")
    mine = study.drop_duplicates("number", keep="last").set_index("number")
    for _, row in frame.drop_duplicates("number", keep="last").iterrows():
        n = int(row["number"])
        if n not in mine.index:
            continue
        for col in _COMPARED:
            a, b = row[col], mine.at[n, col]
            if not _same_cell(a, b):
                problems.append(f"trial {n} has another architecture" if col == "arch"
                                else f"trial {n} {col} {_cell(a)} (study: {_cell(b)})")
    if not problems:
        return ""
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"{lead}: {'; '.join(problems[:5])}{more}"


def _same_cell(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return abs(float(a) - float(b)) <= 1e-9


def _cell(v: Any) -> str:
    return "(empty)" if (not isinstance(v, str) and pd.isna(v)) or v == "" else repr(v) if isinstance(v, str) else f"{v:g}"


def _best_json_disagreement(run_dir: Path, study: pd.DataFrame, config: dict) -> str:
    path = run_dir / "best.json"
    if not path.is_file():
        return ""
    try:
        arch = load_arch(path)
    except NasError as e:
        return f"best.json is unreadable ({e}); the winner was taken from the study"
    budget = config.get("budget_ms")
    best = best_row(study, None if budget is None else float(budget))
    confirmed = confirmed_winner(run_dir, study)
    if confirmed is not None:
        best = study[study["number"] == confirmed].iloc[-1]
    if best is None:
        return ""
    try:
        same = replace(arch_from_dict(json.loads(best["arch"])), name="") == replace(arch, name="")
    except (NasError, ValueError, TypeError):
        same = False
    return "" if same else (f"best.json is not the study's winner (trial {int(best['number'])}); "
                            "the winner was taken from the study")


def read_confirmation(run_dir: Path) -> dict | None:
    """confirmation.json of a run folder (nas.search.confirm) as a mapping; None when there is none
    or it cannot be read (it is derived data: a rerun of the search writes it again)."""
    path = Path(run_dir) / "confirmation.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("winner"), int) else None


def read_rungs(run_dir: Path) -> dict | None:
    """rungs.json of a run folder (nas.search.rungs: the rung table and each promoted trial's
    highest rung) as a mapping; None when there is none or it is not one (derived data: a rerun
    of the search writes it again)."""
    path = Path(run_dir) / "rungs.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    trials = data.get("trials") if isinstance(data, dict) else None
    ok = isinstance(trials, dict) and isinstance(data.get("rungs"), list) and all(
        str(n).isdigit() and isinstance(r, dict) and isinstance(r.get("rung"), int)
        and all(isinstance(r.get(k), (int, float)) for k in ("accuracy", "score")) for n, r in trials.items())
    return data if ok else None


def confirmed_winner(run_dir: Path, trials: pd.DataFrame) -> int | None:
    """The trial number the run's confirmation named, if it is a completed trial of `trials`."""
    c = read_confirmation(run_dir)
    if c is None:
        return None
    done = trials[(trials["number"] == c["winner"]) & (trials["state"] == Status.COMPLETE)]
    return None if done.empty else int(c["winner"])


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



def _trial_from_row(row: pd.Series, run_dir: Path) -> RunTrial:
    number = int(row["number"])
    if not row["arch"]:
        raise NasError(f"trial {number} in {run_dir} has no architecture (state {row['state']})")
    arch = arch_from_dict(_json(row["arch"], f"trials.csv trial {number} arch"))
    epochs = _json(row["accuracy_epochs"], f"trials.csv trial {number} accuracy_epochs") if row["accuracy_epochs"] else []
    return RunTrial(number=number, state=row["state"], baseline=row["baseline"], arch=arch,
                 block_string=row["block_string"], params=_int_or_none(row["params"]),
                 madds=_int_or_none(row["madds"]), latency_ms=_float_or_none(row["latency_ms"]),
                 accuracy=_float_or_none(row["accuracy"]), accuracy_epochs=tuple(float(a) for a in epochs),
                 seconds=_float_or_none(row["seconds"]))


def _trial_with_arch(frame: pd.DataFrame, arch: Arch) -> int | None:
    """The last COMPLETE trial whose architecture equals `arch` (names ignored)."""
    target = replace(arch, name="")
    for _, row in frame[frame["state"] == Status.COMPLETE].iloc[::-1].iterrows():
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
    return number_ranges(sorted(int(n) for n in frame["number"]))
