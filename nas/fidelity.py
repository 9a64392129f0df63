"""Proxy fidelity: how well a proxy recipe ranks networks the way published ImageNet training does.

    from nas.fidelity import load_networks, run_fidelity
    from nas.recipe import load_recipe
    result = run_fidelity(load_recipe(), load_networks(), "runs/fidelity/proxy_recipe")

The yardstick is `nas/_data/imagenet_top1/imagenet_top1.yaml`: 53 MobileNet V1/V2/V3 networks
at several widths and resolutions with their published ImageNet top-1 (%). Each is built exactly
as published (`nas.transforms.scale_like` at its width and scaling, `apply_variant`, its resolution), trained once
with the recipe (`nas.train.train_arch`), and its proxy accuracy (0..1, validation split) is
compared with its top-1 by three statistics:
- Kendall tau and Spearman rho over all networks (scipy; tau-b, ties counted as scipy does);
- matched-latency pairs: over every pair whose predicted Pixel latencies (ms) lie within
  +-25 % of their mean, |La - Lb| <= 0.25 * (La + Lb) / 2, and whose top-1 differ, the share the
  score orders like top-1 (a tie in the score counts 1/2). That is the question a
  latency-constrained search asks. The shipped file has 184 such pairs, 183 with distinct top-1;
- resolution pairs: the same share over pairs of one network (base, width) at two resolutions,
  so a resolution-blind proxy scores 1/2.
The same figures are given for three zero-cost scores a trained proxy has to beat: predicted
Pixel latency, parameter count and multiply-adds, and for two fitted ImageNet-top-1 estimates
(least squares, cross-validated leave-one-out and leave-one-family-out): `cost-only` on
[1, log params, log madds, log resolution] and `proxy+cost` on the same plus the proxy accuracy
and its logit, so the proxy's added value shows. Their mean absolute error is in top-1 points.
Fitted on all networks, `proxy+cost` gives coefficients a search can use (`Estimate.predict`).

`run_fidelity` is resumable: every finished network appends one full CSV line (single write,
then fsync) to `OUT/accuracies.csv`, so a killed run keeps what it finished and a rerun trains
only the rest. An OUT folder belongs to one recipe: its `recipe.yaml` is written on the first
run, and a run with a different recipe is refused (pass another OUT) rather than mixing rows;
every row also carries the recipe's fingerprint. A row counts as done for a network of the same
name, base, width, scaling, variant and resolution, whatever its status: training is
deterministic, so a failed network (TrainingFailed) would fail again. CPU seconds are the
training process's user+system time for that network; the first network of each process also
pays for loading the data set.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import yaml
from scipy.stats import kendalltau, spearmanr

from nas.arch import Arch
from nas.baselines import load_reference, reference_names
from nas.cost import arch_cost
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.interrupt import workers_ignore_ctrl_c
from nas.latency.predict import predict_latency
from nas.paths import PACKAGE_DATA
from nas.plotting import figure, save_png
from nas.progress import bar
from nas.recipe import Recipe, recipe_to_dict
from nas.transforms import SCALINGS, apply_variant, scale_like

DEFAULT_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "imagenet_top1.yaml"
HELD_OUT_NETWORKS = PACKAGE_DATA / "imagenet_top1" / "held_out.yaml"  # kept aside: checks, never fits
FAMILIES = {"mobilenet_v1": "V1", "mobilenet_v2": "V2", "mobilenet_v3_large": "V3-Large",
            "mobilenet_v3_small": "V3-Small", "mnasnet_a1": "MnasNet-A1", "mnasnet_b1": "MnasNet-B1",
            "proxylessnas_gpu": "ProxylessNAS", "proxylessnas_mobile": "ProxylessNAS",
            "proxylessnas_mobile_14": "ProxylessNAS"}
LATENCY_TARGET = "pixel"
PAIR_TOLERANCE = 0.25  # matched-latency pairs: |La - Lb| <= 0.25 * mean(La, Lb)
ZERO_COST = ("latency", "params", "madds")
ACCURACY_COLUMNS = ("name", "family", "base", "width", "scaling", "variant", "resolution", "top1",
                    "params", "madds", "latency_ms", "proxy_accuracy", "epoch_accuracies",
                    "train_seconds", "wall_seconds", "cpu_seconds", "status", "recipe_fingerprint",
                    "finished_at")

_FIELDS = {"name", "base", "width", "resolution", "top1", "source", "scaling", "variant"}
_RESOLUTION_RANGE = (32, 1024)
_MAX_WIDTH = 4.0


# ---------------------------------------------------------------- the networks file

@dataclass(frozen=True)
class Network:
    """One published network: its entry in the networks file, its architecture as published and
    its zero-cost figures. top1: published ImageNet top-1 (%); latency_ms: predicted on Pixel."""

    name: str
    base: str
    width: float
    resolution: int
    top1: float
    source: str
    scaling: str
    variant: str | None
    arch: Arch
    params: int
    madds: int
    latency_ms: float

    @property
    def family(self) -> str:
        """V1, V2, V3-Large or V3-Small (the base's name for other bases)."""
        return FAMILIES.get(self.base, self.base)


def slug(name: str) -> str:
    """A file- and progress-bar-friendly architecture name: "V3-Large 1.0 r256" -> "v3-large-1.0-r256"."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def load_networks(path: str | Path | None = None) -> list[Network]:
    """The networks of a networks YAML file (None: the shipped imagenet_top1.yaml), in file order.
    Raises NasError naming the file, the entry and the field for anything malformed."""
    path = Path(path) if path is not None else DEFAULT_NETWORKS
    if not path.is_file():
        raise NasError(f"{path}: no such networks file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or set(data) != {"networks"} or not isinstance(data["networks"], list):
        raise NasError(f"{path}: expected a mapping with one key, networks: a list of entries")
    if not data["networks"]:
        raise NasError(f"{path}: networks: the list is empty; expected at least one entry")
    networks, seen = [], set()
    for i, entry in enumerate(data["networks"]):
        net = _network(entry, f"{path}: networks[{i}]")
        if net.name in seen:
            raise NasError(f"{path}: networks[{i}]: name: {net.name!r} is not allowed; "
                           f"names must be unique and it is already used")
        seen.add(net.name)
        networks.append(net)
    return networks


def _network(entry: Any, where: str) -> Network:
    """One validated entry, built as published."""
    if not isinstance(entry, dict):
        raise NasError(f"{where}: expected a mapping with {', '.join(sorted(_FIELDS))}, "
                       f"got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NasError(f"{where}: name: {name!r} is not allowed; expected a non-empty string")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise NasError(f"{where}: {unknown[0]}: unknown field; allowed fields are {', '.join(sorted(_FIELDS))}")

    def bad(field: str, allowed: str) -> NasError:
        return NasError(f"{where}: {field}: {entry.get(field)!r} is not allowed; expected {allowed}")

    base, width, res = entry.get("base"), entry.get("width"), entry.get("resolution")
    top1, source = entry.get("top1"), entry.get("source")
    scaling, variant = entry.get("scaling", "v3"), entry.get("variant")
    if base not in reference_names():
        raise bad("base", f"one of {', '.join(reference_names())}")
    if not _is_number(width) or not 0 < width <= _MAX_WIDTH:
        raise bad("width", f"a number in (0, {_MAX_WIDTH:g}]")
    lo, hi = _RESOLUTION_RANGE
    if not _is_int(res) or not lo <= res <= hi:
        raise bad("resolution", f"an integer in [{lo}, {hi}] (pixels)")
    if not _is_number(top1) or not 0 < top1 <= 100:
        raise bad("top1", "a number in (0, 100] (ImageNet top-1, %)")
    if not isinstance(source, str) or not source.strip():
        raise bad("source", "a non-empty string naming where top1 was read")
    if scaling not in SCALINGS:
        raise bad("scaling", f"one of {', '.join(SCALINGS)}")
    if variant is not None and (not isinstance(variant, str) or not variant):
        raise bad("variant", "relu, minimalistic or hswish_from_N")
    try:
        arch = apply_variant(scale_like(load_reference(base), float(width), scaling), variant)
    except NasError as e:
        raise NasError(f"{where}: {e}") from None
    arch = dataclasses.replace(arch, name=slug(name), resolution=res)
    cost = arch_cost(arch)
    return Network(name, base, float(width), res, float(top1), source, scaling, variant, arch,
                   cost.params, cost.madds, predict_latency(arch, LATENCY_TARGET).latency_ms)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def select(networks: list[Network], only: Sequence[str]) -> list[Network]:
    """The networks whose name contains any of `only` (case-insensitive); all of them if `only`
    is empty. Raises NasError for a substring that matches nothing."""
    if not only:
        return networks
    for part in only:
        if not any(part.lower() in n.name.lower() for n in networks):
            raise NasError(f"--only {part!r} matches no network; names are like "
                           f"{', '.join(repr(n.name) for n in networks[:3])}")
    return [n for n in networks if any(p.lower() in n.name.lower() for p in only)]


# ---------------------------------------------------------------- statistics

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


def zero_cost_scores(networks: Sequence[Network]) -> dict[str, list[float]]:
    """The free scores of every network: predicted Pixel latency (ms), parameters, multiply-adds."""
    return {"latency": [n.latency_ms for n in networks], "params": [float(n.params) for n in networks],
            "madds": [float(n.madds) for n in networks]}


def zero_cost_fidelity(networks: Sequence[Network]) -> dict[str, Fidelity]:
    """The fidelity of each score that needs no training on `networks`: predicted latency,
    parameters, multiply-adds and the cross-validated cost-only top-1 estimate."""
    top1, pairs = [n.top1 for n in networks], matched_pairs([n.latency_ms for n in networks])
    res = resolution_pairs(networks)
    scores = {k: rank_fidelity(s, top1, pairs, res) for k, s in zero_cost_scores(networks).items()}
    for label, pred in held_out_estimates(networks, None, ("cost-only",)).items():
        scores[label] = rank_fidelity(pred, top1, pairs, res, estimate=True)
    return scores


# ---------------------------------------------------------------- the fitted top-1 estimate

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


# ---------------------------------------------------------------- evaluation of one recipe

def evaluate(networks: Sequence[Network], proxy: dict[str, float], fitted: Sequence[Estimate] = ()) -> dict:
    """Every statistic of the proxy accuracies `proxy` (network name -> 0..1; networks missing
    from it are left out) next to the zero-cost scores and the fitted estimates, as plain data:
    {"networks", "matched_pairs", "resolution_pairs", "scores": {score: Fidelity dict},
    "held_out": {name: {estimate: top-1 %}}, "estimates": {model: Estimate dict}}.

    With `fitted` (estimates fitted on other networks, e.g. the shipped ones), those are scored
    as "MODEL (fitted elsewhere)" instead, and nothing is fitted on these networks: the check
    that a fit generalises to networks kept aside from it."""
    nets = [n for n in networks if n.name in proxy]
    acc = [proxy[n.name] for n in nets]
    top1, pairs, res = [n.top1 for n in nets], matched_pairs([n.latency_ms for n in nets]), resolution_pairs(nets)
    scores = {"proxy": rank_fidelity(acc, top1, pairs, res)}
    scores.update({k: rank_fidelity(s, top1, pairs, res) for k, s in zero_cost_scores(nets).items()})
    held_out: dict[str, dict[str, float]] = {n.name: {} for n in nets}
    if fitted:
        predictions = {f"{e.model} (fitted elsewhere)": [e.predict(n.params, n.madds, n.resolution, a)
                                                         for n, a in zip(nets, acc)] for e in fitted}
    else:
        predictions = held_out_estimates(nets, acc)
    for label, pred in predictions.items():
        scores[label] = rank_fidelity(pred, top1, pairs, res, estimate=True)
        for n, p in zip(nets, pred):
            held_out[n.name][label] = round(float(p), 3)
    estimates = {m: dataclasses.asdict(fit_estimate(m, nets, acc)) for m in MODELS
                 if not fitted and len(nets) > len(MODELS[m])}
    return {"networks": len(nets), "matched_pairs": len(pairs), "resolution_pairs": len(res),
            "scores": {k: dataclasses.asdict(v) for k, v in scores.items()},
            "held_out": held_out, "estimates": estimates}


# ---------------------------------------------------------------- training, resumable

def recipe_fingerprint(recipe: Recipe) -> str:
    """12 hex digits that change with any knob of the recipe."""
    text = json.dumps(recipe_to_dict(recipe), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_workers(workers: int) -> int:
    """`workers` if it is an integer in [1, CPU count]; NasError otherwise."""
    cpus = os.cpu_count() or 1
    if not _is_int(workers) or not 1 <= workers <= cpus:
        raise NasError(f"workers: {workers!r} is not allowed; expected an integer in [1, {cpus}] "
                       f"(this machine's CPU count)")
    return workers


def _claim_out_dir(out: Path, recipe: Recipe) -> None:
    """Create `out` for `recipe`, or check that it already belongs to `recipe`."""
    out.mkdir(parents=True, exist_ok=True)
    path, mine = out / "recipe.yaml", recipe_to_dict(recipe)
    if not path.exists():
        write_text_atomic(path, yaml.safe_dump(mine, sort_keys=False))
        return
    theirs = yaml.safe_load(path.read_text()) or {}
    diff = [f"{k}: {theirs.get(k)!r} -> {v!r}" for k, v in mine.items() if theirs.get(k) != v]
    if diff:
        raise NasError(f"{out}: holds results of another recipe ({'; '.join(diff)}); "
                       f"pass another --out or delete the folder")


def read_accuracies(path: str | Path) -> list[dict]:
    """The rows of an accuracies.csv (strings as written); [] if there is none. A line cut short
    (no trailing newline, wrong column count) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    rows = list(csv.DictReader(lines))
    return [r for r in rows if None not in r and None not in r.values()]


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that has no newline (a write cut short) so the next row starts on its own."""
    if path.exists():
        text = path.read_text()
        if text and not text.endswith("\n"):
            write_text_atomic(path, text[:text.rfind("\n") + 1])


def _append_row(path: Path, row: dict) -> None:
    """Append one CSV line in a single write, then fsync: a kill leaves all of it or none."""
    if not path.exists():
        write_text_atomic(path, ",".join(ACCURACY_COLUMNS) + "\n")
    buf = io.StringIO()
    csv.DictWriter(buf, ACCURACY_COLUMNS, lineterminator="\n").writerow(row)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, buf.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_network(row: dict, net: Network) -> bool:
    return (row["name"] == net.name and row["base"] == net.base and float(row["width"]) == net.width
            and row["scaling"] == net.scaling and (row["variant"] or None) == net.variant
            and int(row["resolution"]) == net.resolution)


def _train(arch: Arch, recipe: Recipe):
    """The proxy training (a seam tests replace); imported late so listing networks needs no torch."""
    from nas.train import train_arch

    return train_arch(arch, recipe)


def train_network(net: Network, recipe: Recipe) -> dict:
    """Train one network with `recipe`; its accuracies.csv row (TrainingFailed gives status
    "failed: ..." and no accuracy)."""
    from nas.train import TrainingFailed

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = _train(net.arch, recipe)
        status, acc, epochs, seconds = "ok", result.accuracy, result.epochs, result.seconds
    except TrainingFailed as e:
        status, acc, epochs, seconds = f"failed: {e}", None, [], None
    return {"name": net.name, "family": net.family, "base": net.base, "width": net.width,
            "scaling": net.scaling, "variant": net.variant or "", "resolution": net.resolution,
            "top1": net.top1, "params": net.params, "madds": net.madds, "latency_ms": round(net.latency_ms, 4),
            "proxy_accuracy": "" if acc is None else acc,
            "epoch_accuracies": json.dumps([round(a, 6) for a in epochs]),
            "train_seconds": "" if seconds is None else round(seconds, 3),
            "wall_seconds": round(time.perf_counter() - wall, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3),
            "status": status, "recipe_fingerprint": recipe_fingerprint(recipe),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def train_all(recipe: Recipe, networks: Sequence[Network], out_dir: str | Path, workers: int = 1,
              progress: bool = True) -> tuple[list[dict], int]:
    """Train every network of `networks` not yet in OUT/accuracies.csv with `recipe`, largest
    (multiply-adds) first, on `workers` processes. Returns (the rows of `networks` in their order,
    as read back: strings; how many networks were trained by this call)."""
    check_workers(workers)
    out = Path(out_dir)
    _claim_out_dir(out, recipe)
    path, fp = out / "accuracies.csv", recipe_fingerprint(recipe)
    _drop_partial_line(path)
    done = {}
    for row in read_accuracies(path):
        if row["recipe_fingerprint"] == fp:
            done[row["name"]] = row
    todo = sorted((n for n in networks if not (n.name in done and _same_network(done[n.name], n))),
                  key=lambda n: -n.madds)
    with bar(total=len(todo), desc="fidelity", unit="net", enabled=progress) as trained:
        for row in _train_each(todo, recipe, workers):
            _append_row(path, row)
            done[row["name"]] = {k: str(v) for k, v in row.items()}
            trained.set_postfix_str(f"{row['name']}: {row['proxy_accuracy'] or row['status']}", refresh=False)
            trained.update(1)
    return [done[n.name] for n in networks], len(todo)


def _train_each(todo: list[Network], recipe: Recipe, workers: int) -> Iterable[dict]:
    """Rows of the trained networks as they finish."""
    if workers == 1 or len(todo) <= 1:
        for net in todo:
            yield train_network(net, recipe)
        return
    # spawn: a fresh interpreter per worker, never a fork of a parent with torch threads running
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"))
    try:
        with workers_ignore_ctrl_c():  # the pool starts its processes at the first submit
            futures = [pool.submit(train_network, net, recipe) for net in todo]
        for future in as_completed(futures):
            yield future.result()
    except KeyboardInterrupt:  # the workers ignore it: stop them, their networks stay untrained
        for p in multiprocessing.active_children():
            p.terminate()
        raise
    finally:  # on an interrupt or error, queued networks are dropped, not trained unrecorded
        pool.shutdown(wait=False, cancel_futures=True)


def run_fidelity(recipe: Recipe, networks: Sequence[Network], out_dir: str | Path, workers: int = 1,
                 progress: bool = True, networks_file: str | Path | None = None,
                 fitted: Sequence[Estimate] = (), fitted_file: str | Path | None = None) -> dict:
    """Train (resumably) and score every network; write OUT/fidelity.json (returned), fidelity.csv
    (per network) and fidelity.png (proxy accuracy vs ImageNet top-1). `fitted` (read from
    `fitted_file`): estimates fitted elsewhere, scored here instead of fitting (see `evaluate`)."""
    rows, trained = train_all(recipe, networks, out_dir, workers, progress)
    proxy = {r["name"]: float(r["proxy_accuracy"]) for r in rows if r["status"] == "ok"}
    result = evaluate(networks, proxy, fitted)
    if fitted:
        result["fitted_file"] = str(fitted_file)
    cpu = {r["name"]: float(r["cpu_seconds"]) for r in rows}
    result.update({
        "networks_file": str(networks_file or DEFAULT_NETWORKS),
        "listed": len(networks), "trained_now": trained,
        "failed": {r["name"]: r["status"] for r in rows if r["status"] != "ok"},
        "recipe": recipe_to_dict(recipe), "recipe_fingerprint": recipe_fingerprint(recipe),
        "cpu_seconds": {"total": round(sum(cpu.values()), 3), "per_network": cpu},
    })
    out = Path(out_dir)
    write_text_atomic(out / "fidelity.json", json.dumps(result, indent=2) + "\n")
    _write_network_table(out / "fidelity.csv", networks, rows, result["held_out"])
    plot_fidelity(networks, proxy, result, out / "fidelity.png")
    return result


def _write_network_table(path: Path, networks: Sequence[Network], rows: list[dict],
                         held_out: dict[str, dict[str, float]]) -> None:
    import pandas as pd

    table = pd.DataFrame([{"name": n.name, "family": n.family, "width": n.width, "resolution": n.resolution,
                           "top1": n.top1, "params": n.params, "madds": n.madds,
                           "latency_ms": round(n.latency_ms, 3), "proxy_accuracy": r["proxy_accuracy"],
                           "cpu_seconds": r["cpu_seconds"], "status": r["status"], **held_out.get(n.name, {})}
                          for n, r in zip(networks, rows)])
    write_text_atomic(path, table.to_csv(index=False))


# ---------------------------------------------------------------- the scatter plot

_FAMILY_COLOURS = {"V1": "tab:gray", "V2": "tab:blue", "V3-Large": "tab:orange", "V3-Small": "tab:green",
                   "MnasNet-A1": "tab:red", "MnasNet-B1": "tab:purple", "ProxylessNAS": "tab:brown"}


def plot_fidelity(networks: Sequence[Network], proxy: dict[str, float], result: dict, path: Path) -> Path:
    """Proxy accuracy (%) vs published ImageNet top-1 (%), one colour per family; the title gives
    Kendall tau and the matched-latency pairs."""
    fig, ax = figure(8.0, 5.5)
    known = [f for f in FAMILIES.values() if any(n.family == f for n in networks)]
    for family in dict.fromkeys(known + [n.family for n in networks]):
        nets = [n for n in networks if n.family == family and n.name in proxy]
        if nets:
            ax.scatter([n.top1 for n in nets], [100 * proxy[n.name] for n in nets], s=30, alpha=0.8,
                       color=_FAMILY_COLOURS.get(family, "tab:olive"), edgecolor="black", linewidth=0.4,
                       label=f"{family} ({len(nets)})")
    if not proxy:
        ax.text(0.5, 0.5, "no trained networks", transform=ax.transAxes, ha="center", fontsize=12)
    s = result["scores"]["proxy"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    ax.set_title(f"proxy vs ImageNet top-1 on {result['networks']} networks: Kendall tau "
                 f"{fmt(s['kendall_tau'])}, matched-latency pairs {fmt(s['matched_pairs'])}")
    ax.set_xlabel("published ImageNet top-1 (%)")
    ax.set_ylabel("proxy validation accuracy (%)")
    ax.grid(alpha=0.3)
    if proxy:
        ax.legend(fontsize=8, loc="best")
    return save_png(fig, path)
