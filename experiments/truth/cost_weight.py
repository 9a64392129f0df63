"""Would the search rank better in its decision band if the shipped ImageNet estimate leaned less
on cost? The estimate is top1 = c0 + cost(params, madds, rho) + proxy(accuracy); this scales the
cost terms by lambda (1 = the shipped estimate, 0 = proxy accuracy alone) and prints Kendall tau:

- on each truth set (the proxy's validation accuracy, as the search sees it, at each seed,
  against the mean long-recipe test accuracy);
- on the 53-network yardstick (in-sample: the shipped fit) and on the 11 kept-aside networks
  (experiments/proxy_fidelity/held_out), where the published ImageNet top-1 is the truth.

    python experiments/truth/cost_weight.py experiments/truth/pixel-40-60 experiments/truth/pixel-20-30
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from nas.estimate import _features, fit_estimate
from nas.proxy.networks import load_networks

FIDELITY = Path(__file__).resolve().parents[1] / "proxy_fidelity"
LAMBDAS = np.round(np.arange(0, 1.01, 0.1), 2)


def proxy_cost_coefficients() -> np.ndarray:
    """The proxy+cost fit of the yardstick, the estimate the search shipped when this was measured
    (issue 34 added a block prior to the shipped one since)."""
    proxy = pd.read_csv(FIDELITY / "default" / "accuracies.csv").set_index("name")["proxy_accuracy"]
    nets = load_networks()
    return np.array(fit_estimate("proxy+cost", nets, [proxy[n.name] for n in nets]).coefficients)


def scores(params, madds, resolution, proxy, lam: float) -> np.ndarray:
    coefficients = proxy_cost_coefficients()
    coefficients[1:4] *= lam  # log params, log madds, log resolution
    x = _features("proxy+cost", list(params), list(madds), list(np.broadcast_to(resolution, len(params))), list(proxy))
    return x @ coefficients


def results(folder: Path, label: str, column: str) -> pd.DataFrame:
    rows = pd.read_csv(folder / "recipes" / label / "results.csv")
    return rows[rows["status"] == "ok"].pivot_table(index="name", columns="seed", values=column)


def tau(score, truth) -> float:
    return round(float(kendalltau(score, truth).statistic), 3)


def main(folders: list[str]) -> None:
    yard = pd.read_csv(FIDELITY / "default" / "accuracies.csv")
    kept = pd.read_csv(FIDELITY / "held_out" / "accuracies.csv")
    table = pd.DataFrame({"lambda": LAMBDAS})
    table["yardstick (53)"] = [tau(scores(yard.params, yard.madds, yard.resolution, yard.proxy_accuracy, lam), yard.top1)
                               for lam in LAMBDAS]
    table["kept aside (11)"] = [tau(scores(kept.params, kept.madds, kept.resolution, kept.proxy_accuracy, lam), kept.top1)
                                for lam in LAMBDAS]
    for folder in map(Path, folders):
        nets = pd.read_csv(folder / "networks.csv").set_index("name")
        long = results(folder, "long", "test_accuracy")
        truth = long[long.notna().all(axis=1)].mean(axis=1)
        proxy = results(folder, "default", "val_accuracy")
        for seed in proxy.columns:
            p = proxy[seed].dropna()
            p = p[p.index.isin(truth.index)]
            n = nets.loc[p.index]
            table[f"{folder.name} seed {seed} ({len(p)})"] = [
                tau(scores(n.params, n.madds, 224, p, lam), truth[p.index]) for lam in LAMBDAS]
    print(table.to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1:])
