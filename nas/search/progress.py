"""The search's progress on stderr: trained trials done, pruned, failed, rejected, and the best
score under the budget, named (the ImageNet estimate or the proxy accuracy: what the search ranks
by). A bar on a terminal; a line every few trained trials when stderr is a file or a pipe."""

from __future__ import annotations

import sys
import time

from optuna.trial import FrozenTrial, TrialState

from nas.progress import bar
from nas.search.policy import Status, trained_count
from nas.search.trials_table import ESTIMATE_COLUMN, ranking_value, score_label, winner_key

LOG_EVERY = 5  # trained trials between two progress lines when stderr is not a terminal


def trial_status(t: FrozenTrial) -> Status:
    """COMPLETE, PRUNED, FAIL, REJECTED, RUNNING or WAITING for a stored trial. A FAIL left by a
    killed process (no status attribute) is reported as INTERRUPTED: it was queued again."""
    status = t.user_attrs.get("status")
    if t.state == TrialState.PRUNED:
        return Status.PRUNED
    if t.state == TrialState.COMPLETE:
        return status if status in (Status.COMPLETE, Status.REJECTED) else Status.COMPLETE
    if t.state == TrialState.FAIL:
        return Status.FAIL if status == Status.FAIL else Status.INTERRUPTED
    return Status(t.state.name)


def status_counts(study) -> dict[str, int]:
    """How many stored trials are COMPLETE, PRUNED, FAIL (training failed) and REJECTED."""
    counts = {Status.COMPLETE: 0, Status.PRUNED: 0, Status.FAIL: 0, Status.REJECTED: 0}
    for t in study.get_trials(deepcopy=False):
        status = trial_status(t)
        if status in counts:
            counts[status] += 1
    return counts


def best_under_budget(trials: list[FrozenTrial], budget_ms: float) -> FrozenTrial | None:
    """The winner among stored trials: the completed trial within the budget first in
    `nas.search.trials_table.winner_key` order (the same rule as the run folder's `best_row`)."""
    ok = [t for t in trials if trial_status(t) == Status.COMPLETE and t.user_attrs.get("latency_ms", 1e9) <= budget_ms]
    return min(ok, key=lambda t: winner_key(t.user_attrs, t.user_attrs["latency_ms"], t.number)) if ok else None


class SearchProgress:
    """Progress of a search of `trials` trained trials under `budget_ms` milliseconds, ranked by
    `score` ("imagenet-estimate" or "proxy", as `--score` resolved). On a terminal, a tqdm bar
    with the counts and the best score in its postfix; when stderr is not a terminal (a log), one
    line every `every` trained trials and one at the end instead, never carriage returns."""

    def __init__(self, trials: int, budget_ms: float, score: str, enabled: bool = True, recovered: int = 0,
                 every: int = LOG_EVERY):
        self.trials, self.budget_ms, self.every = trials, budget_ms, max(1, every)
        self.score_name = score_label(ESTIMATE_COLUMN if score == "imagenet-estimate" else "accuracy")
        self.as_lines = enabled and not _is_terminal(sys.stderr)
        self.bar = bar(total=trials, desc="search", unit="trial", enabled=enabled and not self.as_lines,
                       dynamic_ncols=True)
        self.recovered = recovered
        self._logged: int | None = None  # trained count of the last line written
        self._started = time.monotonic()

    def update(self, study, counts: dict[str, int], final: bool = False) -> None:
        trained = min(trained_count(counts), self.trials)
        best = best_under_budget(study.get_trials(deepcopy=False), self.budget_ms)
        fields = {"done": counts[Status.COMPLETE], "pruned": counts[Status.PRUNED], "failed": counts[Status.FAIL],
                  "rejected": counts[Status.REJECTED], f"best {self.score_name}": self._shown(best)}
        if self.as_lines:
            due = self._logged is None or trained >= self._logged + self.every or (final and trained != self._logged)
            if due:
                self._logged = trained
                elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self._started))
                print(f"search: {trained}/{self.trials} trials trained, "
                      + ", ".join(f"{k} {v}" for k, v in fields.items()) + f" [{elapsed}]",
                      file=sys.stderr, flush=True)
            return
        self.bar.n = trained
        self.bar.set_postfix(ordered_dict=fields, refresh=False)
        self.bar.refresh()

    def _shown(self, best: FrozenTrial | None) -> str:
        """The best trial's score as the reports write it: the estimate in percent, else the
        proxy accuracy 0..1; "-" before any completed trial fits the budget."""
        if best is None:
            return "-"
        value = ranking_value(best.user_attrs)
        return f"{value:.1f}%" if ESTIMATE_COLUMN in best.user_attrs else f"{value:.3f}"

    def close(self, study) -> None:
        self.update(study, status_counts(study), final=True)
        self.bar.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
