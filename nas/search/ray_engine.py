"""The Ray Tune engine: the Optuna engine's search, scheduled by Ray Tune on one machine or a cluster.

What is shared with the Optuna engine, so both fill the same run folder the same way:
- the trial function (`run_trial`, `keep_checkpoint`), run inside a Tune function trainable;
- the sampler: Tune's `OptunaSearch` drives `make_sampler(config)` through a define-by-run
  function that calls `sample_arch(space, trial.suggest_categorical)`;
- the study: it lives in the run folder's `study.db`, where this engine records every trial with
  the same user attributes, states and constraints as the Optuna engine, so `optuna_records` and
  `write_results` turn it into the same run folder;
- the baselines: enqueued as the study's first trials (user_attrs {"baseline": name}); for those
  the define-by-run function samples nothing and returns {"baseline": name}, and the trainable
  trains `fit_baseline(name)`. They go first because Optuna hands out enqueued trials first.

What is Tune's: scheduling trials on the cluster's CPUs, ASHA stopping poor trials from their
per-epoch accuracy (`--scheduler asha`; baselines always train to the end), and the experiment
state in `<out>/ray/tune-<n>/` that `--resume` restores with `Tuner.restore`.

A trainable reports three kinds of result ("phase"): "scored" (architecture and latency, before
training), one "epoch" per epoch (validation accuracy, ASHA's input), and "final" (the
`TrialOutcome` attributes). The searcher, in the driver, writes them into the study.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import optuna
import ray
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nas.errors import NasError
from nas.search.config import SearchConfig
from nas.search.optuna_engine import enqueue_baselines, make_sampler
from nas.search.progress import SearchProgress, status_counts
from nas.search.results import TrialRecord, optuna_records, write_results
from nas.search.policy import (directions, first_prunable_report, is_constrained, is_pareto, prunes,
                               search_done, trained_count, trial_score)
from nas.search.study import fail_and_requeue
from nas.search.trial import (TrialOutcome, constraint, fit_baseline, keep_checkpoint, objective_values,
                              recipe_of, run_trial)
from nas.space import Space, load_space, sample_arch

EXPERIMENT_PREFIX = "tune-"  # Tune experiments live in <out>/ray/tune-1, tune-2, ...


# ---------------------------------------------------------------------------------------------
# Entry point


def run_ray(config: SearchConfig, progress: bool = True) -> list[TrialRecord]:
    """Run (or continue) the search of a prepared config on Ray Tune and return its trials.

    Joins the cluster at `config.ray_address` (auto or HOST:PORT), or starts a local Ray sized to
    this machine when there is none (a process already connected to Ray keeps its connection).
    Restores the latest Tune experiment of the run folder if it has unfinished trials, then starts
    a new one if the search still needs trials. Stops starting trials once `config.trials` trials
    were trained (rejected ones do not count) or `config.time_limit_s` seconds have passed."""
    config = _absolute_paths(config)
    started_ray = _connect(config.ray_address)
    try:
        with _quiet():
            study = _open_study(config)
            live = _Live(config, _deadline(config), SearchProgress(config, enabled=progress))
            _LIVE[config.out] = live
            try:
                interrupted = _run_experiments(config, study)
            finally:
                del _LIVE[config.out]
                live.bar.close(study)
    finally:
        if started_ray:
            ray.shutdown()
    if interrupted:
        print(f"interrupted: every finished trial is in {config.out}; continue with "
              f"`nas search --engine ray --out {config.out} --resume ...`", file=sys.stderr)
        raise KeyboardInterrupt
    return optuna_records(study)


def _run_experiments(config: SearchConfig, study: optuna.Study) -> bool:
    """Finish the latest Tune experiment if it was cut short, then run a new one if the search
    is not done. Returns True when Tune stopped on an interrupt (Ctrl-C) with trials unfinished."""
    latest = _latest_experiment(config)
    if latest is not None and _unfinished_trials(latest):
        tune.Tuner.restore(str(latest), trainable=_trainable_for(config), resume_unfinished=True).fit()
        if _unfinished_trials(latest):
            return True
    if _LIVE[config.out].done(status_counts(study)):
        return False
    if config.storage is None:  # a shared --storage may hold other drivers' running trials
        _LIVE[config.out].bar.recovered += _requeue_orphans(study, owned=set())
    path = _experiments_root(config) / f"{EXPERIMENT_PREFIX}{_last_experiment_number(config) + 1}"
    _new_tuner(config, path).fit()
    return bool(_unfinished_trials(path))


def _new_tuner(config: SearchConfig, path: Path):
    """A Tuner for a fresh experiment at `path`: the searcher over the run's study, ASHA (or FIFO),
    as many samples as the searcher hands out, quiet output, actors reused between trials."""
    return tune.Tuner(
        _trainable_for(config),
        tune_config=tune.TuneConfig(search_alg=NasSearch(config), scheduler=_scheduler(config), num_samples=-1,
                                    reuse_actors=True, trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(name=path.name, storage_path=str(path.parent), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)))


def _trainable_for(config: SearchConfig):
    """The trainable with the run's config attached and each trial's resource request."""
    return tune.with_resources(tune.with_parameters(trainable, config=config), _trial_resources(config))


def _trial_resources(config: SearchConfig) -> dict[str, float]:
    """CPUs per trial = the recipe's torch threads. When the cluster has GPUs and the recipe may
    use one (device auto or cuda), each trial also asks for 1/`trials_per_gpu` of a GPU, and
    trains on the one Ray gives it (`_trial_device`)."""
    recipe = recipe_of(config)
    resources = {"cpu": float(recipe.threads)}
    if ray.cluster_resources().get("GPU", 0) > 0 and recipe.device in ("auto", "cuda"):
        resources["gpu"] = gpu_share(config.trials_per_gpu)
    return resources


def gpu_share(trials_per_gpu: int) -> float:
    """The GPU fraction one trial requests, rounded down to Ray's resource precision (1e-4)."""
    return math.floor(1e4 / max(1, trials_per_gpu)) / 1e4


def _trial_device(config: SearchConfig) -> str | None:
    """Where a Ray trial trains: the GPU Ray assigned it (the only one it can see: cuda:0), or
    the recipe's device when it was given none."""
    if ray.get_gpu_ids() and recipe_of(config).device in ("auto", "cuda"):
        return "cuda:0"
    return None


def _trial_name(trial) -> str:
    return f"trial_{trial.config['number']}"


# ---------------------------------------------------------------------------------------------
# The trial, on a Ray worker


def trainable(params: dict, config: SearchConfig) -> None:
    """One Tune trial: rebuild the architecture from the flat sampled `params` (or fit the
    baseline they name), run the shared trial function, report per epoch, save the checkpoint of
    a completed trial, and report the outcome. Over-budget architectures report at once."""
    number = params["number"]
    space = load_space(config.space)
    if params.get("baseline"):
        arch = fit_baseline(params["baseline"], config, space.width_mult, space.resolution)
    else:
        arch = sample_arch(space, lambda name, _choices: params[name], name=f"trial_{number}")
    scored: list[TrialOutcome] = []

    def on_scored(outcome: TrialOutcome) -> None:
        scored.append(outcome)
        tune.report(_result("scored", outcome, config))

    def report(epoch: int, accuracy: float) -> None:
        partial = replace(scored[0], status="COMPLETE", accuracy=accuracy)
        tune.report(_result("epoch", partial, config, epoch=epoch + 1))

    outcome = run_trial(arch, config, report, on_scored=on_scored, device=_trial_device(config))
    if outcome.status == "COMPLETE":
        outcome = keep_checkpoint(outcome, config, number)
    tune.report(_result("final", outcome, config, epoch=len(outcome.epochs)))


def _result(phase: str, outcome: TrialOutcome, config: SearchConfig, epoch: int = 0) -> dict:
    """A Tune result. Every phase carries the metrics the scheduler and searcher read (accuracy
    0..1, latency in milliseconds, the objective if the trial ended now); "scored" and "final"
    also carry `TrialOutcome.attrs()` as JSON and the id of the Ray node the trial ran on.
    `epoch` counts finished epochs (ASHA's clock)."""
    values = objective_values(outcome, config)
    score = trial_score(outcome.arch, outcome.accuracy, config) if outcome.accuracy is not None else 0.0
    return {"phase": phase, "epoch": epoch, "accuracy": float(outcome.accuracy or 0.0), "score": float(score),
            "latency_ms": float(outcome.latency_ms),
            "objective": float(values[0] if isinstance(values, tuple) else values),
            "attrs": json.dumps(outcome.attrs()) if phase != "epoch" else "",
            "node": ray.get_runtime_context().get_node_id() if phase != "epoch" else ""}


# ---------------------------------------------------------------------------------------------
# The searcher, in the driver


class DefineByRun:
    """OptunaSearch's define-by-run space: the same `sample_arch` calls as the Optuna engine,
    or none for an enqueued baseline. Returns the constants Tune adds to the trial's config."""

    def __init__(self, space: Space):
        self.space = space

    def __call__(self, trial: optuna.Trial) -> dict:
        baseline = trial.user_attrs.get("baseline")
        if baseline:
            return {"number": trial.number, "baseline": baseline}
        sample_arch(self.space, trial.suggest_categorical)
        return {"number": trial.number}


class NasSearch(OptunaSearch):
    """OptunaSearch over the run's study that records trials as the Optuna engine does and
    decides when the search is done (trained-trial count, rejection cap, time limit) and how
    many trials run at once, from the limits of the current `run_ray` call."""

    def __init__(self, config: SearchConfig):
        pareto = is_pareto(config)
        super().__init__(space=DefineByRun(load_space(config.space)),
                         metric=["score", "latency_ms"] if pareto else "objective",
                         mode=["max", "min"] if pareto else "max", sampler=make_sampler(config),
                         study_name=config.study_name, storage=_storage(config))
        self._out = config.out
        self._budget_ms = config.budget_ms
        self._pareto = pareto
        self._constrained = is_constrained(config)
        self._own_storage = config.storage is None
        self._counts = status_counts(self._ot_study)

    def suggest(self, trial_id: str):
        live = _LIVE.get(self._out)
        if live is None or live.done(self._counts):
            return Searcher.FINISHED
        running = len(self._ot_trials) - len(self._completed_trials)
        trained = trained_count(self._counts)
        if running >= live.config.workers or trained + running >= live.config.trials:
            return None  # ask again when a running trial finishes (it may have been rejected)
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self._ot_trials.get(trial_id)
        if trial is not None and trial_id not in self._completed_trials:
            try:
                self._record(trial, result)
            except UpdateFinishedTrialError:
                self._completed_trials.add(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self._ot_trials.get(trial_id)
        if trial is None or trial_id in self._completed_trials:
            return
        self._completed_trials.add(trial_id)
        result = result or {}
        try:
            status = self._finish(trial, result, error)
        except UpdateFinishedTrialError:
            return  # a trial Tune re-ran after a kill, already recorded by its first run
        self._counts[status] = self._counts.get(status, 0) + 1
        live = _LIVE.get(self._out)
        if live is not None:
            live.trial_finished(self._ot_study, self._counts)

    def restore(self, checkpoint_path: str) -> None:
        """Tune restores the searcher of an interrupted experiment: trials it will resume keep
        their study trial; study trials left running by the killed driver and unknown to the
        experiment state are failed and queued again with the same parameters."""
        super().restore(checkpoint_path)
        finished = {t.number for t in self._ot_study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))}
        for trial_id, trial in self._ot_trials.items():
            if trial.number in finished:  # recorded after Tune's last snapshot; Tune reruns it, we ignore it
                self._completed_trials.add(trial_id)
        owned = {t.number for tid, t in self._ot_trials.items() if tid not in self._completed_trials}
        live = _LIVE.get(self._out)
        if self._own_storage and live is not None:
            live.bar.recovered += _requeue_orphans(self._ot_study, owned)
        self._counts = status_counts(self._ot_study)

    def _record(self, trial: optuna.Trial, result: dict) -> None:
        """Store a scored/final result's attributes, or an epoch's accuracy, on the study trial."""
        phase = result.get("phase")
        if phase in ("scored", "final"):
            for key, value in json.loads(result["attrs"]).items():
                if key != "status" or phase == "scored":
                    trial.set_user_attr(key, value)
            trial.set_user_attr("ray_node", result["node"])
            if self._constrained and "constraint" not in trial.user_attrs:
                value = constraint(result["latency_ms"], self._budget_ms)
                trial.set_user_attr("constraint", value)
                trial.set_constraint("latency", value)
        elif phase == "epoch":
            epochs = trial.user_attrs.get("accuracy_epochs", [])
            if len(epochs) < result["epoch"]:
                trial.set_user_attr("accuracy_epochs", epochs + [result["accuracy"]])
                if not self._pareto:
                    trial.report(result["score"], result["epoch"] - 1)

    def _finish(self, trial: optuna.Trial, result: dict, error: bool) -> str:
        """Record the last result and tell the study how the trial ended; returns its status:
        the outcome's (COMPLETE, REJECTED, FAIL), PRUNED when ASHA stopped it, or FAIL when
        the trial crashed."""
        if result:
            self._record(trial, result)
        if result.get("phase") == "final":
            status = json.loads(result["attrs"])["status"]
        elif error:
            status = "FAIL"
            trial.set_user_attr("error", "the Ray trial crashed; see its error.txt under ray/")
        else:
            status = "PRUNED"
        trial.set_user_attr("status", status)
        if status == "PRUNED":
            self._ot_study.tell(trial, state=TrialState.PRUNED)
        elif status == "FAIL":
            self._ot_study.tell(trial, state=TrialState.FAIL)
        else:
            values = [result["score"], result["latency_ms"]] if self._pareto else result["objective"]
            self._ot_study.tell(trial, values)
        return status


class SparingASHA(ASHAScheduler):
    """ASHA that records the baselines in its rungs but never stops them: they are the reference
    every search is compared with, trained to the end as in the Optuna engine."""

    def on_trial_result(self, tune_controller, trial, result):
        action = super().on_trial_result(tune_controller, trial, result)
        return TrialScheduler.CONTINUE if trial.config.get("baseline") else action


def _scheduler(config: SearchConfig):
    """ASHA on per-epoch validation accuracy (first rung after the epoch of
    `policy.first_prunable_report`, then x3; a trial below the top third of a rung stops), or
    FIFO for `--scheduler none` and for pareto runs (two objectives give no single ranking to
    halve; the Optuna engine does not prune those either)."""
    if not prunes(config):
        return FIFOScheduler()
    recipe = recipe_of(config)
    return SparingASHA(time_attr="epoch", metric="score", mode="max", max_t=max(1, recipe.epochs),
                       grace_period=first_prunable_report(recipe) + 1, reduction_factor=3,
                       stop_last_trials=False)


# ---------------------------------------------------------------------------------------------
# The current run: limits and progress that belong to this call, not to Tune's saved state


@dataclass
class _Live:
    """What the searcher reads from the running `run_ray` call. Tune pickles the searcher into
    the experiment state, so a restored searcher would otherwise carry the limits of the first
    run, not the `--trials`, `--time-limit` and `--workers` of the resumed one."""

    config: SearchConfig
    deadline: float | None  # time.monotonic() after which no trial starts
    bar: SearchProgress

    def done(self, counts: dict[str, int]) -> bool:
        return (search_done(counts, self.config.trials)
                or (self.deadline is not None and time.monotonic() >= self.deadline))

    def trial_finished(self, study: optuna.Study, counts: dict[str, int]) -> None:
        write_results(optuna_records(study), self.config)
        self.bar.update(study, counts)


_LIVE: dict[str, _Live] = {}  # run folder -> its running call (the searcher runs in this process)


def _deadline(config: SearchConfig) -> float | None:
    return None if config.time_limit_s is None else time.monotonic() + config.time_limit_s


# ---------------------------------------------------------------------------------------------
# The study


def _storage(config: SearchConfig) -> optuna.storages.BaseStorage:
    """The run's study storage (any URL `open_storage` takes, journal:PATH included); checked
    once by `prepare` before the search."""
    from nas.search.study import open_storage

    return open_storage(config.storage_url, given=config.storage is not None, check=False)


def _open_study(config: SearchConfig) -> optuna.Study:
    """Create or load the run's study and queue the baselines first in a new one."""
    study = optuna.create_study(storage=_storage(config), study_name=config.study_name, directions=directions(config),
                                sampler=make_sampler(config), load_if_exists=True)
    enqueue_baselines(study, config)
    return study


def _requeue_orphans(study: optuna.Study, owned: set[int]) -> int:
    """Fail the study's RUNNING trials that no Tune trial will finish (their driver was killed
    before Tune saved them) and queue their parameters again. Returns how many were queued."""
    return fail_and_requeue(study, [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                                    if t.number not in owned])


# ---------------------------------------------------------------------------------------------
# Tune experiments in the run folder


def _experiments_root(config: SearchConfig) -> Path:
    return Path(config.out) / "ray"


def _experiments(config: SearchConfig) -> dict[int, Path]:
    """`<out>/ray/tune-<n>` folders by n."""
    return {int(p.name[len(EXPERIMENT_PREFIX):]): p for p in _experiments_root(config).glob(f"{EXPERIMENT_PREFIX}*")
            if p.name[len(EXPERIMENT_PREFIX):].isdigit()}


def _last_experiment_number(config: SearchConfig) -> int:
    return max(_experiments(config), default=0)


def _latest_experiment(config: SearchConfig) -> Path | None:
    """The newest experiment that holds a saved experiment state (Tune writes it a moment after
    it starts), if any."""
    saved = [n for n, p in _experiments(config).items() if any(p.glob("experiment_state-*.json"))]
    return _experiments(config)[max(saved)] if saved else None


def _unfinished_trials(path: Path) -> int:
    """Trials of a saved Tune experiment that neither finished nor errored."""
    try:
        trials = tune.ExperimentAnalysis(str(path)).trials
    except Exception:  # no readable state: nothing to resume
        return 0
    return sum(t.status not in ("TERMINATED", "ERROR") for t in trials)


# ---------------------------------------------------------------------------------------------
# Ray itself


def _connect(address: str | None) -> bool:
    """Join the cluster at `address` (auto or HOST:PORT) or, for None or "local", start a local
    Ray with one CPU slot per core. Returns True when this call started the connection (and must
    shut it down)."""
    if ray.is_initialized():
        return False
    address = None if address == "local" else address
    if address and address.startswith("ray://"):
        raise NasError(f"--ray-address {address!r} is not allowed: Ray client addresses are not supported; "
                       "run the search on a cluster node with --ray-address auto or HOST:PORT")
    if address and address != "auto":
        _check_reachable(address)
    kwargs = {} if address else {"num_cpus": os.cpu_count()}
    try:
        with _quiet(), _stderr_captured() as captured:
            ray.init(address=address or "local", include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        if "InvalidAuthToken" in "".join(captured):
            reason = ("the cluster uses token authentication: export RAY_AUTH_MODE=token and make its token "
                      "available (~/.ray/auth_token or RAY_AUTH_TOKEN)")
        else:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NasError(f"--ray-address {address!r}: cannot join a Ray cluster ({reason}); start one with "
                       "`ray start --head`, or leave --ray-address out to run Ray on this machine") from None
    return True


@contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Send this process's stderr (file descriptor 2, where Ray's C++ core logs its connection
    retries) to a temporary file while the block runs; the yielded list then holds its text."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode(errors="replace"))


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NasError(f"--ray-address {address!r} is not allowed; expected auto, local or HOST:PORT "
                       "(the address `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise NasError(f"--ray-address {address!r}: nothing answers there ({e.strerror or e}); start the head "
                       "with `ray start --head`, or leave --ray-address out to run Ray on this machine") from None


@contextmanager
def _quiet() -> Iterator[None]:
    """Tune's legacy reporter at verbosity 0 prints nothing (the new one always prints a header);
    Ray's and Optuna's warnings are kept off the progress line."""
    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Define-by-run function")
            warnings.filterwarnings("ignore", message="The reported value is ignored")  # a resumed trial's epochs
            yield
    finally:
        ray_logger.setLevel(level)
        if saved is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved


def _absolute_paths(config: SearchConfig) -> SearchConfig:
    """The config with every path absolute: trials run in other processes (and on other nodes,
    where the run folder must be on a shared filesystem) with another working directory."""
    recipe = dict(config.recipe)
    if recipe.get("data_dir"):
        recipe["data_dir"] = str(Path(recipe["data_dir"]).resolve())
    dataset = recipe.get("dataset", "")
    if isinstance(dataset, str) and dataset.startswith("imagefolder:"):
        recipe["dataset"] = "imagefolder:" + str(Path(dataset.split(":", 1)[1]).resolve())
    return replace(config, out=str(Path(config.out).resolve()), space=str(Path(config.space).resolve()),
                   recipe=recipe)
