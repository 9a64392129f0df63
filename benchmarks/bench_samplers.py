"""Search efficiency: best score under the budget vs trained trials, per sampler.

    python benchmarks/bench_samplers.py --trials 16 --seeds 0 1 2 --budget 30ms \
        --out experiments/search_efficiency

Runs one small search per (sampler, seed) with the default recipe and no baselines or pruner, so the
samplers alone differ; writes curves.csv (one row per trained trial), table.md and curves.png.
The score is what the searches rank by (`--score`, default auto as in `nas search`: the ImageNet
top-1 estimate for the default recipe; `--score proxy`: the proxy validation accuracy).
Finished runs are reused, so an interrupted benchmark continues (and several invocations with
different --samplers or --seeds into one --out run side by side; the last one writes the table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from nas.recipe import load_recipe, recipe_to_dict
from nas.search import SearchConfig, parse_budget, prepare, run_search
from nas.search.trials_table import ranking_column, score_label
from nas.search.config import AUTO_SCORE, SCORES
from nas.search.policy import TRAINED
from nas.space import DEFAULT_SPACE


def best_so_far(trials: pd.DataFrame, budget_ms: float) -> list[float]:
    """Best score (the run's `ranking_column`) under budget after each trained trial (0 until one fits)."""
    column = ranking_column(trials)
    trained = trials[trials["state"].isin(TRAINED)].sort_values("number")
    best, curve = 0.0, []
    for _, row in trained.iterrows():
        if row["state"] == "COMPLETE" and row["latency_ms"] <= budget_ms:
            best = max(best, row[column])
        curve.append(best)
    return curve


def run_one(sampler: str, seed: int, args: argparse.Namespace) -> pd.DataFrame:
    out = Path(args.out) / "runs" / f"{sampler}-s{seed}"
    recipe = load_recipe(None, seed=seed)
    config = SearchConfig(target=args.target, budget_ms=parse_budget(args.budget), out=str(out),
                          space=str(DEFAULT_SPACE), recipe=recipe_to_dict(recipe), trials=args.trials,
                          seed=seed, sampler=sampler, pruner="none", baselines=(), score=args.score)
    config, _ = prepare(config, resume=False)
    run_search(config, progress=False)
    trials = pd.read_csv(out / "trials.csv")
    curve = best_so_far(trials, config.budget_ms)
    rejected = int((trials["state"] == "REJECTED").sum())
    return pd.DataFrame({"sampler": sampler, "seed": seed, "trial": range(1, len(curve) + 1),
                         "best_score": curve, "ranked_by": ranking_column(trials), "rejected": rejected})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "random"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--budget", default="30ms")
    p.add_argument("--target", default="pixel")
    p.add_argument("--out", default="experiments/search_efficiency")
    p.add_argument("--score", choices=(AUTO_SCORE, *SCORES), default=AUTO_SCORE,
                   help="What the searches rank by (as nas search --score).")
    args = p.parse_args()
    curves = pd.concat([run_one(s, seed, args) for s in args.samplers for seed in args.seeds])
    out = Path(args.out)
    curves.to_csv(out / "curves.csv", index=False)
    label = score_label(curves["ranked_by"].iloc[0])
    mean = curves.groupby(["sampler", "trial"])["best_score"].agg(["mean", "std"]).reset_index()
    checkpoints = sorted({max(1, args.trials // 4), args.trials // 2, args.trials})
    rows = []
    for sampler, g in mean.groupby("sampler"):
        cells = [f"{g[g['trial'] == t]['mean'].iloc[0]:.4f} ± {g[g['trial'] == t]['std'].iloc[0]:.4f}"
                 for t in checkpoints]
        rej = curves[curves["sampler"] == sampler].groupby("seed")["rejected"].first().mean()
        rows.append(f"| {sampler} | " + " | ".join(cells) + f" | {rej:.1f} |")
    header = "| sampler | " + " | ".join(f"best after {t}" for t in checkpoints) + " | rejected (mean) |"
    table = "\n".join([header, "|" + "---|" * (len(checkpoints) + 2), *rows])
    (out / "table.md").write_text(
        f"Best {label} under {args.budget} on {args.target} (mean ± std over seeds "
        f"{args.seeds}), the default recipe (experiments/proxy_recipe.yaml), no pruner, no baselines.\n\n"
        f"Command: `python benchmarks/bench_samplers.py --trials {args.trials} --seeds "
        f"{' '.join(map(str, args.seeds))} --budget {args.budget} --score {args.score}`\n\n{table}\n")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sampler, g in mean.groupby("sampler"):
        ax.plot(g["trial"], g["mean"], marker="o", label=sampler)
        ax.fill_between(g["trial"], g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0), alpha=0.2)
    ax.set_xlabel("trained trials")
    ax.set_ylabel(f"best {label} under {args.budget}")
    ax.set_title(f"Search efficiency on {args.target}, {len(args.seeds)} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    print(table)


if __name__ == "__main__":
    main()
