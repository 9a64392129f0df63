"""Issue 34: are block choices (SE, h-swish, kernel size) worth a feature in the ImageNet top-1
estimate? Zero-cost fits only (no proxy training): cost-only [1, log params, log MAdds,
log resolution] against cost+blocks (the same plus nas.estimate.block_features' shares).

Fitted on the shipped yardstick (53 MobileNets) with or without the new families
(nas/_data/imagenet_top1/new_families.yaml); scored leave-one-family-out on the fit set and, fitted
on all of it, on networks kept aside from every fit (held_out.yaml and kept_aside.yaml), once all
of them and once with the MnasNet-A1 grid (24 widths x resolutions) cut to its 1.0 r224 network.

Run from the repository root: python experiments/proxy_fidelity/block_features/block_features.py
It writes results.json beside itself and prints the tables of README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nas.estimate import BLOCK_FEATURES, block_features
from nas.proxy.networks import HELD_OUT_NETWORKS, KEPT_ASIDE_NETWORKS, load_networks
from nas.proxy.stats import matched_pairs, rank_fidelity
from nas.paths import PACKAGE_DATA

HERE = Path(__file__).parent
DATA = PACKAGE_DATA / "imagenet_top1"


# candidate feature sets beyond cost-only; chosen among by leave-one-family-out on the fit set
CANDIDATES = {"cost-only": (), "cost+blocks": BLOCK_FEATURES, "cost+se": ("se share",),
              "cost+hswish": ("hswish share",), "cost+se+hswish": ("se share", "hswish share")}


def design(nets, blocks) -> np.ndarray:
    """Cost columns, then the block shares named by `blocks` (a model name, or True for all)."""
    names = BLOCK_FEATURES if blocks is True else CANDIDATES.get(blocks, ()) if blocks else ()
    cols = [np.ones(len(nets)), np.log([n.params for n in nets]), np.log([n.madds for n in nets]),
            np.log([n.resolution for n in nets])]
    f = [block_features(n.arch) for n in nets]
    cols += [np.array([x[k] for x in f]) for k in names]
    return np.column_stack(cols)


def family(n) -> str:
    return "MoGA" if n.base.startswith("moga") else n.family


def fit(nets, blocks: bool) -> np.ndarray:
    return np.linalg.lstsq(design(nets, blocks), np.array([n.top1 for n in nets]), rcond=None)[0]


def family_out(nets, blocks: bool) -> np.ndarray:
    groups = np.array([family(n) for n in nets])
    x, y, out = design(nets, blocks), np.array([n.top1 for n in nets]), np.empty(len(nets))
    for g in np.unique(groups):
        held = groups == g
        out[held] = x[held] @ np.linalg.lstsq(x[~held], y[~held], rcond=None)[0]
    return out


def scores(nets, pred) -> dict:
    top1 = [n.top1 for n in nets]
    f = rank_fidelity(pred, top1, matched_pairs([n.latency_ms for n in nets]), estimate=True)
    return {"kendall_tau": round(f.kendall_tau, 3), "matched_pairs": round(f.matched_pairs, 3),
            "mae": round(f.mae, 2)}


ACTIVATION_VARIANTS = ("V3-Large ReLU", "V3-Large h-swish@16", "V3-Large h-swish@112")
MINIMALISTIC = ("V3-Large minimalistic", "V3-Small minimalistic")  # each against its full network


def one_mnasnet_a1(nets) -> list:
    """`nets` with the MnasNet-A1 grid cut to its 1.0 r224 network."""
    return [n for n in nets if n.base != "mnasnet_a1" or n.name == "MnasNet-A1 1.0 r224"]


def main() -> dict:
    yardstick = load_networks(DATA / "imagenet_top1.yaml")
    new = load_networks(DATA / "new_families.yaml")
    kept = load_networks(HELD_OUT_NETWORKS) + load_networks(KEPT_ASIDE_NETWORKS)
    few = one_mnasnet_a1(kept)
    full_v3 = [n for n in yardstick if n.variant is None and n.width == 1.0 and n.resolution == 224
               and n.base in ("mobilenet_v3_large", "mobilenet_v3_small")]
    result = {"networks": {"yardstick": len(yardstick), "new_families": len(new), "kept_aside": len(kept),
                           "kept_aside_one_mnasnet_a1": len(few)}}
    for label, fit_set in (("yardstick", yardstick), ("yardstick+new", yardstick + new)):
        for model in CANDIDATES:
            blocks = model
            coef = fit(fit_set, blocks)
            pred = dict(zip((n.name for n in kept), design(kept, blocks) @ coef))
            full = dict(zip((n.name for n in full_v3), design(full_v3, blocks) @ coef))
            result[f"{model} fitted on {label}"] = {
                "coefficients": [round(float(c), 4) for c in coef],
                "leave_one_family_out": scores(fit_set, family_out(fit_set, blocks)),
                "kept_aside": scores(kept, [pred[n.name] for n in kept]),
                "kept_aside_one_mnasnet_a1": scores(few, [pred[n.name] for n in few]),
                "v3_activation_variants": {k: round(float(pred[k]), 2) for k in ACTIVATION_VARIANTS},
                "v3_minimalistic_and_full": {**{k: round(float(pred[k]), 2) for k in MINIMALISTIC},
                                             **{k: round(float(v), 2) for k, v in full.items()}},
                "kept_aside_predictions": {k: round(float(v), 2) for k, v in pred.items()}}
    # the choice, made on leave-one-family-out tau + pairs of the larger fit set only
    fitted = {m: result[f"{m} fitted on yardstick+new"]["leave_one_family_out"] for m in CANDIDATES}
    result["chosen_by_leave_one_family_out"] = max(fitted, key=lambda m: fitted[m]["kendall_tau"]
                                                   + fitted[m]["matched_pairs"])
    return result


if __name__ == "__main__":
    res = main()
    (HERE / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"networks: {res['networks']}")
    print(f"{'model':40} {'LOFO tau':>9} {'pairs':>6} {'MAE':>5} | {'kept tau':>9} {'pairs':>6} {'MAE':>5} | "
          f"{'1 A1 tau':>9} {'pairs':>6} {'MAE':>5} | V3 ReLU / hs@16 / hs@112 | L-min / L / S-min / S")
    for k, v in res.items():
        if k in ("networks", "chosen_by_leave_one_family_out"):
            continue
        cells = [v["leave_one_family_out"], v["kept_aside"], v["kept_aside_one_mnasnet_a1"]]
        mini = v["v3_minimalistic_and_full"]
        order = [mini["V3-Large minimalistic"], mini["V3-Large 1.0"], mini["V3-Small minimalistic"],
                 mini["V3-Small 1.0"]]
        print(f"{k:40} " + " | ".join(f"{c['kendall_tau']:9.3f} {c['matched_pairs']:6.3f} {c['mae']:5.2f}"
                                      for c in cells)
              + " | " + " / ".join(f"{p:.2f}" for p in v["v3_activation_variants"].values())
              + " | " + " / ".join(f"{p:.2f}" for p in order))
    print(f"chosen by leave-one-family-out on yardstick+new: {res['chosen_by_leave_one_family_out']}")
