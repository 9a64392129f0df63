"""Stratified picks: the validation split of a training set, the test part of an image folder."""

from __future__ import annotations

import numpy as np

from nas.data.dataset import Dataset, check_seed
from nas.errors import NasError


def train_val_split(ds: Dataset, val_size: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve `val_size` images, stratified by class, out of `ds.train_*` (never the test set).

    Returns (train_x, train_y, val_x, val_y); the two parts are disjoint, cover ds.train_* and
    keep the original order. The same seed always picks the same images.
    """
    check_seed(seed)
    n = len(ds.train_y)
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) \
            or not 0 <= val_size < n:
        raise NasError(f"val_size {val_size!r} is not allowed; use an integer from 0 to {n - 1} "
                       f"(the training set of {ds.name} has {n} images)")
    val_idx = stratified_pick(ds.train_y, per_class_quota(ds.train_y, int(val_size)), seed)
    keep = np.ones(n, dtype=bool)
    keep[val_idx] = False
    return ds.train_x[keep], ds.train_y[keep], ds.train_x[val_idx], ds.train_y[val_idx]


def per_class_quota(y: np.ndarray, total: int) -> np.ndarray:
    """How many of `total` picks each class gets, proportional to its count in `y`
    (largest remainder, ties to the lower class id). Sums to exactly `total`."""
    counts = np.bincount(y)
    exact = total * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
    quota[order[: total - quota.sum()]] += 1
    return quota


def stratified_pick(y: np.ndarray, quota: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of `quota[c]` random images of each class c, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in enumerate(quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64)
