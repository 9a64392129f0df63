"""Search engines (Optuna, Ray Tune) over one shared trial function, and the run folder they fill.

    from nas.search import SearchConfig, run_search
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nas.errors import NasError
from nas.latency import known_targets, min_latency
from nas.recipe import make_recipe
from nas.search.config import SearchConfig, load_config, parse_budget, parse_duration, save_config
from nas.space import load_space

__all__ = ["SearchConfig", "run_search", "prepare", "parse_budget", "parse_duration"]


def check_target_and_budget(target: str, budget_ms: float, space_path: str) -> None:
    """Fail before any work on an unknown target or a budget no architecture of the space meets."""
    if target not in known_targets():
        raise NasError(f"target {target!r} is unknown; known targets: {', '.join(known_targets())}")
    fastest = min_latency(load_space(space_path), target)
    if budget_ms < fastest:
        raise NasError(f"budget {budget_ms:g} ms is below the fastest architecture of the space on "
                       f"{target} ({fastest:.2f} ms); use a budget of at least {fastest:.2f} ms")


def prepare(config: SearchConfig, resume: bool) -> tuple[SearchConfig, bool]:
    """The config to run: a fresh one (checked, saved) or, when the run folder already holds a
    search, the saved one with the new trial count, time limit, worker count and Ray address
    (a resumed run may join a restarted or moved cluster). Returns
    (config, resumed)."""
    out = Path(config.out)
    if (out / "config.yaml").is_file():
        saved = load_config(out)
        return replace(saved, trials=config.trials, time_limit_s=config.time_limit_s,
                       workers=config.workers, ray_address=config.ray_address or saved.ray_address), True
    if resume:
        raise NasError(f"--resume: {out} holds no search to resume (no config.yaml)")
    config.check()
    load_space(config.space)
    make_recipe(**config.recipe)
    check_target_and_budget(config.target, config.budget_ms, config.space)
    save_config(config)
    return config, False


def run_search(config: SearchConfig, progress: bool = True) -> dict:
    """Run the search described by a prepared config and write the run folder; returns the summary."""
    if config.engine == "ray":
        from nas.search.ray_engine import run_ray

        records = run_ray(config, progress=progress)
    else:
        from nas.search.optuna_engine import run_optuna
        from nas.search.results import optuna_records

        records = optuna_records(run_optuna(config, progress=progress))
    from nas.search.results import write_results

    return write_results(records, config)
