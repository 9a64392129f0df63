"""Rules both search engines obey, written once.

`first_prunable_report(recipe)`: the 0-based index of the first per-epoch report a pruner may act
on. A pruner that stops trials on reports which do not yet rank networks the way the final one
does stops good ones at random. Measured with `nas proxy fidelity` on the 53 published networks
(experiments/proxy_fidelity/README.md), the default recipe's reports after epochs 1, 2, 3 rank
them against its final accuracy with Kendall tau 0.73, 0.77 and 0.92 (against ImageNet top-1:
0.57, 0.61, 0.66, final 0.69). So the first half of a trial's reports are never pruned on:
Optuna's MedianPruner gets `n_warmup_steps`, SuccessiveHalving `min_resource`, and Ray's ASHA
`grace_period` (which counts finished epochs, hence + 1) from this one function.
"""

from __future__ import annotations

from nas.recipe import Recipe


def first_prunable_report(recipe: Recipe) -> int:
    """0-based index of the first epoch report a pruner may stop a trial on: epochs // 2
    (4 epochs -> the third report), at least 1 (a trial's first report is never acted on)."""
    return max(1, recipe.epochs // 2)
