"""A trained supernet against a truth set: Kendall tau of its subnets' accuracy beside every other
score, and the seconds each subnet evaluation takes.

Each network of the truth folder is scored as a subnet (`SubnetEvaluator.accuracy`: weights sliced
into the `build(arch)` network, BatchNorm recalibrated) on the validation split (2,000 images, what
a search sees; timed) and on the test split (10,000 images, as the truth's trained recipes are
scored), after one untimed evaluation has loaded the data. The "supernet (test)" score is the
"supernet" row of `nas proxy truth score FOLDER --truth LABEL --proxy ... --supernet DIR`, written
here instead of into the truth folder. A network the supernet does not hold (MobileNetV1's "ds"
blocks, a stage deeper than the space's) is named on stderr and left out of the supernet's rows
(scores.json: "not_subnets"), whose tau is then over the others. Wall seconds depend on what else the machine runs; process
CPU seconds and the load average are kept.

    python benchmarks/bench_supernet.py runs/supernet-c10 --truth-folder experiments/truth/pixel-40-60 \
        --proxy default --out experiments/supernet
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click
import pandas as pd

from nas.errors import NasError
from nas.proxy.truth import compare, load_truth, score_truth
from nas.supernet import SubnetEvaluator
from nas.supernet.train import HISTORY


@click.command()
@click.argument("supernet_dir", type=click.Path(file_okay=False))
@click.option("--truth-folder", default="experiments/truth/pixel-40-60", show_default=True)
@click.option("--truth", "truth_label", default="long", show_default=True)
@click.option("--proxy", "proxy_labels", multiple=True, default=("default",), show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="experiments/supernet", show_default=True)
def main(supernet_dir: str, truth_folder: str, truth_label: str, proxy_labels: tuple[str, ...], out: str) -> None:
    """Score every truth network on the supernet; write subnets.csv, scores.json, history.json to OUT."""
    truth = load_truth(truth_folder)
    evaluator = SubnetEvaluator(supernet_dir)
    load_before = os.getloadavg()[0]
    rows, outside = [], []  # outside: the networks the supernet does not hold (a "ds" block, a deeper stage)
    for net in truth.networks:
        try:
            if not rows:  # untimed: the first evaluation loads and decodes the data
                evaluator.accuracy(net.arch)
                evaluator.accuracy(net.arch, test=True)
            start, cpu = time.perf_counter(), time.process_time()
            accuracy = evaluator.accuracy(net.arch)
        except NasError as e:
            outside.append(net.name)
            click.echo(f"left out: {e}", err=True)
            continue
        rows.append({"name": net.name, "origin": net.origin, "supernet_val_accuracy": accuracy,
                     "seconds": round(time.perf_counter() - start, 3),
                     "cpu_seconds": round(time.process_time() - cpu, 3),
                     "supernet_test_accuracy": evaluator.accuracy(net.arch, test=True)})
    if not rows:
        raise click.ClickException(f"no network of {truth_folder} is a subnet of {supernet_dir}")
    result = score_truth(truth, truth_label, proxy_labels)
    names = list(result["truth"])
    truth_acc = [result["truth"][n] / 100 for n in names]
    for split in ("test", "val"):  # test: as the trained recipes are scored; val: what a search sees
        by_name = {r["name"]: r[f"supernet_{split}_accuracy"] for r in rows}  # NaN, left out: not a subnet
        result["scores"][f"supernet ({split})"] = compare([by_name.get(n, float("nan")) for n in names], truth_acc)
    for r in rows:
        r["truth_test_accuracy_%"] = result["truth"].get(r["name"])
    table = pd.DataFrame(rows)
    result["supernet"] = {"folder": supernet_dir, "epochs": evaluator.trained.finished, "not_subnets": outside,
                          "mean_eval_seconds": round(float(table.seconds.mean()), 3),
                          "mean_eval_cpu_seconds": round(float(table.cpu_seconds.mean()), 3),
                          "load_average_before_after": [load_before, os.getloadavg()[0]]}
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "subnets.csv", index=False)
    (out_dir / "scores.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copyfile(Path(supernet_dir) / HISTORY, out_dir / "history.json")
    click.echo(f"{'score':<45} kendall_tau")
    for name, s in result["scores"].items():
        click.echo(f"{name:<45} {s['kendall_tau']}")
    click.echo(f"subnet evaluation: {result['supernet']['mean_eval_seconds']} s wall, "
               f"{result['supernet']['mean_eval_cpu_seconds']} s CPU per network")


if __name__ == "__main__":
    main()
