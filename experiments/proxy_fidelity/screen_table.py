"""The screening table of experiments/proxy_fidelity/README.md, from the result folders.

    python experiments/proxy_fidelity/screen_table.py experiments/proxy_fidelity/screen/*/

Each folder is one `nas proxy fidelity --out DIR` run (its fidelity.json and accuracies.csv).
Prints one markdown row per folder: the proxy's Kendall tau, Spearman, matched-latency and
resolution pairs, and the CPU seconds of training in all and for MobileNetV3-Large 1.0.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def row(folder: Path) -> str:
    result = json.loads((folder / "fidelity.json").read_text())
    proxy = result["scores"]["proxy"]
    rows = list(csv.DictReader((folder / "accuracies.csv").open()))
    cpu = sum(float(r["cpu_seconds"]) for r in rows)
    v3l = next((float(r["cpu_seconds"]) for r in rows if r["name"] == "V3-Large 1.0"), float("nan"))
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    return (f"| `{folder.name}` | {len(rows)} | {fmt(proxy['kendall_tau'])} | {fmt(proxy['spearman'])} | "
            f"{fmt(proxy['matched_pairs'])} | {fmt(proxy['resolution_pairs'])} | {cpu:,.0f} | {v3l:.0f} |")


def main(folders: list[str]) -> None:
    print("| variant | networks | Kendall tau | Spearman | matched pairs | resolution pairs | CPU s, all | CPU s, V3-Large |")
    print("|---|---|---|---|---|---|---|---|")
    for f in folders:
        if (Path(f) / "fidelity.json").is_file():
            print(row(Path(f)))


if __name__ == "__main__":
    main(sys.argv[1:])
