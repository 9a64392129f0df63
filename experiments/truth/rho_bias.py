"""Does the short default proxy overrate networks at a lower input resolution? In a mixed-rho truth
set, the mean rank of each rho's networks under the truth (long recipe, test split) and under the
default proxy (mean of its seeds, validation split), with every network's ranks.

    python experiments/truth/rho_bias.py experiments/truth/pixel-40-60-mixed
"""

import sys

import numpy as np
import pandas as pd

from nas.proxy.truth import accuracies, load_truth


def main(folder: str) -> None:
    truth = load_truth(folder)
    long, default = accuracies(truth, "long"), accuracies(truth, "default", "val_accuracy")
    nets = [n for n in truth.networks if all(n.name in a for a in [*long.values(), *default.values()])]
    table = pd.DataFrame({"name": [n.name for n in nets], "rho": [n.arch.resolution for n in nets],
                          "latency_ms": [round(n.latency_ms, 1) for n in nets],
                          "truth": [np.mean([a[n.name] for a in long.values()]) for n in nets],
                          "proxy": [np.mean([a[n.name] for a in default.values()]) for n in nets]})
    table["truth rank"] = table["truth"].rank(ascending=False)
    table["proxy rank"] = table["proxy"].rank(ascending=False)
    print(table.sort_values("truth", ascending=False).round(4).to_string(index=False))
    print()
    print(table.groupby("rho")[["truth rank", "proxy rank"]].agg(["mean", "count"]).round(1).to_string())


if __name__ == "__main__":
    main(sys.argv[1])
