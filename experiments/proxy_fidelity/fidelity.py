"""Ranking fidelity of the proxy: does the short recipe rank architectures like a longer one?

    # train every architecture with each recipe (rows append to accuracies.csv; reruns skip done rows)
    python experiments/proxy_fidelity/fidelity.py run --recipe long=experiments/proxy_recipe_long.yaml
    python experiments/proxy_fidelity/fidelity.py run --recipe default=experiments/proxy_recipe.yaml
    # Kendall tau / Spearman rho of every recipe against the reference
    python experiments/proxy_fidelity/fidelity.py summary --reference long

The architectures are the four shipped baselines plus `--random` samples of
search_spaces/mobilenet_v3.yaml drawn with `random.Random(--seed)`; they are saved to `archs/`.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import click
import pandas as pd
from scipy import stats

from nas.arch import Arch, save_arch
from nas.baselines import baseline_names, load_baseline
from nas.cost import arch_cost
from nas.recipe import load_recipe, recipe_to_dict
from nas.space import load_space, random_arch
from nas.train import TrainingFailed, train_arch

HERE = Path(__file__).resolve().parent
CSV = HERE / "accuracies.csv"
ARCH_DIR = HERE / "archs"


def fidelity_archs(n_random: int, seed: int) -> list[Arch]:
    """The baselines plus `n_random` uniform samples of the default space (same seed, same archs)."""
    rng = random.Random(seed)
    space = load_space()
    return [load_baseline(n) for n in baseline_names()] + [
        random_arch(space, rng, f"random_{i:02d}") for i in range(n_random)]


def _num(x: float) -> float | None:
    """A statistic rounded for JSON; None where it is undefined (e.g. a constant ranking)."""
    return None if x != x else round(float(x), 4)


def _done() -> set[tuple[str, str]]:
    if not CSV.is_file():
        return set()
    df = pd.read_csv(CSV)
    return set(zip(df["recipe"], df["arch"]))


@click.group()
def main() -> None:
    """Proxy ranking-fidelity experiment."""


@main.command()
@click.option("--recipe", "recipes", multiple=True, required=True,
              help="NAME=PATH of a recipe YAML; repeatable.")
@click.option("--random", "n_random", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random samples.")
def run(recipes: tuple[str, ...], n_random: int, seed: int) -> None:
    """Train every architecture with every recipe, appending one CSV row per trial."""
    archs = fidelity_archs(n_random, seed)
    for a in archs:
        save_arch(a, ARCH_DIR / f"{a.name}.json")
    done = _done()
    for spec in recipes:
        name, path = spec.split("=", 1)
        recipe = load_recipe(path)
        (HERE / "recipes").mkdir(exist_ok=True)
        (HERE / "recipes" / f"{name}.json").write_text(json.dumps(recipe_to_dict(recipe), indent=2) + "\n")
        for a in archs:
            if (name, a.name) in done:
                continue
            t0 = time.process_time()
            try:
                res = train_arch(a, recipe)
                acc, epochs, seconds, status = res.accuracy, res.epochs, res.seconds, "ok"
            except TrainingFailed as e:
                acc, epochs, seconds, status = float("nan"), [], float("nan"), f"failed: {e}"
            cost = arch_cost(a)
            row = {"recipe": name, "arch": a.name, "accuracy": acc,
                   "epochs": json.dumps([round(x, 4) for x in epochs]), "seconds": round(seconds, 2),
                   "cpu_seconds": round(time.process_time() - t0, 2), "status": status,
                   "width_mult": a.width_mult, "resolution": a.resolution, "blocks": len(a.blocks),
                   "madds": cost.madds, "params": cost.params}
            pd.DataFrame([row]).to_csv(CSV, mode="a", header=not CSV.is_file(), index=False)
            print(json.dumps(row), file=sys.stderr, flush=True)


# Not in the search space: no SE, no h-swish, other block types. Ranking them below the V3-style
# networks is easy, so tau is also reported without them.
OUTSIDE_SPACE = ("mobilenet_v1", "mobilenet_v2")


def _family_and_epoch_tau(df: pd.DataFrame, name: str, reference: str, archs: pd.Index) -> dict:
    """Kendall tau over the V3-style architectures only, and of each epoch's accuracy (what a
    pruner sees) against the reference's final accuracy."""
    ref = df[df["recipe"] == reference].set_index("arch")["accuracy"]
    own = df[df["recipe"] == name].set_index("arch")
    inside = [a for a in archs if a not in OUTSIDE_SPACE]
    per_epoch = pd.DataFrame(own.loc[archs, "epochs"].map(json.loads).tolist(), index=archs)
    return {"kendall_tau_v3_style_only": _num(stats.kendalltau(own.loc[inside, "accuracy"],
                                                               ref.loc[inside]).statistic),
            "archs_v3_style": len(inside),
            "kendall_tau_per_epoch": [_num(stats.kendalltau(per_epoch[e], ref.loc[archs]).statistic)
                                      for e in per_epoch.columns]}


@main.command()
@click.option("--reference", default="long", show_default=True, help="Recipe name ranked against.")
def summary(reference: str) -> None:
    """Kendall tau and Spearman rho of each recipe's ranking against the reference's; writes
    fidelity.json and prints a table."""
    df = pd.read_csv(CSV)
    df = df[df["status"] == "ok"]
    wide = df.pivot(index="arch", columns="recipe", values="accuracy")
    cpu = df.groupby("recipe")["cpu_seconds"].sum()
    rows = []
    for name in wide.columns.drop(reference):
        both = wide[[name, reference]].dropna()
        tau = stats.kendalltau(both[name], both[reference])
        rho = stats.spearmanr(both[name], both[reference])
        rows.append({"recipe": name, "archs": len(both), "kendall_tau": _num(tau.statistic),
                     "tau_p": _num(tau.pvalue), "spearman_rho": _num(rho.statistic),
                     "rho_p": _num(rho.pvalue), "cpu_seconds_total": round(float(cpu[name]), 1),
                     "cpu_seconds_per_arch": round(float(cpu[name]) / len(both), 1),
                     "mean_accuracy": round(float(both[name].mean()), 4),
                     **_family_and_epoch_tau(df, name, reference, both.index)})
    out = pd.DataFrame(rows).sort_values("cpu_seconds_total").drop(columns=["kendall_tau_per_epoch"])
    (HERE / "fidelity.json").write_text(json.dumps({"reference": reference, "results": rows}, indent=2) + "\n")
    wide.round(4).to_csv(HERE / "accuracy_by_recipe.csv")
    click.echo(out.to_string(index=False))
    click.echo()
    click.echo(wide.round(4).to_string())


if __name__ == "__main__":
    main()
