"""The Ray Tune engine: the Optuna engine's search, scheduled by Ray Tune on one machine or a cluster.

What is shared with the Optuna engine, so both fill the same run folder the same way:
- the trial function (`run_trial`, `keep_checkpoint`), run inside a Tune function trainable;
- the sampler: Tune's `OptunaSearch` drives `make_sampler` (the Optuna engine's sampler) through
  a define-by-run function that calls `sample_arch(space, trial.suggest_categorical)`;
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

This module is the driver (entry point, Tune experiments in the run folder); the trial that runs
on a Ray worker is `nas.search.ray_trial`, the searcher and scheduler `nas.search.ray_searcher`,
the cluster connection `nas.search.ray_cluster`.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import optuna
import ray
from ray import tune

from nas.search.config import SearchConfig
from nas.search.progress import SearchProgress, status_counts
from nas.search.results import TrialRecord, optuna_records
from nas.search.ray_cluster import connect, quiet_ray
from nas.search.ray_searcher import (LIVE, LiveRun, NasSearch, deadline_of, make_scheduler, open_study,
                                     requeue_orphans)
from nas.search.ray_trial import trainable, trial_resources

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
    started_ray = connect(config.ray_address)
    try:
        with quiet_ray():
            study = open_study(config.study_settings)
            bar = SearchProgress(config.trials, config.budget_ms, config.score, enabled=progress)
            live = LiveRun(config.trials, config.workers, config.run_settings, deadline_of(config.time_limit_s), bar)
            LIVE[config.out] = live
            try:
                interrupted = _run_experiments(config, study)
            finally:
                del LIVE[config.out]
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
    latest = _latest_experiment(config.out)
    if latest is not None and _unfinished_trials(latest):
        tune.Tuner.restore(str(latest), trainable=_trainable_for(config), resume_unfinished=True).fit()
        if _unfinished_trials(latest):
            return True
    if LIVE[config.out].done(status_counts(study)):
        return False
    if config.storage is None:  # a shared --storage may hold other drivers' running trials
        LIVE[config.out].bar.recovered += requeue_orphans(study, owned=set())
    path = _experiments_root(config.out) / f"{EXPERIMENT_PREFIX}{_last_experiment_number(config.out) + 1}"
    _new_tuner(config, path).fit()
    return bool(_unfinished_trials(path))


def _new_tuner(config: SearchConfig, path: Path):
    """A Tuner for a fresh experiment at `path`: the searcher over the run's study, ASHA (or FIFO),
    as many samples as the searcher hands out, quiet output, actors reused between trials."""
    return tune.Tuner(
        _trainable_for(config),
        tune_config=tune.TuneConfig(search_alg=NasSearch(config.study_settings, config.search_space(), config.out, config.budget_ms),
                                    scheduler=make_scheduler(config.scheduler, config.objective, config.recipe),
                                    num_samples=-1,
                                    reuse_actors=True, trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(name=path.name, storage_path=str(path.parent), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)))


def _trainable_for(config: SearchConfig):
    """The trainable with what a trial reads of the run attached, and each trial's resource request."""
    return tune.with_resources(tune.with_parameters(trainable, settings=config.trial_settings, space=config.search_space()),
                               trial_resources(config.recipe, config.trials_per_gpu))


def _trial_name(trial) -> str:
    return f"trial_{trial.config['number']}"


# ---------------------------------------------------------------------------------------------
# Tune experiments in the run folder


def _experiments_root(out: str) -> Path:
    return Path(out) / "ray"


def _experiments(out: str) -> dict[int, Path]:
    """`<out>/ray/tune-<n>` folders by n."""
    return {int(p.name[len(EXPERIMENT_PREFIX):]): p for p in _experiments_root(out).glob(f"{EXPERIMENT_PREFIX}*")
            if p.name[len(EXPERIMENT_PREFIX):].isdigit()}


def _last_experiment_number(out: str) -> int:
    return max(_experiments(out), default=0)


def _latest_experiment(out: str) -> Path | None:
    """The newest experiment of run folder `out` that holds a saved experiment state (Tune writes
    it a moment after it starts), if any."""
    saved = [n for n, p in _experiments(out).items() if any(p.glob("experiment_state-*.json"))]
    return _experiments(out)[max(saved)] if saved else None


def _unfinished_trials(path: Path) -> int:
    """Trials of a saved Tune experiment that neither finished nor errored."""
    try:
        trials = tune.ExperimentAnalysis(str(path)).trials
    except Exception:  # no readable state: nothing to resume
        return 0
    return sum(t.status not in ("TERMINATED", "ERROR") for t in trials)


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
