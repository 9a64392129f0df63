"""Which cost features should the ImageNet estimate carry, if it is to rank both across the
published MobileNets and inside a search's decision band?

The estimate is top1 = least squares on [1, log params, log madds, log resolution, proxy, logit
proxy] over the 53-network yardstick (since issue 34 plus a block prior: the last row, what the
search ships). In a band its parameter term outweighs the proxy (experiments/truth/README.md).
This refits the estimate on the same yardstick with other cost features (each row below) and
prints, for each:

- yardstick: Kendall tau of the leave-one-out and leave-one-family-out predictions (what the
  estimate's own fidelity figures are), and matched-latency pairs of the leave-one-out ones;
- each truth set given: Kendall tau of the estimate from each default proxy seed (the validation
  accuracy a search sees) against the mean long-recipe test accuracy (`nas proxy truth score`).

    python experiments/truth/estimate_features.py experiments/truth/pixel-40-60 experiments/truth/pixel-20-30 \
        experiments/truth/pixel-40-60-s1
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nas.estimate import cross_validated, fit_estimate
from nas.proxy.networks import load_networks
from nas.proxy.stats import matched_pairs, pair_agreement
from nas.proxy.truth import accuracies, compare, load_truth

YARDSTICK = Path(__file__).resolve().parents[1] / "proxy_fidelity" / "default" / "accuracies.csv"
FEATURE_SETS = {
    "params, madds, rho (proxy+cost)": ("log params", "log madds", "log resolution"),
    "params, rho": ("log params", "log resolution"),
    "madds, rho (no params)": ("log madds", "log resolution"),
    "pixel latency, rho": ("log latency", "log resolution"),
    "pixel latency, params, rho": ("log latency", "log params", "log resolution"),
    "none (proxy alone)": (),
}


def design(frame: pd.DataFrame, cost: tuple[str, ...], proxy) -> np.ndarray:
    """[1, cost features..., proxy, logit proxy], one row per network."""
    p = np.clip(np.asarray(proxy, float), 1e-3, 1 - 1e-3)
    named = {"log params": np.log(frame["params"]), "log madds": np.log(frame["madds"]),
             "log resolution": np.log(frame["resolution"]), "log latency": np.log(frame["latency_ms"])}
    return np.column_stack([np.ones(len(frame)), *(named[c] for c in cost), p, np.log(p / (1 - p))])


def held_out(x: np.ndarray, y: np.ndarray, groups) -> np.ndarray:
    groups, out = np.asarray(groups), np.empty(len(y))
    for g in np.unique(groups):
        h = groups == g
        out[h] = x[h] @ np.linalg.lstsq(x[~h], y[~h], rcond=None)[0]
    return out


def band_taus(folder: Path, cost: tuple[str, ...], coef: np.ndarray, estimate=None) -> list[float]:
    """Kendall tau of the estimate from each default proxy seed against the mean long test
    accuracy; `estimate` (an nas.estimate.Estimate) instead of `cost` and `coef` where given."""
    truth = load_truth(folder)
    archs = {n.name: n.arch for n in truth.networks}
    nets = pd.DataFrame([{"name": n.name, "params": n.params, "madds": n.madds, "latency_ms": n.latency_ms,
                          "resolution": n.arch.resolution} for n in truth.networks]).set_index("name")
    long = accuracies(truth, "long")
    both = [n for n in nets.index if all(n in acc for acc in long.values())]
    target = [float(np.mean([acc[n] for acc in long.values()])) for n in both]
    out = []
    for seed, acc in sorted(accuracies(truth, "default", "val_accuracy").items()):
        names = [n for n in both if n in acc]
        score = ([estimate.predict_arch(archs[n], acc[n]) for n in names] if estimate is not None
                 else design(nets.loc[names], cost, [acc[n] for n in names]) @ coef)
        out.append(compare(score, [t for n, t in zip(both, target) if n in acc])["kendall_tau"])
    return out


def main(folders: list[str]) -> None:
    yard = pd.read_csv(YARDSTICK)
    y, pairs = yard["top1"].to_numpy(), matched_pairs(list(yard["latency_ms"]))
    rows = []
    for label, cost in FEATURE_SETS.items():
        x = design(yard, cost, yard["proxy_accuracy"])
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        loo, lofo = held_out(x, y, yard["name"]), held_out(x, y, yard["family"])
        row = {"cost features": label,
               "yardstick LOO tau": compare(loo, y)["kendall_tau"],
               "LOFO tau": compare(lofo, y)["kendall_tau"],
               "LOO pairs": round(pair_agreement(loo, y, pairs), 3)}
        for folder in map(Path, folders):
            for seed, tau in enumerate(band_taus(folder, cost, coef)):
                row[f"{folder.name} s{seed}"] = tau
        rows.append(row)
    nets = load_networks()
    proxy = [dict(zip(yard["name"], yard["proxy_accuracy"]))[n.name] for n in nets]
    top1 = np.array([n.top1 for n in nets])
    est = fit_estimate("proxy+cost+prior", nets, proxy)
    loo = cross_validated(est.model, nets, proxy, [n.name for n in nets])
    row = {"cost features": "params, madds, rho + block prior (shipped)",
           "yardstick LOO tau": compare(loo, top1)["kendall_tau"],
           "LOFO tau": compare(cross_validated(est.model, nets, proxy, [n.family for n in nets]), top1)["kendall_tau"],
           "LOO pairs": round(pair_agreement(loo, top1, matched_pairs([n.latency_ms for n in nets])), 3)}
    for folder in map(Path, folders):
        for seed, tau in enumerate(band_taus(folder, (), np.empty(0), est)):
            row[f"{folder.name} s{seed}"] = tau
    rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1:])
