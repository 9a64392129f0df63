"""The Ray engine's searcher and scheduler, in the driver: OptunaSearch over the run's study that
records every trial as the Optuna engine does, ASHA that never stops a baseline, and the limits
of the current `run_ray` call they read."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nas.search.policy import Status
from nas.search.config import RunSettings, StudySettings
from nas.search.optuna_engine import enqueue_baselines, make_sampler
from nas.search.progress import SearchProgress, status_counts
from nas.search.results import optuna_records, write_results
from nas.search.policy import (directions, first_prunable_report, is_constrained, is_pareto, prunes,
                               search_done, trained_count)
from nas.search.study import fail_and_requeue
from nas.search.trial import constraint, recipe_of
from nas.space import Space, sample_arch


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

    def __init__(self, study: StudySettings, space: Space, out: str, budget_ms: float):
        pareto = is_pareto(study.objective)
        super().__init__(space=DefineByRun(space),
                         metric=["score", "latency_ms"] if pareto else "objective",
                         mode=["max", "min"] if pareto else "max", sampler=_sampler(study),
                         study_name=study.study_name, storage=search_storage(study.storage_url, given=study.given))
        self._out = out
        self._budget_ms = budget_ms
        self._pareto = pareto
        self._constrained = is_constrained(study.objective)
        self._own_storage = not study.given
        self._counts = status_counts(self._ot_study)

    def suggest(self, trial_id: str):
        live = LIVE.get(self._out)
        if live is None or live.done(self._counts):
            return Searcher.FINISHED
        running = len(self._ot_trials) - len(self._completed_trials)
        trained = trained_count(self._counts)
        if running >= live.workers or trained + running >= live.trials:
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
        live = LIVE.get(self._out)
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
        live = LIVE.get(self._out)
        if self._own_storage and live is not None:
            live.bar.recovered += requeue_orphans(self._ot_study, owned)
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
            status = Status.FAIL
            trial.set_user_attr("error", "the Ray trial crashed; see its error.txt under ray/")
        else:
            status = Status.PRUNED
        trial.set_user_attr("status", status)
        if status == Status.PRUNED:
            self._ot_study.tell(trial, state=TrialState.PRUNED)
        elif status == Status.FAIL:
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


def make_scheduler(scheduler: str, objective: str, recipe: dict):
    """ASHA on per-epoch validation accuracy (first rung after the epoch of
    `policy.first_prunable_report` of the `recipe` record, then x3; a trial below the top third
    of a rung stops), or FIFO for `scheduler` none and for pareto runs (two objectives give no
    single ranking to halve; the Optuna engine does not prune those either)."""
    if not prunes(objective, scheduler):
        return FIFOScheduler()
    recipe = recipe_of(recipe)
    return SparingASHA(time_attr="epoch", metric="score", mode="max", max_t=max(1, recipe.epochs),
                       grace_period=first_prunable_report(recipe) + 1, reduction_factor=3,
                       stop_last_trials=False)


# ---------------------------------------------------------------------------------------------
# The current run: limits and progress that belong to this call, not to Tune's saved state


@dataclass
class LiveRun:
    """What the searcher reads from the running `run_ray` call. Tune pickles the searcher into
    the experiment state, so a restored searcher would otherwise carry the limits of the first
    run, not the `--trials`, `--time-limit` and `--workers` of the resumed one. `run`: what the
    run folder's files are written with."""

    trials: int  # trained trials after which the search stops
    workers: int  # trials running at once, at most
    run: RunSettings
    deadline: float | None  # time.monotonic() after which no trial starts
    bar: SearchProgress

    def done(self, counts: dict[str, int]) -> bool:
        return (search_done(counts, self.trials)
                or (self.deadline is not None and time.monotonic() >= self.deadline))

    def trial_finished(self, study: optuna.Study, counts: dict[str, int]) -> None:
        write_results(optuna_records(study), self.run)
        self.bar.update(study, counts)


LIVE: dict[str, LiveRun] = {}  # run folder -> its running call (the searcher runs in this process)


def deadline_of(time_limit_s: float | None) -> float | None:
    """The monotonic clock time `time_limit_s` seconds from now (None: no limit)."""
    return None if time_limit_s is None else time.monotonic() + time_limit_s


# ---------------------------------------------------------------------------------------------
# The study


def search_storage(url: str, given: bool) -> optuna.storages.BaseStorage:
    """The run's study storage at `url` (any URL `open_storage` takes, journal:PATH included;
    `given`: a `--storage` rather than the run folder's study.db); checked once by `prepare`
    before the search."""
    from nas.search.study import open_storage

    return open_storage(url, given=given, check=False)


def _sampler(study: StudySettings) -> optuna.samplers.BaseSampler:
    return make_sampler(study.sampler, study.seed, study.trials, shared=study.given)


def open_study(settings: StudySettings) -> optuna.Study:
    """Create or load the run's study and queue the baselines first in a new one."""
    study = optuna.create_study(storage=search_storage(settings.storage_url, given=settings.given),
                                study_name=settings.study_name, directions=directions(settings.objective),
                                sampler=_sampler(settings), load_if_exists=True)
    enqueue_baselines(study, settings.baselines, settings.storage_url)
    return study


def requeue_orphans(study: optuna.Study, owned: set[int]) -> int:
    """Fail the study's RUNNING trials that no Tune trial will finish (their driver was killed
    before Tune saved them) and queue their parameters again. Returns how many were queued."""
    return fail_and_requeue(study, [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                                    if t.number not in owned])
