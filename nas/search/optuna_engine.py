"""The Optuna engine: a study in SQLite (or any Optuna storage URL), N worker processes, resume.

Each trial samples define-by-run (depth first, then that many blocks), is scored by the shared
trial function, and is stored with its architecture, latency and per-epoch accuracies as user
attributes, so the run folder can be rebuilt from the storage alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import socket
import time
import warnings
import zlib
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from nas.device import worker_device
from nas.errors import NasError
from nas.interrupt import workers_ignore_ctrl_c
from nas.search.config import DEFAULT_STUDY, SearchConfig, StudySettings, TrialSettings
from nas.search.policy import (Status, directions, first_prunable_report, is_constrained, prunes, search_done,
                               trained_count, trial_score)
from nas.search.progress import SearchProgress, status_counts
from nas.search.results import optuna_records, write_results
from nas.search.study import creating, fail_and_requeue, fail_stale_trials, open_storage, requeue_stale_trial
from nas.search.trial import (TrialOutcome, constraint, keep_checkpoint, objective_values, recipe_of,
                              run_trial)
from nas.space import Space, sample_arch

STUDY_NAME = DEFAULT_STUDY  # the study of a run folder's own study.db; see SearchConfig.study_name
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # trial user attribute: the process that ran it
optuna.logging.set_verbosity(optuna.logging.WARNING)


class _TrialFailed(Exception):
    """Training diverged or ran out of memory: the trial is recorded as FAIL, the search goes on."""


_FAILED_WITH_VALUE = re.compile(r"Trial \d+ failed with value ")  # Optuna's second line about a failed trial


class _NoTracebackOfFailedTrials(logging.Filter):
    """Optuna logs every failed trial with its traceback, then again with its value (None). A
    Ctrl-C or a NasError inside a trial stops the search and the CLI reports it in one line, so
    its records are dropped; a trial that diverged (`_TrialFailed`) keeps Optuna's first line,
    without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (KeyboardInterrupt, NasError)) or _FAILED_WITH_VALUE.match(str(record.msg)):
            return False
        if isinstance(error, _TrialFailed):
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("optuna.study._optimize").addFilter(_NoTracebackOfFailedTrials())


def make_sampler(sampler: str, seed: int, trials: int, shared: bool, worker: int = 0) -> optuna.samplers.BaseSampler:
    """`sampler` (tpe, nsga2 or random), seeded by `seed` per worker; NSGA-II's population scales
    with the search's `trials`. Constrained and pareto runs record the latency
    budget as a trial constraint (`Trial.set_constraint`, <= 0 feasible), which TPE and NSGA-II
    read to rank over-budget trials below every feasible one. With a `shared` storage (`--storage`) the
    process (host and pid) is mixed into the seed: each machine's `nas search` is worker 0, and
    equal seeds would make them all propose the same networks."""
    seed = (seed + 1000 * worker) % 2**32
    if shared:
        seed = (seed + zlib.crc32(WORKER.encode())) % 2**32
    if sampler == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
    if sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, trials // 4)))
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(pruner: str, objective: str, recipe: dict) -> optuna.pruners.BasePruner:
    """`pruner` (median or halving) on per-epoch validation accuracy (single objective only),
    never on the reports before `policy.first_prunable_report` of the `recipe` record."""
    if not prunes(objective, pruner):
        return optuna.pruners.NopPruner()
    first = first_prunable_report(recipe_of(recipe))
    if pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, first), reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=first)


def open_study(study: StudySettings, worker: int = 0) -> optuna.Study:
    """Create or load the run's study. Its storage has a heartbeat (`open_storage`), so a trial
    of a killed process is marked failed and queued again with the same parameters."""
    storage = open_storage(study.storage_url, given=study.given, heartbeat=True, check=False)
    return optuna.create_study(storage=storage, study_name=study.study_name, directions=directions(study.objective),
                               sampler=make_sampler(study.sampler, study.seed, study.trials, shared=study.given,
                                                    worker=worker),
                               pruner=make_pruner(study.pruner, study.objective, study.recipe),
                               load_if_exists=True)


def enqueue_baselines(study: optuna.Study, baselines: tuple[str, ...], storage_url: str) -> None:
    """Queue the `baselines` (names) as the first trials of a new study (trained with the same
    recipe). Workers that start at once on an SQLite or journal storage queue them once (`creating`)."""
    with creating(storage_url):
        if study.trials:
            return
        for name in baselines:
            study.enqueue_trial({}, user_attrs={"baseline": name})


def recover_interrupted(study: optuna.Study) -> int:
    """Fail and re-queue trials left RUNNING by a killed process (single-machine runs, where no
    other process can own them). Returns how many were re-queued."""
    return fail_and_requeue(study, study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def objective_fn(settings: TrialSettings, pruner: str, space: Space, device: str | None = None
                 ) -> Callable[[Trial], float | tuple[float, float]]:
    """The Optuna objective: sample (or take the queued baseline), score, train on `device`
    (default: the recipe's), store attributes; `pruner` decides whether epochs are reported."""
    from nas.search.trial import fit_baseline

    prunable, constrained = prunes(settings.objective, pruner), is_constrained(settings.objective)

    def objective(trial: Trial) -> float | tuple[float, float]:
        trial.set_user_attr("worker", WORKER)
        baseline = trial.user_attrs.get("baseline")
        if baseline:
            arch = fit_baseline(baseline, settings.target, settings.budget_ms, space.width_mult, space.resolution)
        else:
            arch = sample_arch(space, trial.suggest_categorical, name=f"trial_{trial.number}")

        def store(outcome: TrialOutcome) -> None:
            for key, value in outcome.attrs().items():
                trial.set_user_attr(key, value)
            if constrained and "constraint" not in trial.user_attrs:
                trial.set_user_attr("constraint", constraint(outcome.latency_ms, settings.budget_ms))
                trial.set_constraint("latency", trial.user_attrs["constraint"])

        def report(epoch: int, accuracy: float) -> None:
            epochs = trial.user_attrs.get("accuracy_epochs", []) + [accuracy]
            trial.set_user_attr("accuracy_epochs", epochs)
            if prunable:
                trial.report(trial_score(arch, accuracy, settings.score, settings.recipe), epoch)
                if trial.should_prune():
                    trial.set_user_attr("status", Status.PRUNED)
                    trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
                    raise optuna.TrialPruned(f"accuracy {accuracy:.3f} after epoch {epoch + 1}")

        start = time.perf_counter()
        outcome = run_trial(arch, settings, report, on_scored=store, device=device)
        store(outcome)
        if outcome.status == Status.FAIL:
            raise _TrialFailed(outcome.error)
        if outcome.status == Status.COMPLETE:
            kept = keep_checkpoint(outcome, settings, trial.number)
            if kept.checkpoint_error:
                trial.set_user_attr("checkpoint_error", kept.checkpoint_error)
        return objective_values(outcome, settings)

    return objective


def optimize(config: SearchConfig, worker: int = 0, progress: SearchProgress | None = None) -> None:
    """Run trials on the shared study until `config.trials` trials were trained (rejected ones do
    not count), the time limit passes, or the space keeps proposing over-budget networks. Worker
    `worker` trains on its own GPU, or its share of one (`nas.device.worker_device`)."""
    study = open_study(config.study_settings, worker)
    space = config.search_space()
    device = worker_device(recipe_of(config.recipe).device, worker, config.trials_per_gpu)

    def stop_when_done(study: optuna.Study, trial: FrozenTrial) -> None:
        counts = status_counts(study)
        if worker == 0:
            write_results(optuna_records(study), config.run_settings)
        if progress is not None:
            progress.update(study, counts)
        if search_done(counts, config.trials):
            study.stop()

    if trained_count(status_counts(study)) >= config.trials:
        return
    try:
        study.optimize(objective_fn(config.trial_settings, config.pruner, space, device), timeout=config.time_limit_s,
                       catch=(_TrialFailed,), callbacks=[stop_when_done], gc_after_trial=True)
    except KeyboardInterrupt:
        requeue_own_interrupted(study)
        raise


def requeue_own_interrupted(study: optuna.Study) -> None:
    """Queue again the trial that Ctrl-C stopped in this process (Optuna failed it, and it has
    no status yet), as a killed run's trial is: the search, run again, trains it again."""
    own = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("worker") == WORKER]
    last = max(own, key=lambda t: t.number, default=None)
    if last is not None and last.state == TrialState.FAIL and "status" not in last.user_attrs:
        requeue_stale_trial(study, last)


def _worker_main(config: SearchConfig, worker: int) -> None:
    optimize(config, worker)


def run_optuna(config: SearchConfig, progress: bool = True) -> optuna.Study:
    """Run (or continue) the search with `config.workers` processes on one storage and return
    the study."""
    study = open_study(config.study_settings)
    # The run folder's own study has no other worker: whatever is RUNNING was killed. A shared
    # study's RUNNING trials may be other machines' live ones: only the heartbeat can tell.
    recovered = recover_interrupted(study) if config.storage is None else fail_stale_trials(study)
    enqueue_baselines(study, config.baselines, config.storage_url)
    bar = SearchProgress(config.trials, config.budget_ms, config.score, enabled=progress, recovered=recovered)
    # No more processes than trials left to train: each would start one (`--trials 1` trains one).
    helpers = _start_helpers(config, min(config.workers, max(1, config.trials - trained_count(status_counts(study)))))
    try:
        optimize(config, 0, bar)
    except KeyboardInterrupt:
        for p in helpers:  # their trials stay RUNNING: the next run queues them again
            p.terminate()
        raise
    finally:
        for p in helpers:
            p.join()
        bar.close(open_study(config.study_settings))
    return open_study(config.study_settings)


def _start_helpers(config: SearchConfig, workers: int) -> list[multiprocessing.Process]:
    """Start worker processes 1..workers-1. They ignore Ctrl-C, so only this process reports it, in
    one line, and stops them (`run_optuna`)."""
    ctx = multiprocessing.get_context("spawn")
    helpers = [ctx.Process(target=_worker_main, args=(config, w), daemon=False)
               for w in range(1, workers)]
    with workers_ignore_ctrl_c():
        for p in helpers:
            p.start()
            time.sleep(1.0)  # let each worker open the storage before the next one
    return helpers
