"""What a GPU buys the proxy: throughput, seconds per trial, a 2-trial search and a small fidelity run.

For a machine with a GPU; about 5 minutes there. Everything goes to one folder (results.json and
README.md, the search's run folder, the fidelity folder) that is easy to copy back:

    python benchmarks/bench_gpu.py --out bench_gpu/$(hostname)

It measures, on `--device` (default cuda):
1. training images per second of the V3-Large and V3-Small proxies at the default recipe's sides
   and at the GPU recipe's (experiments/proxy_recipe_gpu.yaml), in fp32 and bf16;
2. the same with torch.compile: its one-off compile seconds and the throughput after, and the
   trial length from which compiling pays for itself;
3. seconds of one default trial of V3-Large, run twice: the accuracy difference between the two
   is the run-to-run nondeterminism of this device (0 on the CPU);
4. a 2-trial `nas search --target pixel --budget 60ms` on the device, with the device each trial
   recorded;
5. `nas proxy fidelity` with the GPU recipe on a few networks of the shipped file (Kendall tau on so
   few networks is a smoke signal, not the fidelity: rerun the whole file for that).

`--device cpu --quick` runs every step at toy sizes, which is how the CPU test suite keeps this
script working on machines without a GPU.
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

from nas.baselines import load_baseline
from nas.device import describe, resolve
from nas.errors import NasError
from nas.recipe import Recipe, load_recipe, proxy_side, recipe_to_dict

GPU_RECIPE = Path(__file__).resolve().parents[1] / "experiments" / "proxy_recipe_gpu.yaml"
FIDELITY_NETWORKS = ("V3-Large 1.0", "V3-Large 0.5", "V3-Small 1.0", "V3-Small 1.0 r128",
                     "V2 1.0", "V2 0.5 r160", "V1 1.0 r160", "V1 0.25 r224")
QUICK = dict(train_subset=256, val_size=200, epochs=1, batch_size=32, bn_recalibrate=64)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(recipes: dict[str, Recipe], device: torch.device, steps: int, compile_too: bool) -> list[dict]:
    """Training images per second per network, recipe, precision (and compiled or not)."""
    from nas.train import training_speed

    rows = []
    for arch_name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        arch = load_baseline(arch_name)
        for recipe_name, recipe in recipes.items():
            for precision in ("fp32", "bf16"):
                for compiled in ((False, True) if compile_too else (False,)):
                    r = replace(recipe, precision=precision, compile=compiled)
                    speed, setup = training_speed(arch, r, steps=steps, warmup=3, device=str(device))
                    _sync(device)
                    rows.append({"arch": arch_name, "recipe": recipe_name, "side_px": proxy_side(arch, r),
                                 "batch": r.batch_size, "precision": precision, "compile": compiled,
                                 "images_per_s": round(speed, 1), "setup_s": round(setup, 2)})
    return rows


def compile_payback(rows: list[dict]) -> list[dict]:
    """Per network/recipe/precision: the training seconds after which torch.compile has paid for
    its compile time, or None when compiled training is not faster."""
    out = []
    for row in (r for r in rows if r["compile"]):
        plain = next(r for r in rows if not r["compile"] and all(
            r[k] == row[k] for k in ("arch", "recipe", "precision")))
        gain = 1 - plain["images_per_s"] / row["images_per_s"]
        extra = row["setup_s"] - plain["setup_s"]
        out.append({k: row[k] for k in ("arch", "recipe", "precision")} |
                   {"compile_s": round(extra, 1),
                    "pays_after_train_s": round(extra / gain, 1) if gain > 0 else None})
    return out


def trial_twice(recipe: Recipe, device: torch.device) -> dict:
    """One default trial of V3-Large, twice: seconds and accuracies (their difference is this
    device's nondeterminism)."""
    from nas.train import train_arch

    arch = load_baseline("mobilenet_v3_large")
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        result = train_arch(arch, recipe, device=str(device))
        _sync(device)
        runs.append({"seconds": round(time.perf_counter() - start, 2), "accuracy": result.accuracy})
    return {"arch": arch.name, "runs": runs,
            "accuracy_difference": abs(runs[0]["accuracy"] - runs[1]["accuracy"])}


def small_search(recipe: Recipe, device: torch.device, out: Path) -> dict:
    """A 2-trial search on the device (no baselines), with what trials.csv recorded."""
    import pandas as pd

    from nas.search import SearchConfig, prepare, run_search
    from nas.space import DEFAULT_SPACE

    config = SearchConfig(target="pixel", budget_ms=60.0, out=str(out), space=str(DEFAULT_SPACE),
                          recipe=recipe_to_dict(replace(recipe, device=str(device))), trials=2,
                          baselines=(), pruner="none")
    config, _ = prepare(config, resume=False)
    start = time.perf_counter()
    summary = run_search(config, progress=False)
    trials = pd.read_csv(out / "trials.csv")
    trained = trials[trials["state"] == "COMPLETE"]
    return {"seconds": round(time.perf_counter() - start, 1), "trained": len(trained),
            "devices": sorted(set(trained["device"].astype(str))),
            "trial_seconds": [round(float(s), 2) for s in trained["seconds"]],
            "best_accuracy": summary.get("best", {}).get("accuracy")}


def small_fidelity(recipe: Recipe, only: tuple[str, ...], out: Path) -> dict:
    """`nas proxy fidelity` on the listed networks with `recipe`."""
    from nas.proxy.fidelity import read_accuracies, run_fidelity
    from nas.proxy.networks import load_networks

    start = time.perf_counter()
    networks = [n for n in load_networks() if n.name in only]  # exact names (--only matches parts)
    result = run_fidelity(recipe, networks, out, workers=1, progress=False)
    proxy = result["scores"]["proxy"]
    accuracies = {r["name"]: r["proxy_accuracy"] for r in read_accuracies(out / "accuracies.csv")}
    return {"seconds": round(time.perf_counter() - start, 1), "networks": list(only),
            "kendall_tau": proxy["kendall_tau"], "spearman": proxy["spearman"],
            "matched_pairs": proxy["matched_pairs"], "accuracies": accuracies}


def _markdown(info: dict) -> str:
    lines = [f"# GPU benchmark on {info['device']}", "", f"Command: `{info['command']}`  ",
             f"torch {info['torch']}, CUDA {info['cuda']}, {info['date']}", "",
             "| network | recipe | side px | batch | precision | compile | images/s | setup s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['arch']} | {r['recipe']} | {r['side_px']} | {r['batch']} | {r['precision']} | "
              f"{r['compile']} | {r['images_per_s']:,.0f} | {r['setup_s']} |" for r in info["throughput"]]
    t = info["trial"]
    lines += ["", f"Default V3-Large trial: {t['runs'][0]['seconds']} s and {t['runs'][1]['seconds']} s; "
              f"accuracy {t['runs'][0]['accuracy']:.4f} vs {t['runs'][1]['accuracy']:.4f} "
              f"(difference {t['accuracy_difference']:.4f})."]
    if info["compile_payback"]:
        lines += ["", "torch.compile pays for itself after (training seconds of one trial):"]
        lines += [f"- {c['arch']} {c['recipe']} {c['precision']}: compile {c['compile_s']} s, "
                  f"{'never' if c['pays_after_train_s'] is None else str(c['pays_after_train_s']) + ' s'}"
                  for c in info["compile_payback"]]
    s, f = info["search"], info["fidelity"]
    lines += ["", f"2-trial search: {s['seconds']} s, trials on {', '.join(s['devices'])}, "
              f"trial seconds {s['trial_seconds']}.",
              f"Fidelity of the GPU recipe on {len(f['networks'])} networks: Kendall tau "
              f"{f['kendall_tau']:.2f}, Spearman {f['spearman']:.2f}, {f['seconds']} s."]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--device", default="cuda", show_default=True, help="cuda, cuda:N, mps or cpu.")
@click.option("--out", type=click.Path(file_okay=False), default="bench_gpu", show_default=True)
@click.option("--quick", is_flag=True, help="Toy sizes for every step and no torch.compile (a smoke "
              "test, e.g. on a CPU).")
@click.option("--compile/--no-compile", "compile_too", default=None,
              help="Also measure torch.compile (default: unless --quick; on a CPU it compiles C++ "
                   "for minutes).")
def main(device: str, out: str, quick: bool, compile_too: bool | None) -> None:
    """Measure the proxy on an accelerator; write OUT/results.json and OUT/README.md."""
    try:
        place = resolve(device)
    except NasError as e:
        raise click.UsageError(str(e)) from None
    compile_too = not quick if compile_too is None else compile_too
    default, gpu = load_recipe(), load_recipe(GPU_RECIPE)
    if quick:
        default, gpu = replace(default, **QUICK), replace(gpu, **QUICK)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/bench_gpu.py --device {device} --out {out}" + (" --quick" if quick else "")
    rows = throughput({"default": default, "gpu": gpu}, place, steps=3 if quick else 20, compile_too=compile_too)
    info = {"command": command, "device": describe(place), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if place.type == "cuda" else None,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": quick,
            "throughput": rows, "compile_payback": compile_payback(rows),
            "trial": trial_twice(replace(default, device=str(place)), place),
            "search": small_search(default, place, folder / "search"),
            "fidelity": small_fidelity(replace(gpu, device=str(place)),
                                       FIDELITY_NETWORKS[:3] if quick else FIDELITY_NETWORKS,
                                       folder / "fidelity"),
            "recipes": {"default": recipe_to_dict(default), "gpu": recipe_to_dict(gpu)}}
    (folder / "results.json").write_text(json.dumps(info, indent=2) + "\n")
    (folder / "README.md").write_text(_markdown(info))
    click.echo(_markdown(info))


if __name__ == "__main__":
    main()
