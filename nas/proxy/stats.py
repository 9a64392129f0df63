"""Rank statistics of a score against a truth: Kendall tau, Spearman, pair agreement.

Matched-latency pairs are the pairs whose predicted latencies (ms) lie within +-25 % of their mean,
|La - Lb| <= 0.25 * (La + Lb) / 2: the question a latency-constrained search asks. Resolution
pairs are one network at two resolutions, so a resolution-blind score orders them half right.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas.proxy.networks import Network

PAIR_TOLERANCE = 0.25  # matched-latency pairs: |La - Lb| <= 0.25 * mean(La, Lb)


@dataclass(frozen=True)
class Fidelity:
    """How well one score ranks networks like their ImageNet top-1. kendall_tau, spearman in
    [-1, 1]; matched_pairs, resolution_pairs: share of pairs ordered right, 0..1; mae: mean absolute
    error in top-1 points (estimates only). None where undefined (too few networks or pairs)."""

    kendall_tau: float | None
    spearman: float | None
    matched_pairs: float | None
    resolution_pairs: float | None
    mae: float | None = None


def matched_pairs(latency_ms: Sequence[float], tolerance: float = PAIR_TOLERANCE) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose latencies (ms) are within `tolerance` of their mean."""
    return [(i, j) for i, j in itertools.combinations(range(len(latency_ms)), 2)
            if abs(latency_ms[i] - latency_ms[j]) <= tolerance * (latency_ms[i] + latency_ms[j]) / 2]


def resolution_pairs(networks: Sequence[Network]) -> list[tuple[int, int]]:
    """Index pairs (i < j) of one network (base, width, scaling, variant) at two resolutions."""
    key = lambda n: (n.base, n.width, n.scaling, n.variant)
    return [(i, j) for i, j in itertools.combinations(range(len(networks)), 2)
            if key(networks[i]) == key(networks[j]) and networks[i].resolution != networks[j].resolution]


def pair_agreement(score: Sequence[float], top1: Sequence[float], pairs: Iterable[tuple[int, int]]
                   ) -> float | None:
    """Share of `pairs` with distinct top1 that `score` orders the same way (a score tie counts
    1/2); None if no pair has distinct top1."""
    right, n = 0.0, 0
    for i, j in pairs:
        truth = np.sign(top1[i] - top1[j])
        if truth == 0:
            continue
        n += 1
        agree = np.sign(score[i] - score[j]) * truth
        right += 1.0 if agree > 0 else 0.5 if agree == 0 else 0.0
    return right / n if n else None


def rank_fidelity(score: Sequence[float], top1: Sequence[float], pairs: Sequence[tuple[int, int]],
                  res_pairs: Sequence[tuple[int, int]] = (), estimate: bool = False) -> Fidelity:
    """The statistics of `score` against `top1` (%); with `estimate`, `score` is a top-1 estimate
    (%) and its mean absolute error is given too."""
    score, top1 = np.asarray(score, float), np.asarray(top1, float)
    constant = len(score) < 2 or np.ptp(score) == 0 or np.ptp(top1) == 0
    tau = None if constant else _finite(kendalltau(score, top1).statistic)
    rho = None if constant else _finite(spearmanr(score, top1).statistic)
    mae = float(np.mean(np.abs(score - top1))) if estimate and len(score) else None
    return Fidelity(tau, rho, pair_agreement(score, top1, pairs), pair_agreement(score, top1, res_pairs), mae)


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


