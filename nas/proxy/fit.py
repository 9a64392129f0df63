"""The fitted ImageNet top-1 estimates: least squares of top-1 on cost features (and a proxy).

`cost-only` fits [1, log params, log madds, log resolution]; `proxy+cost` adds the proxy accuracy
and its logit. `cross_validated` predicts each network by a fit that did not see it (or its family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from nas.errors import NasError
from nas.proxy.networks import Network

MODELS = {"cost-only": ("1", "log params", "log madds", "log resolution"),
          "proxy+cost": ("1", "log params", "log madds", "log resolution", "proxy", "logit proxy")}


@dataclass(frozen=True)
class Estimate:
    """A least-squares ImageNet top-1 estimate (%): top1 = coefficients . features, with the
    features of `MODELS[model]` (logs are natural; proxy is the proxy accuracy, 0..1)."""

    model: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]

    def predict(self, params: int, madds: int, resolution: int, proxy_accuracy: float | None = None) -> float:
        """Estimated ImageNet top-1 (%) of a network with `params` parameters, `madds`
        multiply-adds, input side `resolution` pixels and proxy accuracy 0..1 (proxy models)."""
        x = _features(self.model, [params], [madds], [resolution],
                      None if proxy_accuracy is None else [proxy_accuracy])[0]
        return float(x @ np.asarray(self.coefficients))


def _features(model: str, params: Sequence[float], madds: Sequence[float], resolution: Sequence[float],
              proxy: Sequence[float] | None) -> np.ndarray:
    """The design matrix of `model`, one row per network."""
    cols = [np.ones(len(params)), np.log(params), np.log(madds), np.log(resolution)]
    if model == "proxy+cost":
        if proxy is None:
            raise NasError("the proxy+cost estimate needs a proxy accuracy")
        p = np.clip(np.asarray(proxy, float), 1e-3, 1 - 1e-3)  # logit stays finite at 0 or 1
        cols += [p, np.log(p / (1 - p))]
    return np.column_stack(cols)


def _design(model: str, networks: Sequence[Network], proxy: Sequence[float] | None) -> np.ndarray:
    return _features(model, [n.params for n in networks], [n.madds for n in networks],
                     [n.resolution for n in networks], proxy)


def fit_estimate(model: str, networks: Sequence[Network], proxy: Sequence[float] | None) -> Estimate:
    """`model` ("cost-only" or "proxy+cost") fitted by least squares on all `networks`, whose proxy
    accuracies (0..1) are `proxy` (None for cost-only)."""
    x, y = _design(model, networks, proxy), np.array([n.top1 for n in networks])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return Estimate(model, MODELS[model], tuple(float(c) for c in coef))


def cross_validated(model: str, networks: Sequence[Network], proxy: Sequence[float] | None,
                    groups: Sequence[str]) -> np.ndarray | None:
    """Held-out top-1 estimates (%): each network predicted by `model` fitted on the networks of
    the other groups (groups = names: leave-one-out; = families: leave-one-family-out). None
    when a fold has no more networks than features."""
    x, y, groups = _design(model, networks, proxy), np.array([n.top1 for n in networks]), np.asarray(groups)
    out = np.empty(len(y))
    for g in np.unique(groups):
        held = groups == g
        if (~held).sum() <= x.shape[1]:
            return None
        out[held] = x[held] @ np.linalg.lstsq(x[~held], y[~held], rcond=None)[0]
    return out


def held_out_estimates(networks: Sequence[Network], proxy: Sequence[float] | None,
                       models: Iterable[str] = tuple(MODELS)) -> dict[str, np.ndarray]:
    """"MODEL (leave-one-out)" and "MODEL (leave-family-out)" -> held-out top-1 estimates (%) of
    `networks`, for each of `models` that has enough networks to fit."""
    cvs = {"leave-one-out": [n.name for n in networks], "leave-family-out": [n.family for n in networks]}
    out = {}
    for model in models:
        for cv, groups in cvs.items():
            pred = cross_validated(model, networks, proxy, groups) if networks else None
            if pred is not None:
                out[f"{model} ({cv})"] = pred
    return out


