"""Everything a search needs to run (and rerun): parsed, checked before any work, saved as YAML."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection

import yaml

from nas.errors import NasError
from nas.fileio import loads_yaml, short
from nas.files import write_text_atomic
from nas.recipe import MAX_SEED, recipe_from_record, recipe_to_dict
from nas.space import Space, load_space, with_resolutions

SAMPLERS = ("tpe", "nsga2", "random")
OBJECTIVES = ("constrained", "mnas", "pareto")
PRUNERS = ("median", "halving", "none")
ENGINES = ("optuna", "ray")
SCHEDULERS = ("asha", "none")  # the Ray engine's early stopping
SCORES = ("proxy", "imagenet-estimate")  # what trials are ranked by; see nas.search.policy
CONFIRM_BY = ("score", "accuracy")  # what confirmation compares its finalists by; see nas.search.confirm
EVALUATORS = ("train", "supernet")  # how a trial gets its accuracy: trained, or a subnet of a trained supernet
AUTO_RESOLUTION = "auto"  # --resolution default: made concrete by nas.search.policy.resolve_resolution
RESOLUTION_ALLOWED = "expected auto, all, or rho values of the space such as 192,224"
AUTO_SCORE = "auto"  # --score default: the estimate where it was fitted for the recipe, else proxy
DEFAULT_STUDY = "nas"  # the study name in a run folder's own study.db
MNAS_W = -0.07  # MnasNet's latency exponent in ACC x (LAT / T)^w
MAX_RUNGS = 5  # --rungs: rung 5 at eta 3 trains 243x rung 0's budget, hours a network on a CPU
MAX_ETA = 10
MAX_RAY_WORKERS = 1024  # trials at once on a Ray cluster (Tune also caps at the free CPUs)
AUTO_WORKERS = "auto"  # `nas search --workers` default: as many workers as keep this machine busy
AUTO_COUNT = "auto"  # `nas search --rungs` / `--confirm-seeds` default: made counts by nas.search.policy


def parse_budget(text: str | float) -> float:
    """A latency budget in milliseconds from `60ms`, `60` or `0.06s`."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", str(text))
    if m is None or float(m.group(1)) <= 0:
        raise NasError(f"budget {text!r} is not allowed; expected a positive latency like 60ms, 60 or 0.06s")
    value = float(m.group(1))
    return value * 1000 if m.group(2) == "s" else value


def parse_duration(text: str | None) -> float | None:
    """Seconds from `45m`, `1h`, `90s` or `300` (seconds); None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|h)?\s*", str(text))
    if m is None or float(m.group(1)) <= 0:
        raise NasError(f"time limit {text!r} is not allowed; expected a duration like 45m, 1h or 600s")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


@dataclass(frozen=True)
class TrialSettings:
    """What one trial reads of its search (`SearchConfig.trial_settings`): the latency table
    `target` and the `budget_ms` (milliseconds) it is scored against, the `recipe` record it trains
    with, what it is ranked by (`score`) and what the sampler maximises (`objective`), and the run
    folder `out` its checkpoint goes to."""

    target: str
    budget_ms: float
    recipe: dict
    score: str
    objective: str
    out: str
    evaluator: str = "train"  # "supernet": the accuracy of the subnet of the supernet in folder `supernet`
    supernet: str | None = None


@dataclass(frozen=True)
class RunSettings:
    """What the run folder's files say of their search (`SearchConfig.run_settings`): the folder
    (`out`), the `target` and `budget_ms` (milliseconds) the winner is chosen under, the
    objective, sampler and engine summary.md names, and the baselines the winner is compared with."""

    out: str
    target: str
    budget_ms: float
    objective: str
    sampler: str
    engine: str
    baselines: tuple[str, ...]
    finalists: int = 0  # the best trials whose checkpoints are kept for confirmation (nas.search.confirm)
    resolution_aware: bool = False  # the recipe's proxy side scales with rho (summary.md's low-rho caution)
    resolutions: tuple[int, ...] | None = None  # the rho choices searched (`--resolution`); None: the space's


@dataclass(frozen=True)
class StudySettings:
    """What opening a search's Optuna study reads (`SearchConfig.study_settings`): its storage
    URL (`given`: a `--storage`, not the run folder's own study.db) and study name, the objective
    (its directions), the sampler with its seed and the search's trial count (NSGA-II's population),
    the pruner with the recipe record it prunes on, and the baselines a new study queues first."""

    storage_url: str
    given: bool
    study_name: str
    objective: str
    sampler: str
    seed: int
    trials: int
    pruner: str
    recipe: dict
    baselines: tuple[str, ...]


@dataclass(frozen=True)
class SearchConfig:
    """One search. Latencies in milliseconds, times in seconds."""

    target: str
    budget_ms: float
    out: str
    space: str
    recipe: dict
    trials: int = 60
    time_limit_s: float | None = None
    seed: int = 0
    sampler: str = "tpe"
    objective: str = "constrained"
    pruner: str = "median"
    workers: int | str = 1  # `nas search` passes AUTO_WORKERS, made a count by `resolve_workers` in prepare
    storage: str | None = None
    engine: str = "optuna"
    baselines: tuple[str, ...] = ("mobilenet_v3_large", "mobilenet_v3_small")
    ray_address: str | None = None
    scheduler: str = "asha"
    study: str | None = None
    score: str = AUTO_SCORE  # made concrete by nas.search.policy.resolve_score before it is stored
    trials_per_gpu: int = 1
    confirm: int = 3  # finalists retrained before the winner is named (0: none); nas.search.confirm
    confirm_seeds: int | str = 2  # more seeds each finalist is trained at (AUTO_COUNT: nas.search.policy)
    confirm_by: str = "score"  # the finalists compared by the run's score, or by their proxy accuracy alone
    evaluator: str = "train"  # train every candidate, or score it as a subnet of `supernet` (nas.supernet)
    supernet: str | None = None  # the folder `nas supernet train` wrote (--evaluator supernet)
    rungs: int | str = 0  # rungs of successive halving after the trials (0: none; AUTO_COUNT: nas.search.policy); nas.search.rungs
    eta: int = 3  # each rung keeps 1/eta of the trials and trains them with eta x the budget
    # The rho choices searched: a tuple of the space's, None for all of them, AUTO_RESOLUTION until
    # nas.search.policy.resolve_resolution makes it one of those (before it is stored).
    resolution: tuple[int, ...] | str | None = AUTO_RESOLUTION
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    @property
    def study_name(self) -> str:
        """The Optuna study of this search in its storage (`nas` in the run folder's own study.db)."""
        return self.study or DEFAULT_STUDY

    @property
    def trial_settings(self) -> TrialSettings:
        """The fields a trial reads (the engines hand trials this, not the whole config)."""
        return TrialSettings(target=self.target, budget_ms=self.budget_ms, recipe=self.recipe, score=self.score,
                             objective=self.objective, out=self.out, evaluator=self.evaluator, supernet=self.supernet)

    @property
    def study_settings(self) -> StudySettings:
        """The fields the engines open the study with (`nas.search.optuna_engine.open_study`)."""
        return StudySettings(storage_url=self.storage_url, given=self.storage is not None, study_name=self.study_name,
                             objective=self.objective, sampler=self.sampler, seed=self.seed, trials=self.trials,
                             pruner=self.pruner, recipe=self.recipe, baselines=tuple(self.baselines))

    @property
    def run_settings(self) -> RunSettings:
        """The fields the run folder's files are written with (`nas.search.results`)."""
        return RunSettings(out=self.out, target=self.target, budget_ms=self.budget_ms, objective=self.objective,
                           sampler=self.sampler, engine=self.engine, baselines=tuple(self.baselines),
                           finalists=self.confirm, resolution_aware=bool(self.recipe.get("resolution_aware")),
                           resolutions=self.resolution if isinstance(self.resolution, tuple) else None)

    def search_space(self) -> Space:
        """The space the trials are sampled from: the `space` file's, with the rho choices of
        `resolution` when it names some."""
        space = load_space(self.space)
        return with_resolutions(space, self.resolution) if isinstance(self.resolution, tuple) else space

    @property
    def dataset(self) -> str:
        return self.recipe.get("dataset", "cifar10")

    def check(self) -> None:
        """Raise NasError for a choice outside its allowed values."""
        for name, allowed in (("sampler", SAMPLERS), ("objective", OBJECTIVES), ("pruner", PRUNERS),
                              ("engine", ENGINES), ("scheduler", SCHEDULERS), ("score", (AUTO_SCORE, *SCORES)),
                              ("evaluator", EVALUATORS), ("confirm_by", CONFIRM_BY)):
            if getattr(self, name) not in allowed:
                raise NasError(f"--{name.replace('_', '-')} {getattr(self, name)!r} is not allowed; expected one of {', '.join(allowed)}")
        if self.evaluator == "supernet" and not self.supernet:
            raise NasError("--evaluator supernet needs --supernet DIR, the folder `nas supernet train` wrote")
        if self.supernet and self.evaluator != "supernet":
            raise NasError(f"--supernet {self.supernet} is only read with --evaluator supernet (this search trains "
                           f"every candidate: --evaluator {self.evaluator})")
        if not (self.resolution in (None, AUTO_RESOLUTION) or (
                isinstance(self.resolution, tuple) and self.resolution
                and all(isinstance(r, int) and not isinstance(r, bool) for r in self.resolution))):
            raise NasError(f"--resolution {short(self.resolution)} is not allowed; {RESOLUTION_ALLOWED}")
        if self.trials < 1:
            raise NasError(f"--trials {self.trials} is not allowed; expected an integer >= 1")
        if self.workers < 1:
            raise NasError(f"--workers {self.workers} is not allowed; expected an integer >= 1")
        if self.confirm < 0:
            raise NasError(f"--confirm {self.confirm} is not allowed; expected an integer >= 0 (0: name the "
                           f"single-seed winner)")
        if isinstance(self.confirm_seeds, bool) or not isinstance(self.confirm_seeds, int) or self.confirm_seeds < 1:
            raise NasError(f"--confirm-seeds {short(self.confirm_seeds)} is not allowed; expected an integer >= 1")
        if isinstance(self.rungs, bool) or not isinstance(self.rungs, int) or not 0 <= self.rungs <= MAX_RUNGS:
            raise NasError(f"--rungs {short(self.rungs)} is not allowed; expected an integer from 0 to {MAX_RUNGS} "
                           f"(0: no rungs, the trials' own training decides)")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or not 2 <= self.eta <= MAX_ETA:
            raise NasError(f"--eta {short(self.eta)} is not allowed; expected an integer from 2 to {MAX_ETA} "
                           f"(each rung keeps 1/eta of the trials and trains them with eta x the budget)")
        if not 0 <= self.seed <= MAX_SEED:
            raise NasError(f"--seed {short(self.seed)} is not allowed; expected an integer from 0 to {MAX_SEED}")
        if self.trials_per_gpu < 1:
            raise NasError(f"--trials-per-gpu {self.trials_per_gpu} is not allowed; expected an integer >= 1")


def max_workers(config: SearchConfig) -> int:
    """The most worker processes a search may start: for the Optuna engine the CPU cores this
    process may use divided by the recipe's threads per trial (each worker trains on its own
    threads), at least 1; for the Ray engine, where Tune also never runs more trials than the
    cluster has free CPUs, the generous cap MAX_RAY_WORKERS."""
    if config.engine == "ray":
        return MAX_RAY_WORKERS
    threads = max(1, int(config.recipe.get("threads", 1) or 1))
    return max(1, available_cores() // threads)


def auto_workers(recipe: dict, trials_per_gpu: int = 1) -> int:
    """`--workers auto`: the CPU cores this process may use divided by the recipe's `threads` per
    trial, at least 1 (2 cores and the default recipe's 1 thread: 2 workers). Where the recipe's
    trials train on an accelerator (device `auto` or `cuda` with GPUs here, `cuda:N`, `mps`), at
    most `trials_per_gpu` workers per GPU."""
    threads = max(1, int(recipe.get("threads", 1) or 1))
    workers = max(1, available_cores() // threads)
    spec = str(recipe.get("device", "auto"))
    if spec == "cpu":
        return workers
    from nas.device import available  # imports torch

    here = available()
    gpus = sum(d.startswith("cuda") for d in here)
    if spec in ("auto", "cuda") and gpus:
        return min(workers, gpus * max(1, trials_per_gpu))
    if spec.startswith("cuda") or (spec in ("auto", "mps") and "mps" in here):
        return min(workers, max(1, trials_per_gpu))
    return workers


def parse_resolution(text: str) -> tuple[int, ...] | str | None:
    """`--resolution`: AUTO_RESOLUTION, `all` (None: every rho of the space), or rho values such as
    `192,224` (a sorted tuple; whether the space has them is checked with the space)."""
    text = str(text).strip()
    if text in (AUTO_RESOLUTION, "all"):
        return None if text == "all" else AUTO_RESOLUTION
    try:
        values = tuple(sorted({int(v) for v in text.split(",")}))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise NasError(f"--resolution {text[:40]!r} is not allowed; {RESOLUTION_ALLOWED}")
    return values


def parse_workers(text: str | int) -> int | str:
    """`--workers`: an integer >= 1, or AUTO_WORKERS (made a count by `resolve_workers`)."""
    if str(text).strip() == AUTO_WORKERS:
        return AUTO_WORKERS
    try:
        workers = int(str(text).strip())
    except ValueError:
        workers = 0
    if workers < 1:
        raise NasError(f"--workers {str(text)[:40]!r} is not allowed; expected {AUTO_WORKERS} or an integer >= 1")
    return workers


def parse_auto_count(text: str | int, flag: str) -> int | str:
    """`--rungs` / `--confirm-seeds`: AUTO_COUNT, or an integer (its range is `SearchConfig.check`'s)."""
    if str(text).strip() == AUTO_COUNT:
        return AUTO_COUNT
    try:
        return int(str(text).strip())
    except ValueError:
        raise NasError(f"{flag} {str(text)[:40]!r} is not allowed; expected {AUTO_COUNT} or an integer") from None


def resolve_workers(config: SearchConfig) -> SearchConfig:
    """`config` with `workers` AUTO_WORKERS made a count for its recipe (`auto_workers`)."""
    if config.workers != AUTO_WORKERS:
        return config
    return replace(config, workers=auto_workers(config.recipe, config.trials_per_gpu))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_workers(config: SearchConfig) -> None:
    """NasError for a worker count past `max_workers`, naming the value and the limit."""
    limit = max_workers(config)
    if config.workers > limit:
        if config.engine == "ray":
            why = f"the Ray engine allows at most {limit} trials at once"
        else:
            threads = max(1, int(config.recipe.get("threads", 1) or 1))
            why = (f"this machine has {available_cores()} CPU cores and each trial trains on {threads} "
                   f"thread{'s' if threads > 1 else ''}, so at most {limit} workers")
        raise NasError(f"--workers {config.workers} is not allowed: {why}; expected 1..{limit}")


# Recipe knobs that say where a worker's data is and what it trains on, not what a trial is:
# machines that differ only in them can share one study.
PLACE_KNOBS = ("data_dir", "device")
# Settings that make a search what it is: a rerun into the same folder, or a second search on the
# same study, must agree on all of them. `trials`, `time_limit_s`, `workers`, `ray_address`,
# the confirmation (`confirm`, `confirm_seeds`, `confirm_by`) and the rungs (`rungs`, `eta`: they only add
# trainings after the trials, keyed by their budget) may change between runs; `out` and
# `created` say where and when, not what.
SEARCH_SETTINGS = ("target", "budget_ms", "space", "recipe", "seed", "sampler", "objective", "pruner",
                   "engine", "baselines", "scheduler", "score", "storage", "study", "evaluator", "supernet",
                   "resolution")
# The flag that sets each setting, for messages.
SETTING_FLAGS = {"target": "--target", "budget_ms": "--budget", "space": "--space", "seed": "--seed",
                 "sampler": "--sampler", "objective": "--objective", "pruner": "--pruner",
                 "engine": "--engine", "scheduler": "--scheduler", "storage": "--storage",
                 "study": "--study", "baselines": "baselines", "score": "--score", "evaluator": "--evaluator",
                 "supernet": "--supernet", "resolution": "--resolution"}
# Settings added since searches were first stored, at the value an older search ran with.
ADDED_SETTINGS = {"score": "proxy", "evaluator": "train", "supernet": None, "resolution": None}


def search_identity(c: SearchConfig, rerun: bool = False) -> dict[str, Any]:
    """The settings that define the search, as JSON-safe data (stored with the study). The space
    is its file's SHA-256, so the same space file at another path is the same search;
    the recipe's PLACE_KNOBS (where the data is and which device trains, not what is trained)
    are left out, so workers on machines with other data paths or devices can share a study. With `rerun` (comparing a command with the run
    folder it reruns into), also the data folder, the storage and the study name."""
    keys = SEARCH_SETTINGS if rerun else tuple(k for k in SEARCH_SETTINGS if k not in ("storage", "study"))
    out: dict[str, Any] = {}
    for k in keys:
        v = getattr(c, k)
        if k == "space":
            v = space_digest(v)
        elif k == "recipe":
            v = {rk: rv for rk, rv in sorted(v.items()) if rerun or rk not in PLACE_KNOBS}
        elif k in ("baselines", "resolution") and isinstance(v, tuple):
            v = list(v)
        elif k == "budget_ms":
            v = float(v)
        out[k] = v
    return out


def with_recipe_defaults(identity: dict[str, Any]) -> dict[str, Any]:
    """A stored `search_identity` with settings and recipe knobs added since it was stored at the
    values that search ran with (ADDED_SETTINGS, nas.recipe.ADDED_KNOBS), so a newer nas still
    recognises an older search."""
    identity = ADDED_SETTINGS | identity
    if not isinstance(identity.get("recipe"), dict):
        return identity
    recipe = {k: v for k, v in recipe_to_dict(recipe_from_record(identity["recipe"])).items()
              if k not in PLACE_KNOBS}
    return identity | {"recipe": dict(sorted(recipe.items()))}


def only_given(identity: dict[str, Any], given: Collection[str] | None) -> dict[str, Any]:
    """`identity` reduced to the settings in `given` (all when None). `given` names settings
    (`sampler`) or single recipe knobs (`recipe.epochs`); `recipe` keeps the whole recipe."""
    if given is None:
        return identity
    out = {k: v for k, v in identity.items() if k in given}
    knobs = {g.split(".", 1)[1] for g in given if g.startswith("recipe.")}
    if "recipe" not in given and knobs and "recipe" in identity:
        out["recipe"] = {k: v for k, v in identity["recipe"].items() if k in knobs}
    return out


def space_digest(path: str) -> str:
    """`sha256:<hex>` of a space file's bytes, or `path:<path>` when it cannot be read."""
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"path:{path}"


def differing_settings(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each setting whose value differs between two `search_identity` dicts, as
    "--flag SAVED (this command: NEW)"; recipe knobs one by one as "recipe.knob SAVED (this command: NEW)"."""
    diffs = []
    for k in saved.keys() | new.keys():
        old, now = saved.get(k), new.get(k)
        if old == now:
            continue
        if k == "recipe" and isinstance(old, dict) and isinstance(now, dict):
            for rk in sorted(old.keys() | now.keys()):
                if old.get(rk) != now.get(rk):
                    diffs.append(f"recipe.{rk} {_show(old.get(rk))} (this command: {_show(now.get(rk))})")
        elif k == "space":
            diffs.append("--space (this command names a space file with other contents)")
        elif k == "budget_ms":
            diffs.append(f"--budget {_show(old)}ms (this command: {_show(now)}ms)")
        elif k == "resolution":
            diffs.append(f"--resolution {_show(old or 'all')} (this command: {_show(now or 'all')})")
        else:
            diffs.append(f"{SETTING_FLAGS.get(k, k)} {_show(old)} (this command: {_show(now)})")
    order = {k: i for i, k in enumerate(SEARCH_SETTINGS)}
    return sorted(diffs, key=lambda d: order.get(_setting_of(d), len(order)))


def _setting_of(diff: str) -> str:
    word = diff.split()[0].rstrip(":")
    if word.startswith("recipe."):
        return "recipe"
    return next((k for k, f in SETTING_FLAGS.items() if f == word), word)


def _show(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def config_to_dict(c: SearchConfig) -> dict[str, Any]:
    d = asdict(c)
    d["baselines"] = list(c.baselines)
    if isinstance(c.resolution, tuple):
        d["resolution"] = list(c.resolution)
    d["dataset"] = c.dataset
    return d


def save_config(c: SearchConfig) -> Path:
    """Write `<out>/config.yaml` whole or not at all (NasError for an I/O error)."""
    return write_text_atomic(Path(c.out) / "config.yaml", yaml.safe_dump(config_to_dict(c), sort_keys=False))


# What each config.yaml field must be: its types, and whether a file may leave it out (fields
# added after the first release default when missing).
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "target": ((str,), True), "budget_ms": ((int, float), True), "out": ((str,), True),
    "space": ((str,), True), "recipe": ((dict,), True), "trials": ((int,), True),
    "time_limit_s": ((int, float, type(None)), False), "seed": ((int,), False),
    "sampler": ((str,), False), "objective": ((str,), False), "pruner": ((str,), False),
    "workers": ((int,), False), "storage": ((str, type(None)), False), "engine": ((str,), False),
    "baselines": ((list,), False), "ray_address": ((str, type(None)), False),
    "scheduler": ((str,), False), "study": ((str, type(None)), False), "created": ((str, datetime), False),
    "score": ((str,), False), "trials_per_gpu": ((int,), False), "confirm": ((int,), False),
    "confirm_seeds": ((int,), False), "confirm_by": ((str,), False), "rungs": ((int,), False), "eta": ((int,), False),
    "evaluator": ((str,), False), "supernet": ((str, type(None)), False),
    "resolution": ((list, str, type(None)), False),
}


def load_config(run_dir: str | Path) -> SearchConfig:
    """The config of an existing run folder (for a rerun or --resume). NasError naming the file
    and the fault for a config.yaml that is missing, unreadable, empty, truncated or not the
    mapping `save_config` writes; the file is only read."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise NasError(f"{run_dir}: not a run folder (no config.yaml); start a search with --out {run_dir}")
    fix = "restore it from a backup, or start a fresh search with a new --out"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise NasError(f"{path}: cannot read: {e.strerror}; {fix}") from None
    except UnicodeDecodeError:
        raise NasError(f"{path}: damaged (not UTF-8 text); {fix}") from None
    try:
        d = loads_yaml(text, str(path))  # strict: no duplicate keys, no alias bombs
    except NasError as e:
        raise NasError(f"{e}; {fix}") from None
    if not isinstance(d, dict):
        what = "empty" if d is None else f"a YAML {type(d).__name__}, not the mapping of search settings"
        raise NasError(f"{path}: damaged ({what}); {fix}")
    d.pop("dataset", None)
    for key, (types, required) in _FIELD_TYPES.items():
        if key not in d:
            if required:
                raise NasError(f"{path}: damaged (setting {key!r} is missing, the file may be truncated); {fix}")
            continue
        value = d[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise NasError(f"{path}: damaged ({key}: {value!r} is not {allowed}); {fix}")
    unknown = sorted(set(d) - set(_FIELD_TYPES))
    if unknown:
        raise NasError(f"{path}: unknown setting {unknown[0]!r}; expected only {', '.join(_FIELD_TYPES)}")
    try:  # knobs added since the run started take the values it ran with (nas.recipe.ADDED_KNOBS)
        d["recipe"] = recipe_to_dict(recipe_from_record(d["recipe"]))
    except (NasError, TypeError) as e:
        raise NasError(f"{path}: damaged (recipe: {e}); {fix}") from None
    d["baselines"] = tuple(d.get("baselines", ("mobilenet_v3_large", "mobilenet_v3_small")))
    if isinstance(d.get("resolution"), list):
        d["resolution"] = tuple(d["resolution"])
    d.setdefault("resolution", None)  # saved before --resolution: every rho
    if "created" in d:
        d["created"] = str(d["created"])
    config = SearchConfig(**d)
    try:
        config.check()
    except NasError as e:
        raise NasError(f"{path}: damaged ({e}); {fix}") from None
    return config
