"""Proxy fidelity: how well a proxy recipe ranks networks the way published ImageNet training does.

    from nas.proxy.fidelity import run_fidelity
    from nas.proxy.networks import load_networks
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

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import yaml

from nas.arch import Arch
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.estimate import MODELS, Estimate, fit_estimate, held_out_estimates, predict_networks
from nas.proxy.networks import DEFAULT_NETWORKS, Network
from nas.proxy.plots import plot_fidelity
from nas.proxy.runner import check_workers, read_rows, run_jobs
from nas.proxy.stats import Fidelity, matched_pairs, rank_fidelity, resolution_pairs
from nas.recipe import ADDED_KNOBS, Recipe, recipe_to_dict

ZERO_COST = ("latency", "params", "madds")
ACCURACY_COLUMNS = ("name", "family", "base", "width", "scaling", "variant", "resolution", "top1",
                    "params", "madds", "latency_ms", "proxy_accuracy", "epoch_accuracies",
                    "train_seconds", "wall_seconds", "cpu_seconds", "status", "recipe_fingerprint",
                    "finished_at")


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
        predictions = {f"{e.model} (fitted elsewhere)": list(predict_networks(e, nets, acc)) for e in fitted}
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
    return _fingerprint(recipe_to_dict(recipe))


def _fingerprint(knobs: dict) -> str:
    return hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:12]


def _claim_out_dir(out: Path, recipe: Recipe) -> set[str]:
    """Create `out` for `recipe`, or check that it already belongs to `recipe`. A folder trained
    before a knob existed belongs to it when the knob's value is the one it ran with
    (`ADDED_KNOBS`). Returns the fingerprints its rows of `recipe` may carry: the recipe's, and
    that of the recipe without the knobs the folder predates."""
    out.mkdir(parents=True, exist_ok=True)
    path, mine = out / "recipe.yaml", recipe_to_dict(recipe)
    if not path.exists():
        write_text_atomic(path, yaml.safe_dump(mine, sort_keys=False))
        return {recipe_fingerprint(recipe)}
    theirs = yaml.safe_load(path.read_text()) or {}
    diff = [f"{k}: {(ADDED_KNOBS | theirs).get(k)!r} -> {v!r}" for k, v in mine.items()
            if (ADDED_KNOBS | theirs).get(k) != v]
    if diff:
        raise NasError(f"{out}: holds results of another recipe ({'; '.join(diff)}); "
                       f"pass another --out or delete the folder")
    older = {k: v for k, v in mine.items() if k in theirs}
    return {_fingerprint(mine), _fingerprint(older)}


def read_accuracies(path: str | Path) -> list[dict]:
    """The rows of an accuracies.csv (strings as written); [] if there is none. A line cut short
    (no trailing newline, wrong column count) is skipped."""
    return read_rows(path)


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


@dataclass(frozen=True)
class _Job:
    """One network of a fidelity run; key: its name (accuracies.csv's row key)."""

    key: str
    net: Network
    recipe: Recipe


def _train_job(job: _Job) -> dict:
    return train_network(job.net, job.recipe)


def train_all(recipe: Recipe, networks: Sequence[Network], out_dir: str | Path, workers: int = 1,
              progress: bool = True) -> tuple[list[dict], int]:
    """Train every network of `networks` not yet in OUT/accuracies.csv with `recipe`, largest
    (multiply-adds) first, on `workers` processes. Returns (the rows of `networks` in their order,
    as read back: strings; how many networks were trained by this call)."""
    check_workers(workers)
    out = Path(out_dir)
    fingerprints = _claim_out_dir(out, recipe)
    path = out / "accuracies.csv"

    def done() -> dict[str, dict]:
        return {r["name"]: r for r in read_accuracies(path) if r["recipe_fingerprint"] in fingerprints}

    before = done()
    todo = sorted((n for n in networks if not (n.name in before and _same_network(before[n.name], n))),
                  key=lambda n: -n.madds)
    trained = run_jobs([_Job(n.name, n, recipe) for n in todo], _train_job, path, ACCURACY_COLUMNS, workers,
                       desc="fidelity", progress=progress, skip_done=False,
                       label=lambda r: f"{r['name']}: {r['proxy_accuracy'] or r['status']}")
    rows = done()
    return [rows[n.name] for n in networks], trained


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

