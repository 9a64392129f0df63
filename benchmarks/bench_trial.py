"""Seconds of one default proxy trial on one CPU thread, for the four MobileNet baselines.

The issue's bar: a MobileNetV3-Large-sized trial takes at most 60 s. Each network is trained once
with the default recipe (`experiments/proxy_recipe.yaml`, `nas.train.train_arch`), after a first
untimed trial has loaded and decoded the data at every side the four networks use. Wall seconds
depend on what else the machine runs, so the process CPU seconds and the load average before and
after are recorded beside them.

    python benchmarks/bench_trial.py --out experiments/trial_time
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import click
import torch

from nas.baselines import baseline_names, load_baseline
from nas.recipe import load_recipe, proxy_side
from nas.train import train_arch


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="experiments/trial_time", show_default=True)
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False), default=None,
              help="Recipe YAML (default: experiments/proxy_recipe.yaml).")
def main(out: str, recipe_file: str | None) -> None:
    """Time one default trial per baseline; write results.json and print a markdown table."""
    recipe = load_recipe(recipe_file)
    archs = [load_baseline(n) for n in baseline_names()]
    warm = replace(recipe, train_subset=128, epochs=1, bn_recalibrate=0)
    for arch in archs:  # load every side once, untimed
        train_arch(arch, warm)
    rows = []
    for arch in archs:
        load_before = os.getloadavg()[0]
        cpu, wall = time.process_time(), time.perf_counter()
        result = train_arch(arch, recipe)
        rows.append({"arch": arch.name, "side_px": proxy_side(arch, recipe),
                     "wall_s": round(time.perf_counter() - wall, 1),
                     "cpu_s": round(time.process_time() - cpu, 1),
                     "val_accuracy": round(result.accuracy, 4),
                     "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)})
    info = {"command": f"python benchmarks/bench_trial.py --out {out}",
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": recipe.threads, "rows": rows,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "results.json").write_text(json.dumps(info, indent=2) + "\n")
    click.echo("| network | side px | wall s | CPU s | val acc | load before/after |")
    click.echo("|---|---|---|---|---|---|")
    for r in rows:
        click.echo(f"| {r['arch']} | {r['side_px']} | {r['wall_s']} | {r['cpu_s']} | {r['val_accuracy']:.4f} "
                   f"| {r['load_before']} / {r['load_after']} |")


if __name__ == "__main__":
    main()
