"""Rules both search engines obey, written once.

`trial_score(arch, accuracy, score, recipe)`: what a trial is ranked by, on every report and at its end:
the proxy accuracy (0..1, `--score proxy`) or the ImageNet top-1 estimate of `nas.estimate` (%,
`--score imagenet-estimate`). The default, `--score auto` (`resolve_score`), is the estimate
wherever the shipped one was fitted for the search's recipe (the default recipe on CIFAR-10), and
the proxy accuracy otherwise (another dataset or recipe, where an ImageNet estimate means nothing):
the estimate ranks the 53 published networks with Kendall tau 0.89 held out, the proxy alone 0.69.
The samplers' objective, the pruners' reports, ASHA's metric and the choice of the winner all
read it (the winner through `nas.search.trials_table.ranking_column`, since a run folder is
read without a search).

`resolve_resolution(config)`: the rho choices a search samples (`--resolution auto`): the space's
largest alone when trials are ranked by proxy accuracy, every one with the ImageNet estimate.

`resolve_rungs(config)` and `resolve_confirm_seeds(config)`: `--rungs auto` and `--confirm-seeds
auto`. A search that asks to be ranked by proxy accuracy (`--score proxy`) trains its best trials
over two rungs before naming the winner, one more seed at the top rung; every other search none,
and two more seeds for its finalists (experiments/proxy_winner).

`first_prunable_report(recipe)`: the 0-based index of the first per-epoch report a pruner may act
on. A pruner that stops trials on reports which do not yet rank networks the way the final one
does stops good ones at random. Measured with `nas proxy fidelity` on the 53 published networks
(experiments/proxy_fidelity/README.md), the default recipe's reports after epochs 1, 2, 3 rank
them against its final accuracy with Kendall tau 0.73, 0.77 and 0.92 (against ImageNet top-1:
0.57, 0.61, 0.66, final 0.69). So the first half of a trial's reports are never pruned on:
Optuna's MedianPruner gets `n_warmup_steps`, SuccessiveHalving `min_resource`, and Ray's ASHA
`grace_period` (which counts finished epochs, hence + 1) from this one function.

What a search counts and when it stops, for both engines: a trial is *trained* when it ends
COMPLETE, PRUNED or FAIL (`TRAINED`; a REJECTED one was over budget and never trained),
`--trials` counts trained trials, and a search also stops after `REJECTED_CAP` rejections per
requested trial (a space that keeps proposing over-budget networks). `directions`, `is_pareto`
and `prunes` say what the samplers optimise and whether a pruner may stop trials. The winner
(best under budget) is `nas.search.trials_table.best_row`, the one rule a run folder is read with
too. `Status` names a trial's outcome.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from nas.errors import NasError
from nas.recipe import Recipe, make_recipe
from nas.search.config import AUTO_COUNT, AUTO_RESOLUTION, AUTO_SCORE
from nas.space import load_space

if TYPE_CHECKING:
    from nas.arch import Arch
    from nas.estimate import ImagenetEstimate


class Status(StrEnum):
    """A trial's outcome, as trials.csv's `state` column and a stored trial's `status` attribute
    hold it (the two names predate this type; the values are the file format). A member is the
    string itself: `Status.COMPLETE == "COMPLETE"`, so frames and files read with plain strings
    compare with it. Not Optuna's `TrialState`: REJECTED (over budget, never trained) and
    INTERRUPTED (left by a killed process, queued again) are ours."""

    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"
    REJECTED = "REJECTED"
    RUNNING = "RUNNING"
    INTERRUPTED = "INTERRUPTED"
    WAITING = "WAITING"


TRAINED = (Status.COMPLETE, Status.PRUNED, Status.FAIL)  # trial statuses that cost a training; --trials counts these
FINISHED = TRAINED + (Status.REJECTED, Status.INTERRUPTED)  # statuses of trials that will not change again
REJECTED_CAP = 50  # over-budget proposals per requested trial after which a search stops


def trained_count(counts: dict[str, int]) -> int:
    """Trained trials among status counts (`nas.search.progress.status_counts`)."""
    return sum(counts.get(s, 0) for s in TRAINED)


def search_done(counts: dict[str, int], trials: int) -> bool:
    """True when `trials` trials were trained or the rejection cap is reached."""
    return trained_count(counts) >= trials or counts.get(Status.REJECTED, 0) >= REJECTED_CAP * trials


def is_pareto(objective: str) -> bool:
    """Whether the samplers optimise (score, latency) jointly instead of one value (`--objective`)."""
    return objective == "pareto"


def directions(objective: str) -> list[str]:
    """Optuna study directions: maximise the score (and minimise latency, for pareto)."""
    return ["maximize", "minimize"] if is_pareto(objective) else ["maximize"]


def prunes(objective: str, early_stopping: str) -> bool:
    """Whether per-epoch reports may stop a trial: single-objective runs whose engine's early
    stopping (Optuna's `--pruner`, Ray's `--scheduler`) is not "none"; a Pareto search trains
    every trial to the end."""
    return not is_pareto(objective) and early_stopping != "none"


def is_constrained(objective: str) -> bool:
    """Whether trials record the latency budget as an Optuna constraint (<= 0 feasible)."""
    return objective in ("constrained", "pareto")


def first_prunable_report(recipe: Recipe) -> int:
    """0-based index of the first epoch report a pruner may stop a trial on: epochs // 2
    (4 epochs -> the third report), at least 1 (a trial's first report is never acted on)."""
    return max(1, recipe.epochs // 2)


def trial_score(arch: Arch, accuracy: float, score: str, recipe: dict) -> float:
    """The value a trial is ranked by for a proxy accuracy (0..1): that accuracy (`score`
    "proxy"), or with "imagenet-estimate" the estimated ImageNet top-1 (%) of `arch` for the
    search's `recipe` record."""
    if score == "imagenet-estimate":
        return _estimate(tuple(sorted(recipe.items()))).predict(arch, accuracy)
    return accuracy


@lru_cache(maxsize=4)
def _estimate(recipe_items: tuple) -> ImagenetEstimate:
    from nas.estimate import estimate_for  # the estimate's fit (scipy) only when a search ranks by it

    return estimate_for(make_recipe(**dict(recipe_items)))


def resolve_score(config):
    """`config` (a SearchConfig) with `--score auto` made concrete: "imagenet-estimate" when the
    shipped estimate was fitted for its recipe and trials are trained (`--evaluator train`), else
    "proxy". Other scores are returned as they are."""
    if config.score != AUTO_SCORE:
        return config
    if getattr(config, "evaluator", "train") != "train":  # a subnet's accuracy is not the recipe's proxy accuracy
        return replace(config, score="proxy")
    try:
        _estimate(tuple(sorted(config.recipe.items())))
        score = "imagenet-estimate"
    except NasError:
        score = "proxy"
    return replace(config, score=score)


def resolve_resolution(config):
    """`config` (a SearchConfig, its score resolved) with `--resolution auto` made concrete. Ranked
    by proxy accuracy, the search compares networks at one rho, the space's largest: with a
    resolution-aware recipe a lower rho trains on smaller images, which a short training learns
    faster and longer training gets less from (experiments/truth, pixel-40-60-mixed: the proxy
    ranks rho-160/192 networks well above where 5x longer training puts them; experiments/proxy_winner:
    both losing `--score proxy` winners are rho-192 networks), and without one the proxy cannot see
    rho at all. Ranked by the ImageNet estimate, every rho: its worth comes from the published
    accuracies. A space with one rho is searched at it (None)."""
    if config.resolution != AUTO_RESOLUTION:
        return config
    choices = load_space(config.space).resolution
    one_rho = config.score == "proxy" and len(choices) > 1
    return replace(config, resolution=(max(choices),) if one_rho else None)


# `--rungs auto` with `--score proxy`. Measured in experiments/proxy_winner (CIFAR-10, Pixel 60 ms,
# each winner and MobileNetV3-Large trained 20x longer, 2 judge seeds): the winners of three
# search seeds named after two rungs ended +1.8, +0.1 and +1.6 points from V3-Large, and the first
# search run with this default -0.7 (mean +0.7); named at the search's own short training (at rho
# 224), -0.8 and +0.8 (mean 0.0). The searches took 23-29 minutes on 2 cores with the default
# recipe, against 10-12 without rungs.
PROXY_RUNGS = 2


def resolve_rungs(config):
    """`config` (a SearchConfig, its score as asked, before `resolve_score`) with `--rungs auto`
    made a count: PROXY_RUNGS when the command asks for `--score proxy` and trials are trained
    (`--evaluator train`), else 0. `--score auto` falling back to proxy accuracy (a recipe the
    estimate was not fitted for: the rung budgets grow with it, eta^2 = 9x its training for the
    top rung) gets none; its summary says how to add them."""
    if config.rungs != AUTO_COUNT:
        return config
    asked = config.score == "proxy" and getattr(config, "evaluator", "train") == "train"
    return replace(config, rungs=PROXY_RUNGS if asked else 0)


def resolve_confirm_seeds(config):
    """`config` (its rungs a count) with `--confirm-seeds auto` made a count: 1 after rungs (the
    finalists' top-rung training is their first seed, so they are compared at 2), else 2 (3 seeds
    at the search's own training)."""
    if config.confirm_seeds != AUTO_COUNT:
        return config
    return replace(config, confirm_seeds=1 if config.rungs else 2)


def check_score(config) -> None:
    """NasError before any work when the config's score cannot be computed for its recipe."""
    if config.score == "imagenet-estimate":
        if getattr(config, "evaluator", "train") != "train":
            raise NasError(f"--score imagenet-estimate is fitted on proxy accuracies of trained networks, not on "
                           f"--evaluator {config.evaluator} accuracies; use --score proxy")
        _estimate(tuple(sorted(config.recipe.items())))
