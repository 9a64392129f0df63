"""An ImageNet top-1 estimate a search can optimise: proxy accuracy plus cost, fitted on the
published networks by `nas proxy fidelity`; and the least-squares fits themselves.

`cost-only` fits [1, log params, log madds, log resolution]; `proxy+cost` adds the proxy accuracy
and its logit. A `+prior` model adds what the block choices are worth, from published ablations
(nas/_data/imagenet_top1/ablations.yaml) rather than fitted: top-1 points per share of the blocks
with squeeze-excite and with h-swish/swish (`block_prior`); the other coefficients are fitted to
what the prior leaves. `cross_validated` predicts each network by a fit that did not see it (or
its family).

The proxy alone ranks the 53 published MobileNets with Kendall tau 0.69; least squares of their
top-1 on [1, log params, log multiply-adds, log resolution, proxy accuracy, logit of it] ranks
them with 0.89 held out (experiments/proxy_fidelity/README.md). The fit is only meaningful for
the recipe it was fitted with, since another recipe puts proxy accuracies on another scale: the
record carries that recipe, and `estimate_for(recipe)` refuses a recipe that differs in any knob
but those that do not change what is trained (seed, threads, data_dir, channels_last, compile,
eval_batch_size).

    from nas.estimate import estimate_for
    top1 = estimate_for(recipe).predict(arch, proxy_accuracy=0.31)   # %, ImageNet top-1

`nas proxy fidelity` writes `OUT/estimate.json`; the shipped one,
`nas/_data/imagenet_top1/estimate.json`, is experiments/proxy_fidelity/default/estimate.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import yaml

from nas.arch import Arch
from nas.cost import arch_cost
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.paths import PACKAGE_DATA
from nas.recipe import ADDED_KNOBS, Recipe, recipe_to_dict

if TYPE_CHECKING:  # annotations only: the networks file (nas.proxy) builds on this module
    from nas.proxy.networks import Network

# ---------------------------------------------------------------- the least-squares fits

BLOCK_FEATURES = ("se share", "hswish share", "k5+ share")


def block_features(arch: Arch) -> dict[str, float]:
    """What a search decides block by block, as shares of the blocks (0..1): with squeeze-excite,
    with h-swish or swish as their activation, with a depthwise kernel of 5 or more."""
    blocks = arch.blocks
    n = len(blocks)
    return {"se share": sum(bool(b.se) for b in blocks) / n,
            "hswish share": sum(b.act in ("hswish", "swish") for b in blocks) / n,
            "k5+ share": sum(b.kernel >= 5 for b in blocks) / n}


_COST = ("1", "log params", "log madds", "log resolution")
_PROXY = ("proxy", "logit proxy")
MODELS = {"cost-only": _COST, "proxy+cost": _COST + _PROXY,
          "cost+prior": _COST, "proxy+cost+prior": _COST + _PROXY}
# The block choices published ablations price: an ablation's `choice` -> the share it is worth points per
PRIOR_CHOICES = {"se": "se share", "act": "hswish share"}
PRIOR_FEATURES = tuple(PRIOR_CHOICES.values())
ABLATIONS_FILE = PACKAGE_DATA / "imagenet_top1" / "ablations.yaml"


@dataclass(frozen=True)
class Estimate:
    """A least-squares ImageNet top-1 estimate (%): top1 = coefficients . features, with the
    features of `MODELS[model]` (logs are natural; proxy is the proxy accuracy, 0..1), plus, for
    a `+prior` model, prior . (se share, hswish share) of the network's blocks (points at share 1)."""

    model: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    prior: tuple[float, ...] = ()  # points per share of PRIOR_FEATURES; () without a prior

    def predict(self, params: int, madds: int, resolution: int, proxy_accuracy: float | None = None,
                shares: dict[str, float] | None = None) -> float:
        """Estimated ImageNet top-1 (%) of a network with `params` parameters, `madds`
        multiply-adds, input side `resolution` pixels, proxy accuracy 0..1 (proxy models) and
        block shares `shares` (`block_features`; needed by a model with a prior)."""
        x = _features(self.model, [params], [madds], [resolution],
                      None if proxy_accuracy is None else [proxy_accuracy])[0]
        top1 = float(x @ np.asarray(self.coefficients))
        if self.prior:
            if shares is None:
                raise NasError(f"the {self.model} estimate needs the network's block shares")
            top1 += sum(p * shares[k] for k, p in zip(PRIOR_FEATURES, self.prior))
        return top1

    def predict_arch(self, arch: Arch, proxy_accuracy: float | None = None) -> float:
        """`predict` for the network `arch` at its own resolution."""
        cost = arch_cost(arch)
        return self.predict(cost.params, cost.madds, arch.resolution, proxy_accuracy, block_features(arch))


def _features(model: str, params: Sequence[float], madds: Sequence[float], resolution: Sequence[float],
              proxy: Sequence[float] | None) -> np.ndarray:
    """The design matrix of `model` (the prior's shares aside), one row per network."""
    cols = [np.ones(len(params)), np.log(params), np.log(madds), np.log(resolution)]
    if model.startswith("proxy+"):
        if proxy is None:
            raise NasError("the proxy+cost estimate needs a proxy accuracy")
        p = np.clip(np.asarray(proxy, float), 1e-3, 1 - 1e-3)  # logit stays finite at 0 or 1
        cols += [p, np.log(p / (1 - p))]
    return np.column_stack(cols)


def _design(model: str, networks: Sequence[Network], proxy: Sequence[float] | None) -> np.ndarray:
    return _features(model, [n.params for n in networks], [n.madds for n in networks],
                     [n.resolution for n in networks], proxy)


@dataclass(frozen=True)
class Ablation:
    """One published ablation: a network trained without and with one block choice in every block
    (`choice`: "se" or "act", ReLU -> swish), top-1 (%) and, where the choice adds any,
    parameters and multiply-adds of each (None: unchanged)."""

    id: str
    choice: str
    top1: tuple[float, float]
    params: tuple[float, float] | None
    madds: tuple[float, float] | None


@cache
def load_ablations(path: str | Path | None = None) -> tuple[Ablation, ...]:
    """The ablations file (None: the shipped one); NasError for a malformed one."""
    path = Path(path) if path is not None else ABLATIONS_FILE
    try:
        out = []
        for a in yaml.safe_load(path.read_text(encoding="utf-8"))["ablations"]:
            off, on = a["without"], a["with"]
            if a["choice"] not in PRIOR_CHOICES:
                raise ValueError(f"{a['id']}: choice {a['choice']!r} is not one of {', '.join(PRIOR_CHOICES)}")
            sized = off["params"] is not None
            out.append(Ablation(str(a["id"]), a["choice"], (float(off["top1"]), float(on["top1"])),
                                (float(off["params"]), float(on["params"])) if sized else None,
                                (float(off["madds"]), float(on["madds"])) if sized else None))
        return tuple(out)
    except OSError as e:
        raise NasError(f"{path}: cannot read the ablations: {e.strerror}") from None
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        raise NasError(f"{path}: not an ablations file ({e})") from None


def block_prior(coefficients: Sequence[float], ablations: Sequence[Ablation] | None = None) -> tuple[float, ...]:
    """Top-1 points a network gains per share of its blocks with each of PRIOR_FEATURES: the mean
    gain of the published ablations of that choice, less what the cost terms of `coefficients`
    ([1, log params, log madds, ...]) already credit for the parameters and multiply-adds it adds."""
    gains: dict[str, list[float]] = {c: [] for c in PRIOR_CHOICES}
    for a in ablations if ablations is not None else load_ablations():
        gain = a.top1[1] - a.top1[0]
        if a.params is not None:
            gain -= (coefficients[1] * np.log(a.params[1] / a.params[0])
                     + coefficients[2] * np.log(a.madds[1] / a.madds[0]))
        gains[a.choice].append(gain)
    return tuple(float(np.mean(gains[c])) if gains[c] else 0.0 for c in PRIOR_CHOICES)


def _shares(networks: Sequence[Network]) -> np.ndarray:
    return np.array([[block_features(n.arch)[k] for k in PRIOR_FEATURES] for n in networks])


def fit_estimate(model: str, networks: Sequence[Network], proxy: Sequence[float] | None) -> Estimate:
    """`model` (one of MODELS) fitted by least squares on all `networks`, whose proxy accuracies
    (0..1) are `proxy` (None for cost-only models). A `+prior` model fits the rest of top-1 once
    the block prior is taken off, and the prior nets out the cost terms' credit: the two are
    solved together by fixed-point iteration (it settles in a few rounds: the cost credit of the
    ablations is a small part of their gain)."""
    x, y = _design(model, networks, proxy), np.array([n.top1 for n in networks])
    if not model.endswith("+prior"):
        return Estimate(model, MODELS[model], tuple(float(c) for c in np.linalg.lstsq(x, y, rcond=None)[0]))
    shares, prior = _shares(networks), np.zeros(len(PRIOR_FEATURES))
    for _ in range(20):
        coef = np.linalg.lstsq(x, y - shares @ prior, rcond=None)[0]
        new = np.array(block_prior(coef))
        if np.allclose(new, prior, atol=1e-9):
            break
        prior = new
    return Estimate(model, MODELS[model], tuple(float(c) for c in coef), tuple(float(p) for p in prior))


def predict_networks(estimate: Estimate, networks: Sequence[Network], proxy: Sequence[float] | None) -> np.ndarray:
    """`estimate`'s top-1 (%) of each of `networks` at proxy accuracies `proxy`."""
    top1 = _design(estimate.model, networks, proxy) @ np.asarray(estimate.coefficients)
    return top1 + (_shares(networks) @ np.asarray(estimate.prior) if estimate.prior else 0.0)


def cross_validated(model: str, networks: Sequence[Network], proxy: Sequence[float] | None,
                    groups: Sequence[str]) -> np.ndarray | None:
    """Held-out top-1 estimates (%): each network predicted by `model` fitted on the networks of
    the other groups (groups = names: leave-one-out; = families: leave-one-family-out). None
    when a fold has no more networks than features."""
    def pick(mask: np.ndarray, values: Sequence | None) -> list | None:
        return None if values is None else [v for v, m in zip(values, mask) if m]

    groups, out = np.asarray(groups), np.empty(len(networks))
    for g in np.unique(groups):
        held = groups == g
        if (~held).sum() <= len(MODELS[model]):
            return None
        est = fit_estimate(model, pick(~held, networks), pick(~held, proxy))
        out[held] = predict_networks(est, pick(held, networks), pick(held, proxy))
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


# ---------------------------------------------------------------- the shipped estimate a search ranks by

ESTIMATE_FILE = PACKAGE_DATA / "imagenet_top1" / "estimate.json"
MODEL = "proxy+cost+prior"  # the estimate a search ranks by (issue 34: it knows SE and h-swish)
SHIPPED_MODELS = ("proxy+cost", "proxy+cost+prior")  # what an estimate.json may hold
# Knobs that change how or where a trial runs, or its random draw, but not the accuracy scale.
FREE_KNOBS = ("seed", "threads", "data_dir", "channels_last", "compile", "eval_batch_size", "device")


@dataclass(frozen=True)
class ImagenetEstimate:
    """A fitted `proxy+cost` estimate and the recipe it belongs to. `fidelity`: its held-out
    figures on the networks it was fitted on (Kendall tau, matched pairs, MAE in top-1 points).
    `cost_only`: the cost-only fit on the same networks (files written before it was recorded
    have none)."""

    estimate: Estimate
    recipe_fingerprint: str
    recipe: dict
    networks: int
    fidelity: dict
    path: str
    cost_only: Estimate | None = None  # the cost-only fit on the same networks, for comparison

    def predict(self, arch: Arch, proxy_accuracy: float) -> float:
        """Estimated ImageNet top-1 (%) of `arch` (at its own resolution) from its proxy
        accuracy (0..1)."""
        return self.estimate.predict_arch(arch, proxy_accuracy)


def estimate_record(result: dict) -> dict:
    """The estimate.json record of one `run_fidelity` result (its fidelity.json dict)."""
    fit, cost = result["estimates"][MODEL], result["estimates"]["cost-only"]
    held_out = result["scores"].get(f"{MODEL} (leave-one-out)", {})
    return {"model": MODEL, "features": fit["features"], "coefficients": fit["coefficients"],
            **({"prior": dict(zip(PRIOR_FEATURES, fit["prior"]))} if fit.get("prior") else {}),
            "recipe_fingerprint": result["recipe_fingerprint"], "recipe": result["recipe"],
            "networks": result["networks"], "leave_one_out": held_out,
            "cost_only": {"features": cost["features"], "coefficients": cost["coefficients"]}}


def write_estimate(result: dict, path: str | Path) -> Path:
    """Write the estimate of a fidelity result to `path` (JSON, whole or not at all)."""
    return write_text_atomic(path, json.dumps(estimate_record(result), indent=2) + "\n")


def load_estimate(path: str | Path | None = None) -> ImagenetEstimate:
    """Read an estimate.json (None: the shipped one). NasError for a missing or malformed file."""
    path = Path(path) if path is not None else ESTIMATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        coefficients, model = tuple(float(c) for c in data["coefficients"]), data["model"]
        if model not in SHIPPED_MODELS or len(coefficients) != len(MODELS[model]):
            raise ValueError(f"expected one of {', '.join(SHIPPED_MODELS)} with its coefficients")
        prior = tuple(float(data["prior"][k]) for k in PRIOR_FEATURES) if model.endswith("+prior") else ()
        cost_only = None
        if "cost_only" in data:
            cost = tuple(float(c) for c in data["cost_only"]["coefficients"])
            if len(cost) != len(MODELS["cost-only"]):
                raise ValueError(f"cost_only: expected {len(MODELS['cost-only'])} coefficients")
            cost_only = Estimate("cost-only", MODELS["cost-only"], cost)
        return ImagenetEstimate(Estimate(model, MODELS[model], coefficients, prior), str(data["recipe_fingerprint"]),
                                dict(data["recipe"]), int(data["networks"]), dict(data.get("leave_one_out", {})),
                                str(path), cost_only)
    except OSError as e:
        raise NasError(f"{path}: cannot read the ImageNet estimate: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise NasError(f"{path}: not an ImageNet estimate written by nas proxy fidelity ({e})") from None


def estimate_for(recipe: Recipe, path: str | Path | None = None,
                 option: str = "--score imagenet-estimate") -> ImagenetEstimate:
    """The estimate fitted for exactly this recipe; NasError naming the knobs that differ and the
    way out otherwise (the recipe it was fitted for, or scoring by proxy accuracy). `option`:
    the command-line option the error names."""
    est = load_estimate(path)
    mine = recipe_to_dict(recipe)
    fitted = ADDED_KNOBS | est.recipe  # knobs newer than the fit at the values it ran with
    differ = sorted(k for k in fitted.keys() | mine.keys()
                    if k not in FREE_KNOBS and fitted.get(k) != mine.get(k))
    if differ:
        shown = ", ".join(f"{k} {fitted.get(k)!r} (this search: {mine.get(k)!r})" for k in differ[:4])
        way_out = ("search with the recipe it was fitted for (the default when it shipped), or use --score proxy"
                   if option.startswith("--score") else "use the recipe it was fitted for")
        raise NasError(f"{option}: {est.path} was fitted for another recipe ({shown}); {way_out}")
    return est
