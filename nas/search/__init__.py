"""Search engines (Optuna, Ray Tune) over one shared trial function, and the run folder they fill.

    from nas.search import SearchConfig, run_search
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Collection, Iterator

from nas.device import resolve as resolve_device
from nas.errors import NasError
from nas.files import io_error, not_a_file
from nas.locks import locked
from nas.recipe import make_recipe, recipe_from_record
from nas.search.config import (SearchConfig, check_workers, differing_settings, load_config, only_given,
                               parse_budget, parse_duration, resolve_workers, save_config, search_identity)
from nas.space import Space, load_space

# The latency tables, the estimate and Optuna's storages are imported where a search is prepared,
# not here: the CLI imports nas.search.config (the choices and defaults of its options) at start.

__all__ = ["SearchConfig", "run_search", "prepare", "holding_run_folder", "parse_budget", "parse_duration"]


def check_target_and_budget(target: str, budget_ms: float, space: Space) -> None:
    """Fail before any work on an unknown target or a budget no architecture of `space` meets."""
    from nas.latency import known_targets, min_latency

    if target not in known_targets():
        raise NasError(f"target {target!r} is unknown; known targets: {', '.join(known_targets())}")
    fastest = min_latency(space, target)
    if budget_ms < fastest:
        raise NasError(f"budget {budget_ms:g} ms is below the fastest architecture of the space on "
                       f"{target} ({fastest:.2f} ms{_at_rho(space)}); use a budget of at least {fastest:.2f} ms")


def _at_rho(space: Space) -> str:
    return f" at rho {', '.join(map(str, space.resolution))}" if len(space.resolution) == 1 else ""


def prepare(config: SearchConfig, resume: bool, given: Collection[str] | None = None) -> tuple[SearchConfig, bool]:
    """The config to run, checked before anything is written. Returns (config, resumed).

    A fresh folder: every setting is checked (the recipe's data set is loaded too:
    `nas.train.check_data`), the storage opened and the study created (or
    joined, when another process of the same search made it), and only then config.yaml saved.
    A folder that already holds a search: its saved settings (in this folder, wherever it was
    when the search started), with this command's trial count, time limit, worker count (`auto`
    made a count for the saved recipe: `nas.search.config.auto_workers`), confirmation and Ray
    address (a resumed run may join a restarted or moved cluster), and the rungs (`rungs`,
    `eta`) this command gives, else the saved ones (so `--resume` alone finishes a run's rungs); `--rungs
    auto` follows the score the command asks for and `--confirm-seeds auto` the rungs the run ends up
    with (`nas.search.policy.resolve_rungs`, `resolve_confirm_seeds`). Without `resume`, every other setting the command gives (`given`: setting names
    such as `sampler` or `recipe.epochs`, see `only_given`; None: all of them) must equal the
    saved one, so rerunning the same command, or a shorter one, continues; a difference is
    refused naming the settings.
    A damaged config.yaml or study, a study of another search, and an `--out` that is a file or
    a read-only folder are refused too; nothing in the folder is changed then."""
    from nas.search.policy import (check_score, resolve_confirm_seeds, resolve_resolution, resolve_rungs,
                                   resolve_score)
    from nas.search.study import ensure_study
    from nas.train import check_data

    config = resolve_resolution(resolve_score(resolve_rungs(config)))
    out = Path(config.out)
    check_out_folder(out)
    if (out / "config.yaml").exists():
        saved = load_config(out)
        resumed = replace(saved, out=config.out, trials=config.trials, time_limit_s=config.time_limit_s,
                          workers=config.workers, ray_address=config.ray_address or saved.ray_address,
                          trials_per_gpu=config.trials_per_gpu, confirm=config.confirm,
                          confirm_seeds=config.confirm_seeds, confirm_by=config.confirm_by,
                          **{k: getattr(config, k) for k in ("rungs", "eta") if given is None or k in given})
        resumed = resolve_confirm_seeds(resolve_workers(resolve_resolution(resumed)))
        diffs = ignored_settings(saved, config, given)
        if diffs and not resume:
            raise NasError(f"{out} already holds a search with other settings: {'; '.join(diffs)}; "
                           "add --resume to continue it with its saved settings, or pass a new --out "
                           "to start a fresh search")
        resumed.check()
        resolve_device(recipe_from_record(resumed.recipe).device)
        check_score(resumed)
        check_workers(resumed)
        check_data(recipe_from_record(resumed.recipe))
        check_evaluator(resumed)
        ensure_study(resumed, vouched=True, known_trials=_listed_trials(out))
        return resumed, True
    if resume:
        raise NasError(f"--resume: {out} holds no search to resume (no config.yaml)")
    config = resolve_confirm_seeds(resolve_workers(_with_study_name(config)))
    config.check()
    check_workers(config)
    space = config.search_space()
    resolve_device(make_recipe(**config.recipe).device)
    check_score(config)
    check_target_and_budget(config.target, config.budget_ms, space)
    check_data(make_recipe(**config.recipe))
    check_evaluator(config)
    if config.storage is None:
        _make_folder(out)
    ensure_study(config, vouched=False, known_trials=_listed_trials(out))
    _make_folder(out)
    save_config(config)
    return config, False


def ignored_settings(saved: SearchConfig, config: SearchConfig, given: Collection[str] | None = None) -> list[str]:
    """The settings `config` gives (see `prepare`) that differ from the run folder's `saved`
    ones, as "--flag SAVED (this command: NEW)"."""
    return differing_settings(only_given(search_identity(saved, rerun=True), given),
                              only_given(search_identity(_with_study_name(config), rerun=True), given))


def check_out_folder(out: Path) -> None:
    """NasError when `--out` is a file, or a folder (or the nearest existing parent of a new
    one) this process cannot write to."""
    if out.exists() and not out.is_dir():
        what = not_a_file(out) or "a file"
        raise NasError(f"--out {out}: is {what}, not a folder; pass a folder path for the run")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NasError(f"--out {out}: {existing} is a file, not a folder")
    if not _writable(existing):
        what = "folder" if existing == out else f"parent folder {existing}"
        raise NasError(f"--out {out}: the {what} is not writable; pass a folder you can write to")


@contextmanager
def holding_run_folder(out: Path) -> Iterator[None]:
    """Hold run folder `out` (created if missing) for this process's search: while it runs, a
    second `nas search` into the same folder is refused with one line instead of racing it to
    create the study. A folder (and parents) this call created is removed again when the search
    is refused before anything was written into it."""
    check_out_folder(out)
    created = [p for p in (out, *out.parents) if not p.exists()]
    _make_folder(out)
    with locked(out, held=f"--out {out}: another nas search is running in this folder; wait for it to end, "
                          "or pass another --out"):
        try:
            yield
        except BaseException:
            for folder in created:  # deepest first; one that holds anything stays
                try:
                    folder.rmdir()
                except OSError:
                    break
            raise


def _writable(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, since permission bits lie to root and
    on read-only mounts)."""
    import os
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise io_error(out, e, "create the folder") from None


def _with_study_name(config: SearchConfig) -> SearchConfig:
    """`config` with its study named: `--study`, else `nas` in the run folder's own study.db, else
    (a shared `--storage`) `nas-<run folder name>`, so searches into different folders never share a
    study by accident."""
    if config.study or config.storage is None:
        return config
    return replace(config, study=f"nas-{Path(config.out).resolve().name}")


def check_evaluator(config: SearchConfig) -> None:
    """NasError (one line) unless `--evaluator supernet` names a supernet folder trained on this
    search's space, so that every candidate it samples is one of its subnets."""
    if config.evaluator != "supernet":
        return
    from nas.search.trial import subnet_evaluator

    trained = subnet_evaluator(config.supernet).trained
    if replace(trained.space, path="") != replace(load_space(config.space), path=""):
        raise NasError(f"--supernet {config.supernet} was trained on the space {trained.space.path or trained.space.name}, "
                       f"not this search's {config.space}; train one with `nas supernet train --space {config.space}`")


def _listed_trials(out: Path) -> set[int]:
    """Trial numbers the run folder's trials.csv lists (none when it is missing or unreadable:
    it is derived data, rewritten from the study)."""
    from nas.search.trials_table import read_trials_csv

    path = out / "trials.csv"
    if not path.is_file():
        return set()
    try:
        return set(int(n) for n in read_trials_csv(path)["number"])
    except (NasError, OSError, ValueError, UnicodeDecodeError):
        return set()


def _local_workers(config: SearchConfig) -> int:
    """Processes the trainings after the trials (rungs, confirmation) run on: the Optuna engine's
    workers; 1 after a Ray search (its workers may be other machines' CPUs)."""
    return config.workers if config.engine == "optuna" else 1


def _rungs(records: list, config: SearchConfig, progress: bool) -> dict | None:
    """The best trials promoted through `config.rungs` rungs (nas.search.rungs); None without
    rungs (a rungs.json of an earlier run with rungs is removed: the winner is rung 0's again)."""
    from nas.search.results import trials_frame
    from nas.search.rungs import RUNGS_FILE, run_rungs

    if not config.rungs:
        (Path(config.out) / RUNGS_FILE).unlink(missing_ok=True)
        return None
    return run_rungs(trials_frame(records), config.out, config.budget_ms, recipe_from_record(config.recipe),
                     config.rungs, config.eta, _local_workers(config), progress)


def _confirm(records: list, config: SearchConfig, progress: bool, rungs: dict | None = None) -> dict | None:
    """The finalists of the run (of its top rung, with `rungs`) retrained at `config.confirm_seeds`
    more seeds with the top rung's recipe (nas.search.confirm); None when nothing is confirmed."""
    from nas.search.confirm import confirm_finalists
    from nas.search.results import trials_frame
    from nas.search.rungs import top_recipe

    recipe, rung = recipe_from_record(config.recipe), None
    if rungs is not None:
        recipe, rung = top_recipe(rungs, recipe)
    # A subnet's accuracy is not a training's: the finalists of a supernet-screened run are all
    # trained, at `confirm_seeds` seeds, unless a rung already trained them.
    trained = config.evaluator == "train" or (rung is not None and rung["rung"] > 0)
    return confirm_finalists(trials_frame(records, rungs), config.out, config.budget_ms, recipe, config.score,
                             config.confirm, config.confirm_seeds, _local_workers(config), progress,
                             rung=rung, score_recipe=config.recipe, trained_first=trained, by=config.confirm_by)


def run_search(config: SearchConfig, progress: bool = True) -> dict:
    """Run the search described by a prepared config and write the run folder; returns the summary."""
    if config.engine == "ray":
        from nas.search.ray_engine import run_ray

        records = run_ray(config, progress=progress)
    else:
        from nas.search.optuna_engine import run_optuna
        from nas.search.results import optuna_records

        records = optuna_records(run_optuna(config, progress=progress))
    from nas.latency.winner import measure_run
    from nas.search.results import write_results

    settings = config.run_settings
    summary = write_results(records, settings)
    rungs = _rungs(records, config, progress)
    if not config.confirm:  # an earlier run's confirmation must not name the winner of this one
        (Path(config.out) / "confirmation.json").unlink(missing_ok=True)
    if config.confirm or rungs is not None:
        confirmation = _confirm(records, config, progress, rungs) if config.confirm else None
        summary = write_results(records, settings, confirmation, rungs)
    return measure_run(summary, config.out)  # the winner, timed here when it can be
