"""Which way of naming a winner picks the network that longer training rates best? Replays a
search's decision on each truth set with the trainings it already holds, at each seed s:

- one proxy:   the best default-recipe validation accuracy at seed s (a search without confirmation);
- confirmed:   its top 3 (plus V3-Large when in the band) by seed s, named by the mean over both
               default seeds (`--confirm 3 --confirm-seeds 1`);
- rung:        its top ceil(n/3) by seed s, named by their long-recipe validation accuracy at seed s
               (`--rungs 1`, with the 5x truth recipe standing in for a 3x rung);
- estimate:    the best ImageNet estimate from the default proxy at seed s (what the search ranks by);
- estimate, confirmed: its top 3 (plus V3-Large) by that estimate, named by the mean estimate over
               both default seeds (the default search: `--score imagenet-estimate --confirm 3`);
- estimate, confirmed by proxy: the same finalists named by their mean default validation accuracy;
- cost-only:   the best cost-only fit (no training).

Each pick is judged by the long-recipe *test* accuracy at the other seed (1 - s), which shares no
weights or draw with the decision, against the best network there: the regret in points.

    python experiments/truth/decisions.py experiments/truth/pixel-40-60 experiments/truth/pixel-20-30
"""

import math
import sys
from pathlib import Path

import pandas as pd

from nas.arch import load_arch
from nas.estimate import load_estimate


def results(folder: Path, label: str, column: str) -> pd.DataFrame:
    rows = pd.read_csv(folder / "recipes" / label / "results.csv")
    return rows[rows["status"] == "ok"].pivot_table(index="name", columns="seed", values=column)


def guarded(finalists: list[str], default: pd.DataFrame, archs: dict, est) -> str:
    """`--confirm-by accuracy` among the finalists whose mean estimate is not below V3-Large's (when
    V3-Large is one): the best mean proxy accuracy of those."""
    mean_estimate = {n: sum(est.predict(archs[n], default[s][n]) for s in default.columns) / default.shape[1]
                     for n in finalists}
    floor = mean_estimate.get("mobilenet_v3_large", float("-inf"))
    eligible = [n for n in finalists if mean_estimate[n] >= floor]
    return default.loc[eligible].mean(axis=1).idxmax()


def main(folders: list[str]) -> None:
    est = load_estimate()
    rows = []
    for folder in map(Path, folders):
        nets = pd.read_csv(folder / "networks.csv").set_index("name")
        default = results(folder, "default", "val_accuracy")
        long_val, long_test = results(folder, "long", "val_accuracy"), results(folder, "long", "test_accuracy")
        complete = default.dropna().index.intersection(long_val.dropna().index)
        if len(complete) < len(nets) or default.shape[1] < 2 or long_val.shape[1] < 2:
            print(f"{folder.name}: not every network has both seeds of both recipes yet; skipped", file=sys.stderr)
            continue
        archs = {n: load_arch(folder / "archs" / f"{n}.json") for n in nets.index}
        for s in (0, 1):
            judge = long_test[1 - s]
            ranked = default[s].sort_values(ascending=False)
            top3 = list(ranked.index[:3]) + [n for n in ("mobilenet_v3_large",) if n in ranked.index[3:]]
            promoted = list(ranked.index[:math.ceil(len(ranked) / 3)])
            estimate = {n: est.predict(archs[n], default[s][n]) for n in ranked.index}
            top_by_estimate = sorted(estimate, key=estimate.get, reverse=True)[:3]
            top_by_estimate += [n for n in ("mobilenet_v3_large",) if n in estimate and n not in top_by_estimate]
            cost = {n: est.cost_only.predict(nets.params[n], nets.madds[n], 224) for n in ranked.index}
            picks = {"one proxy": ranked.index[0],
                     "confirmed (top 3, 2 seeds)": default.loc[top3].mean(axis=1).idxmax(),
                     "rung (top 1/3 at 5x)": long_val[s][promoted].idxmax(),
                     "ImageNet estimate": max(estimate, key=estimate.get),
                     "estimate, confirmed": max(top_by_estimate, key=lambda n: sum(
                         est.predict(archs[n], default[seed][n]) for seed in (0, 1))),
                     "estimate, confirmed by proxy": default.loc[top_by_estimate].mean(axis=1).idxmax(),
                     "estimate, confirmed by proxy, guarded": guarded(top_by_estimate, default, archs, est),
                     "cost-only fit": max(cost, key=cost.get)}
            for how, pick in picks.items():
                rows.append({"set": folder.name, "seed": s, "decision": how, "pick": pick,
                             "regret_points": round(100 * (judge.max() - judge[pick]), 2),
                             "rank_of_pick": int((judge > judge[pick]).sum()) + 1, "networks": len(judge)})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if not table.empty:
        print()
        print(table.groupby("decision", sort=False)[["regret_points", "rank_of_pick"]].mean().round(2).to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
