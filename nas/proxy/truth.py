"""Truth sets: the networks a search must choose between, trained long, to measure any score against.

    from nas.proxy.truth import create_truth, train_recipe, score_truth
    truth = create_truth("experiments/truth/pixel-40-60", target="pixel", band=(40, 60),
                         resolution=224, sample=24)
    train_recipe(truth, load_recipe("experiments/truth/long_recipe.yaml"), "long", seeds=(0, 1))
    train_recipe(truth, load_recipe(), "default", seeds=(0, 1))
    result = score_truth(truth, truth_label="long", proxy_label="default")

A truth folder holds the networks of one decision band: `sample` architectures drawn uniformly
from a search space (seeded), all at one input resolution (or, "mixed", each at the resolution the
space drew), whose predicted latency on `target` lies in [lo, hi) ms, plus every baseline that falls
in the band at that resolution (mixed: at each of the space's resolutions). Its files:
- `truth.yaml`: how the networks were drawn (space, target, band, resolution, sample, seed);
- `networks.csv`: one row per network (name, origin, params, multiply-adds, predicted latency, the
  block string) and `archs/NAME.json`, each architecture as data;
- `recipes/LABEL/recipe.yaml` and `results.csv`: every network trained with one recipe at one or
  more seeds, one row per (network, seed), appended as it finishes (a killed run keeps what it
  finished, a rerun trains the rest). Accuracies are on the data set's *test* split, which no
  proxy trains or validates on; the validation accuracy is kept beside it.

`score_truth` ranks the networks by the mean test accuracy of the truth recipe over its seeds and
measures each score against that order: a trained proxy (per seed and averaged over seeds), the
ImageNet estimate a search ranks by, the cost-only fit, parameters, multiply-adds and predicted
latency. The statistics are Kendall tau, Spearman, the share of pairs ordered right, the overlap of
the top 5 and the truth accuracy lost by trusting the score's pick ("regret", points). The truth's
own noise is the agreement between two of its seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml
from scipy.stats import kendalltau, spearmanr

from nas.arch import Arch, load_arch, save_arch
from nas.baselines import baseline_names, load_baseline
from nas.blockstring import encode_blocks
from nas.cost import arch_cost
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.latency.predict import predict_latency
from nas.proxy.runner import read_rows, run_jobs
from nas.recipe import Recipe, recipe_to_dict
from nas.space import load_space, random_arch

RESULT_COLUMNS = ("key", "name", "seed", "test_accuracy", "val_accuracy", "epoch_accuracies",
                  "train_seconds", "cpu_seconds", "status", "recipe_fingerprint", "finished_at")
NETWORK_COLUMNS = ("name", "origin", "params", "madds", "latency_ms", "blocks")
TOP_K = 5
MAX_DRAWS = 200_000  # architectures drawn before a band is declared (nearly) empty
MIXED = "mixed"  # the resolution of a truth set whose networks keep the resolution the space drew


@dataclass(frozen=True)
class TruthNetwork:
    """One network of a truth set. origin: "sampled" or "baseline"; latency_ms: predicted on the
    truth set's target at its resolution."""

    name: str
    origin: str
    arch: Arch
    params: int
    madds: int
    latency_ms: float


@dataclass(frozen=True)
class Truth:
    """A truth folder: where it is, how its networks were drawn (`spec`) and the networks."""

    path: Path
    spec: dict
    networks: tuple[TruthNetwork, ...]


def parse_band(text: str) -> tuple[float, float]:
    """"40-60" -> (40.0, 60.0) milliseconds; NasError unless 0 <= lo < hi."""
    parts = str(text).removesuffix("ms").split("-")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        lo = hi = math.nan
    if len(parts) != 2 or not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise NasError(f"--band: {text!r} is not allowed; expected LO-HI in milliseconds with "
                       f"0 <= LO < HI, e.g. 40-60")
    return lo, hi


def check_label(label: str) -> str:
    """A recipe label (a folder name under TRUTH/recipes): letters, digits, '.', '_', '-', not
    starting with '.'; NasError otherwise."""
    import re

    if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", label):
        raise NasError(f"--label: {label!r} is not allowed; expected 1-64 letters, digits, '.', '_' or '-', "
                       f"not starting with '.'")
    return label


def _network(name: str, origin: str, arch: Arch, target: str) -> TruthNetwork:
    cost = arch_cost(arch)
    return TruthNetwork(name, origin, arch, cost.params, cost.madds,
                        predict_latency(arch, target).latency_ms)


def sample_band(space_path: str | Path | None, target: str, band: tuple[float, float], resolution: int | str,
                sample: int, seed: int = 0) -> list[TruthNetwork]:
    """`sample` distinct architectures drawn uniformly from the space (random.Random(seed)), each
    set to `resolution` pixels (MIXED: kept at the resolution the space drew), whose predicted
    latency on `target` lies in [lo, hi) ms, then every baseline inside the band at that
    resolution (MIXED: at each resolution of the space, named "NAME-rRHO"). NasError if the band
    is (nearly) empty."""
    space, rng, lo, hi = load_space(space_path), random.Random(seed), *band
    nets, seen = [], set()
    for _ in range(MAX_DRAWS):
        if len(nets) == sample:
            break
        arch = random_arch(space, rng)
        if resolution != MIXED:
            arch = dataclasses.replace(arch, resolution=resolution)
        key = (arch.resolution, arch.width_mult, arch.head.hidden, arch.blocks)
        if key in seen:
            continue
        seen.add(key)
        name = f"s{len(nets):03d}"
        net = _network(name, "sampled", dataclasses.replace(arch, name=name), target)
        if lo <= net.latency_ms < hi:
            nets.append(net)
    else:
        raise NasError(f"--band {lo:g}-{hi:g}: {len(nets)} of {sample} networks found in {MAX_DRAWS:,} "
                       f"draws at resolution {resolution} on {target}; widen the band")
    sides = space.resolution if resolution == MIXED else (resolution,)
    for name in baseline_names():
        for side in sides:
            arch = dataclasses.replace(load_baseline(name), resolution=side)
            if resolution == MIXED:
                arch = dataclasses.replace(arch, name=f"{name}-r{side}")
            net = _network(arch.name if resolution == MIXED else name, "baseline", arch, target)
            if lo <= net.latency_ms < hi:
                nets.append(net)
    return nets


def create_truth(out: str | Path, target: str, band: tuple[float, float], resolution: int | str, sample: int,
                 seed: int = 0, space_path: str | Path | None = None) -> Truth:
    """Draw the networks of a truth set into `out` (a new or empty folder) and return it; an `out`
    that already holds a truth set drawn the same way is returned as it is (NasError if drawn
    another way)."""
    out = Path(out)
    spec = {"space": str(space_path) if space_path else "mobilenet_v3 (shipped)", "target": target,
            "band_ms": [float(band[0]), float(band[1])], "resolution": resolution if resolution == MIXED else int(resolution),
            "sample": int(sample), "seed": int(seed)}
    if (out / "truth.yaml").exists():
        truth = load_truth(out)
        if truth.spec != spec:
            differ = [f"{k}: {truth.spec.get(k)!r} -> {v!r}" for k, v in spec.items() if truth.spec.get(k) != v]
            raise NasError(f"{out}: holds a truth set drawn another way ({'; '.join(differ)}); pass another --out")
        return truth
    nets = sample_band(space_path, target, band, resolution, sample, seed)
    for net in nets:
        save_arch(net.arch, out / "archs" / f"{net.name}.json")
    rows = [{"name": n.name, "origin": n.origin, "params": n.params, "madds": n.madds,
             "latency_ms": round(n.latency_ms, 3), "blocks": encode_blocks(n.arch.blocks, n.arch.stem.out)}
            for n in nets]
    import pandas as pd

    write_text_atomic(out / "networks.csv", pd.DataFrame(rows, columns=NETWORK_COLUMNS).to_csv(index=False))
    write_text_atomic(out / "truth.yaml", yaml.safe_dump(spec, sort_keys=False))  # last: marks it complete
    return load_truth(out)


def load_truth(path: str | Path) -> Truth:
    """Read a truth folder written by `create_truth`; NasError if it is not one."""
    path = Path(path)
    try:
        spec = yaml.safe_load((path / "truth.yaml").read_text())
        import pandas as pd

        table = pd.read_csv(path / "networks.csv")
        nets = tuple(TruthNetwork(str(r.name), str(r.origin), load_arch(path / "archs" / f"{r.name}.json"),
                                  int(r.params), int(r.madds), float(r.latency_ms))
                     for r in table.itertuples())
    except (OSError, ValueError, KeyError, AttributeError, yaml.YAMLError) as e:
        raise NasError(f"{path}: not a truth folder written by nas proxy truth ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(spec, dict) or not nets:
        raise NasError(f"{path}: not a truth folder written by nas proxy truth (no networks)")
    return Truth(path, spec, nets)


# ---------------------------------------------------------------- training recipes on a truth set

@dataclass(frozen=True)
class TruthJob:
    """One network trained with one recipe at one seed. key: "NAME@seedS"."""

    key: str
    name: str
    seed: int
    arch: Arch
    recipe: Recipe


def recipe_fingerprint(recipe: Recipe) -> str:
    """12 hex digits that change with any knob of the recipe but the seed."""
    import hashlib

    knobs = {k: v for k, v in recipe_to_dict(recipe).items() if k != "seed"}
    return hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:12]


def _claim(folder: Path, recipe: Recipe) -> None:
    """Create `folder` for `recipe`, or check that it already belongs to it (seed aside)."""
    path, mine = folder / "recipe.yaml", {k: v for k, v in recipe_to_dict(recipe).items() if k != "seed"}
    if not path.exists():
        write_text_atomic(path, yaml.safe_dump(mine, sort_keys=False))
        return
    theirs = yaml.safe_load(path.read_text()) or {}
    diff = [f"{k}: {theirs.get(k)!r} -> {v!r}" for k, v in mine.items() if theirs.get(k) != v]
    if diff:
        raise NasError(f"{folder}: holds results of another recipe ({'; '.join(diff)}); "
                       f"pass another --label")


def train_one(job: TruthJob) -> dict:
    """Train one job; its results.csv row (a failed training gives status "failed: ...")."""
    from nas.train import TrainingFailed, train_arch

    cpu = time.process_time()
    try:
        result = train_arch(job.arch, job.recipe, evaluate_test=True)
        status, test, val, epochs, seconds = ("ok", result.test_accuracy, result.accuracy, result.epochs,
                                              round(result.seconds, 3))
    except TrainingFailed as e:
        status, test, val, epochs, seconds = f"failed: {e}", "", "", [], ""
    return {"key": job.key, "name": job.name, "seed": job.seed, "test_accuracy": test, "val_accuracy": val,
            "epoch_accuracies": json.dumps([round(a, 6) for a in epochs]), "train_seconds": seconds,
            "cpu_seconds": round(time.process_time() - cpu, 3), "status": status,
            "recipe_fingerprint": recipe_fingerprint(job.recipe),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def train_recipe(truth: Truth, recipe: Recipe, label: str, seeds: Sequence[int] = (0,), workers: int = 1,
                 progress: bool = True) -> int:
    """Train every network of `truth` with `recipe` at each seed (its seed knob replaced) into
    TRUTH/recipes/LABEL/results.csv, largest (multiply-adds) first, seed by seed. Returns how many
    were trained now (what is already there is kept)."""
    folder = truth.path / "recipes" / check_label(label)
    folder.mkdir(parents=True, exist_ok=True)
    _claim(folder, recipe)
    order = sorted(truth.networks, key=lambda n: -n.madds)
    jobs = [TruthJob(f"{n.name}@seed{s}", n.name, s, n.arch, dataclasses.replace(recipe, seed=s))
            for s in seeds for n in order]
    return run_jobs(jobs, train_one, folder / "results.csv", RESULT_COLUMNS, workers, desc=label,
                    progress=progress, label=lambda r: f"{r['key']}: {r['test_accuracy'] or r['status']}")


def accuracies(truth: Truth, label: str, column: str = "test_accuracy") -> dict[int, dict[str, float]]:
    """seed -> {network name -> accuracy (0..1)} of the rows of TRUTH/recipes/LABEL that trained."""
    out: dict[int, dict[str, float]] = {}
    for r in read_rows(truth.path / "recipes" / label / "results.csv"):
        if r["status"] == "ok":
            out.setdefault(int(r["seed"]), {})[r["name"]] = float(r[column])
    return out


# ---------------------------------------------------------------- statistics against the truth

def compare(score: Sequence[float], truth: Sequence[float], k: int = TOP_K) -> dict:
    """How `score` orders networks against `truth` (both higher = better): Kendall tau-b,
    Spearman, share of pairs with distinct truth ordered right (score ties count 1/2), overlap of
    the top k (0..1), and regret: truth of the best network minus truth of the score's pick, in
    points (truth in 0..1 -> percentage points). A network whose score is NaN (not scored: a
    network the supernet does not hold) is left out; `networks` counts the others."""
    s, t = np.asarray(score, float), np.asarray(truth, float)
    scored = ~np.isnan(s)
    s, t = s[scored], t[scored]
    n = len(s)
    if n < 3 or np.ptp(s) == 0:
        return {"networks": n, "kendall_tau": None, "spearman": None, "pairs": None, "top_k": None,
                "regret_points": None}
    right, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if t[i] != t[j]:
                pairs += 1
                agree = np.sign(s[i] - s[j]) * np.sign(t[i] - t[j])
                right += 1.0 if agree > 0 else 0.5 if agree == 0 else 0.0
    k = min(k, n)
    top = len(set(np.argsort(-s, kind="stable")[:k]) & set(np.argsort(-t, kind="stable")[:k])) / k
    return {"networks": n, "kendall_tau": round(float(kendalltau(s, t).statistic), 4),
            "spearman": round(float(spearmanr(s, t).statistic), 4),
            "pairs": round(right / pairs, 4) if pairs else None, "top_k": round(top, 4),
            "regret_points": round(100 * float(t.max() - t[int(np.argmax(s))]), 3)}


def free_scores(nets: Sequence[TruthNetwork]) -> dict[str, list[float]]:
    """The scores that need no training: parameters, multiply-adds, predicted latency (ms) and the
    shipped cost-only ImageNet fit (top-1 %)."""
    from nas.estimate import load_estimate

    scores = {"params": [float(n.params) for n in nets], "madds": [float(n.madds) for n in nets],
              "latency": [n.latency_ms for n in nets]}
    cost_only = load_estimate().cost_only
    if cost_only is not None:
        scores["cost-only fit"] = [cost_only.predict(n.params, n.madds, n.arch.resolution) for n in nets]
    return scores


def proxy_scores(nets: Sequence[TruthNetwork], per_seed: dict[int, dict[str, float]], label: str,
                 recipe: Recipe | None) -> dict[str, list[float]]:
    """The trained scores of recipe `label`: its accuracy at each seed, the mean over its seeds,
    and the ImageNet estimate from that mean where the shipped estimate was fitted for the recipe."""
    from nas.estimate import estimate_for

    scores = {f"{label} seed {s}": [acc[n.name] for n in nets] for s, acc in sorted(per_seed.items())}
    if len(per_seed) > 1:
        scores[f"{label} mean of {len(per_seed)} seeds"] = [
            float(np.mean([acc[n.name] for acc in per_seed.values()])) for n in nets]
    if recipe is not None:
        try:
            est = estimate_for(recipe)
        except NasError:
            return scores
        for s, acc in sorted(per_seed.items()):
            scores[f"{label} seed {s} -> ImageNet estimate"] = [est.predict(n.arch, acc[n.name]) for n in nets]
        if len(per_seed) > 1:
            mean = scores[f"{label} mean of {len(per_seed)} seeds"]
            scores[f"{label} mean -> ImageNet estimate"] = [est.predict(n.arch, a) for n, a in zip(nets, mean)]
    return scores


def supernet_scores(nets: Sequence[TruthNetwork], folder: str | Path) -> dict[str, list[float]]:
    """{"supernet": the validation accuracy (0..1) of every network as a subnet of the supernet in
    `folder`, as a search would rank it, like the trained recipes' rows} (nas.supernet.SubnetEvaluator:
    weights sliced out, BatchNorm recalibrated). A network the supernet does not hold (MobileNetV1's
    "ds" blocks, a stage deeper than the space's) gets NaN, which `compare` leaves out."""
    from nas.supernet import SubnetEvaluator

    evaluator = SubnetEvaluator(folder)

    def accuracy(net: TruthNetwork) -> float:
        try:
            return evaluator.accuracy(net.arch)
        except NasError:
            return float("nan")

    return {"supernet": [accuracy(n) for n in nets]}


def load_label_recipe(truth: Truth, label: str) -> Recipe:
    """The recipe stored under TRUTH/recipes/LABEL (seed 0)."""
    from nas.recipe import recipe_from_record

    path = truth.path / "recipes" / label / "recipe.yaml"
    if not path.exists():
        raise NasError(f"{truth.path}: no recipe trained under label {label!r}; labels: "
                       f"{', '.join(sorted(p.name for p in (truth.path / 'recipes').glob('*'))) or 'none'}")
    return recipe_from_record(yaml.safe_load(path.read_text()) | {"seed": 0})


def score_truth(truth: Truth, truth_label: str, proxy_labels: Sequence[str] = (),
                min_seeds: int | None = None, supernet: str | Path | None = None) -> dict:
    """Every score against the truth (mean test accuracy of `truth_label` over the seeds each
    network has, on the networks with at least `min_seeds` of them, None: every seed trained so
    far) and trained by every proxy label at every seed (its validation accuracy, which is what a
    search sees), and with `supernet` (a folder of `nas supernet train`) each network's
    validation accuracy as its subnet: {"truth": ..., "noise": ..., "scores":
    {score: compare()}}. `noise` compares the truth's first two seeds with each other on the
    networks both trained (the best any score can hope for)."""
    per_seed = accuracies(truth, truth_label)
    if not per_seed:
        raise NasError(f"{truth.path}: nothing trained under {truth_label!r} yet")
    need = len(per_seed) if min_seeds is None else min_seeds
    names = {n.name for n in truth.networks if sum(n.name in acc for acc in per_seed.values()) >= need}
    # A proxy is read on its validation split: the accuracy a search ranks its trials by.
    proxies = {lab: accuracies(truth, lab, "val_accuracy") for lab in proxy_labels}
    for acc in proxies.values():
        for seed_acc in acc.values():
            names &= set(seed_acc)
    nets = [n for n in truth.networks if n.name in names]
    t = [float(np.mean([acc[n.name] for acc in per_seed.values() if n.name in acc])) for n in nets]
    scores = dict(free_scores(nets))
    for lab, acc in proxies.items():
        scores.update(proxy_scores(nets, acc, lab, load_label_recipe(truth, lab)))
    not_subnets = None
    if supernet is not None:
        scores.update(supernet_scores(nets, supernet))
        not_subnets = [n.name for n, a in zip(nets, scores["supernet"]) if np.isnan(a)]
    seeds = sorted(per_seed)
    noise = None
    if len(seeds) > 1:
        both = [n.name for n in nets if n.name in per_seed[seeds[0]] and n.name in per_seed[seeds[1]]]
        noise = compare([per_seed[seeds[0]][m] for m in both], [per_seed[seeds[1]][m] for m in both])
    return {"truth_label": truth_label, "truth_seeds": seeds, "min_seeds": need, "networks": len(nets),
            "truth": {n.name: round(100 * v, 3) for n, v in zip(nets, t)},
            "noise": noise, "scores": {k: compare(v, t) for k, v in scores.items()},
            **({"not_subnets": not_subnets} if not_subnets else {}),
            "other_seeds": _other_seeds(per_seed, proxies, nets)}


def _other_seeds(truth: dict[int, dict[str, float]], proxies: dict[str, dict[int, dict[str, float]]],
                 nets: Sequence[TruthNetwork]) -> dict[str, dict]:
    """Each proxy seed against the truth of the *other* seeds only (mean over them, on the networks
    they trained). A recipe and the truth at one seed share the initial weights, the validation
    split and part of the training draw, which flatters their agreement; this leaves that out."""
    out = {}
    for label, per_seed in proxies.items():
        for s, acc in sorted(per_seed.items()):
            others = [t for seed, t in truth.items() if seed != s]
            names = [n.name for n in nets if n.name in acc and any(n.name in t for t in others)]
            if others and names:
                mean = [float(np.mean([t[m] for t in others if m in t])) for m in names]
                out[f"{label} seed {s}"] = compare([acc[m] for m in names], mean)
    return out
