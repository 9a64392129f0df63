"""The supernet as a second, cheap opinion: one proxy training plus the subnet's accuracy.

    python experiments/supernet/long/combine.py     # -> combine.txt

For each truth set, per proxy seed s: the network's rank under its default proxy training
(validation accuracy, seed s) averaged with its rank under the supernet (validation accuracy,
`subnets.csv`), equal weights, nothing fitted. Kendall tau against the mean of the long seeds (2;
pixel-40-60-mixed: 1, and only its 17 networks that are subnets),
beside the proxy at seed s alone and the mean of the two proxy seeds (a second training).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy.stats import rankdata

from nas.proxy.truth import accuracies, compare, load_truth

HERE = Path(__file__).parent
SETS = ("pixel-40-60", "pixel-20-30", "pixel-40-60-s1", "pixel-40-60-mixed")


def main() -> None:
    lines = ["| truth set | proxy seed | proxy alone | proxy + supernet (rank mean) | mean of 2 proxy seeds | supernet alone |",
             "|---|---|---|---|---|---|"]
    for name in SETS:
        truth = load_truth(Path("experiments/truth") / name)
        long = accuracies(truth, "long")
        proxy = accuracies(truth, "default", column="val_accuracy")
        sub = pd.read_csv(HERE / name / "subnets.csv").set_index("name")["supernet_val_accuracy"]
        names = [n.name for n in truth.networks if n.name in sub.index]  # mixed: V1 and V2 are not subnets
        target = [sum(long[s][n] for s in long) / len(long) for n in names]
        supernet = [sub[n] for n in names]
        both = [sum(proxy[s][n] for s in proxy) / len(proxy) for n in names]
        for seed in sorted(proxy):
            one = [proxy[seed][n] for n in names]
            mixed = (rankdata(one) + rankdata(supernet)) / 2
            tau = [compare(v, target)["kendall_tau"] for v in (one, list(mixed), both, supernet)]
            lines.append(f"| {name} | {seed} | " + " | ".join(f"{t:.2f}" for t in tau) + " |")
    text = "\n".join(lines) + "\n"
    (HERE / "combine.txt").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
