"""How much of the proxy's ranking error is seed noise: seed 0 (default/) against seed 1
(seeds/seed1/), and the fidelity of their mean (what a 2-seed proxy would score).

    python experiments/proxy_fidelity/seeds/combine.py > experiments/proxy_fidelity/seeds/combined.txt
"""

from __future__ import annotations

from pathlib import Path

from scipy.stats import kendalltau, spearmanr

from nas.proxy.fidelity import evaluate, read_accuracies
from nas.proxy.networks import load_networks

HERE = Path(__file__).resolve().parent
RUNS = {"seed 0": HERE.parent / "default", "seed 1": HERE / "seed1"}


def main() -> None:
    nets = load_networks()
    acc = {label: {r["name"]: float(r["proxy_accuracy"]) for r in read_accuracies(d / "accuracies.csv")
                   if r["status"] == "ok"} for label, d in RUNS.items()}
    names = [n.name for n in nets if all(n.name in a for a in acc.values())]
    a0, a1 = ([acc[k][n] for n in names] for k in RUNS)
    diff = [abs(x - y) for x, y in zip(a0, a1)]
    print(f"{len(names)} networks in both runs")
    print(f"seed 0 vs seed 1: Kendall tau {kendalltau(a0, a1)[0]:.3f}, Spearman {spearmanr(a0, a1)[0]:.3f}, "
          f"mean |difference| {100 * sum(diff) / len(diff):.2f} points, max {100 * max(diff):.2f}")
    mean = {n: (acc["seed 0"][n] + acc["seed 1"][n]) / 2 for n in names}
    print("| proxy | Kendall tau | Spearman | matched pairs | resolution pairs |")
    print("|---|---|---|---|---|")
    for label, proxy in [*acc.items(), ("mean of both", mean)]:
        s = evaluate(nets, {n: proxy[n] for n in names})["scores"]["proxy"]
        print(f"| {label} | {s['kendall_tau']:.3f} | {s['spearman']:.3f} | {s['matched_pairs']:.3f} | "
              f"{s['resolution_pairs']:.3f} |")
    s = evaluate(nets, mean)["scores"]
    for k in ("proxy+cost (leave-one-out)", "proxy+cost (leave-family-out)"):
        print(f"{k}, mean of both seeds: tau {s[k]['kendall_tau']:.3f}, pairs {s[k]['matched_pairs']:.3f}, "
              f"MAE {s[k]['mae']:.2f}")


if __name__ == "__main__":
    main()
