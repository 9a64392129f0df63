"""Training throughput of the V3-Small and V3-Large proxies on this CPU.

Compares plain eager (contiguous NCHW) with channels_last, torch.compile and 1 vs 2 intra-op
threads at ImageNet strides, then the cost of relaxing 0, 1 or 2 early strides. Every row is
`nas.train.training_speed`: median images per second over timed SGD steps (batch, augmentation
and optimizer as in the default recipe), after untimed warm-up steps (build and compile time are
reported apart).

    python benchmarks/bench_train.py --out experiments/train_speed
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import click
import pandas as pd
import torch

from nas.baselines import load_baseline
from nas.recipe import load_recipe
from nas.train import training_speed

ARCHS = ("mobilenet_v3_small", "mobilenet_v3_large")


def _configs(compile_: bool) -> list[dict]:
    """(label, recipe overrides) of every measured setting."""
    rows = [
        {"setting": "eager, contiguous", "channels_last": False, "threads": 1},
        {"setting": "eager, contiguous", "channels_last": False, "threads": 2},
        {"setting": "eager, channels_last", "channels_last": True, "threads": 1},
        {"setting": "eager, channels_last", "channels_last": True, "threads": 2},
    ]
    if compile_:
        rows.append({"setting": "torch.compile, channels_last", "channels_last": True, "threads": 1,
                     "compile": True})
    for relax in (1, 2):
        rows.append({"setting": "eager, channels_last", "channels_last": True, "threads": 1,
                     "relax_strides": relax})
    return rows


def _markdown(df: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="experiments/train_speed",
              show_default=True, help="Folder for results.md and results.csv.")
@click.option("--steps", type=int, default=5, show_default=True, help="Timed steps per row.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed steps per row.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--image-size", type=int, default=32, show_default=True)
@click.option("--compile/--no-compile", "compile_", default=True, show_default=True,
              help="Include torch.compile rows.")
def main(out: str, steps: int, warmup: int, batch_size: int, image_size: int, compile_: bool) -> None:
    """Measure and write the training-speed table."""
    base = load_recipe(batch_size=batch_size, image_size=image_size, relax_strides=0, compile=False)
    load_before = os.getloadavg()[0]
    rows = []
    for name in ARCHS:
        arch = load_baseline(name)
        for cfg in _configs(compile_):
            knobs = {k: v for k, v in cfg.items() if k != "setting"}
            recipe = replace(base, **knobs)
            try:
                ips, setup = training_speed(arch, recipe, steps=steps, warmup=warmup)
                note = ""
            except Exception as e:  # a compile failure is a result to record, not a crash
                ips, setup, note = float("nan"), float("nan"), f"{type(e).__name__}: {str(e)[:80]}"
            row = {"arch": name, "setting": cfg["setting"], "threads": recipe.threads,
                   "relax_strides": recipe.relax_strides, "img_per_s": round(ips, 1),
                   "setup_s": round(setup, 2), "note": note}
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    df = pd.DataFrame(rows)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "results.csv", index=False)
    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__}; batch {batch_size}, {image_size} px, "
              f"SGD + crop-flip; median of {steps} timed steps after {warmup} warm-up steps. "
              f"Load average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} "
              f"(the machine is shared, so rows carry some noise).\n\n"
              f"Command: `python benchmarks/bench_train.py --out {out} --steps {steps} "
              f"--warmup {warmup}`\n\n")
    (folder / "results.md").write_text(header + _markdown(df))
    click.echo(df.to_string(index=False))


if __name__ == "__main__":
    main()
