"""The search progress bar: trained trials done, pruned, rejected, best accuracy under budget."""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

from nas.progress import bar
from nas.rundir import Status, winner_key
from nas.search.config import SearchConfig
from nas.search.policy import trained_count


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
    `nas.rundir.winner_key` order (the same rule as the run folder's `best_row`)."""
    ok = [t for t in trials if trial_status(t) == Status.COMPLETE and t.user_attrs.get("latency_ms", 1e9) <= budget_ms]
    return min(ok, key=lambda t: winner_key(t.user_attrs, t.user_attrs["latency_ms"], t.number)) if ok else None


class SearchProgress:
    """A tqdm bar over trained trials (total = config.trials) with the counts in its postfix."""

    def __init__(self, config: SearchConfig, enabled: bool = True, recovered: int = 0):
        self.config = config
        self.bar = bar(total=config.trials, desc="search", unit="trial", enabled=enabled, dynamic_ncols=True)
        self.recovered = recovered

    def update(self, study, counts: dict[str, int]) -> None:
        self.bar.n = min(trained_count(counts), self.config.trials)
        best = best_under_budget(study.get_trials(deepcopy=False), self.config.budget_ms)
        self.bar.set_postfix(done=counts[Status.COMPLETE], pruned=counts[Status.PRUNED], failed=counts[Status.FAIL],
                             rejected=counts[Status.REJECTED],
                             best=f"{best.user_attrs['accuracy_epochs'][-1]:.3f}" if best else "-",
                             refresh=False)
        self.bar.refresh()

    def close(self, study) -> None:
        self.update(study, status_counts(study))
        self.bar.close()
