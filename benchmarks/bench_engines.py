"""Wall time, trials per hour and per-trial overhead of the Optuna and Ray Tune engines.

Every row is one search in a fresh Python process (so each Ray row pays its own `ray.init`): the
same space, seed, random sampler and small recipe, no early stopping (`--pruner none`,
`--scheduler none`), so both engines train the same networks for the same epochs and differ only
in how trials are scheduled. Per row:

- wall_s: seconds of `run_search` (interpreter and torch import excluded, `ray.init` included);
- train_s: the trials' own training seconds (`seconds` in trials.csv, data already in memory);
- trained_per_hour: trained trials (baselines included) per hour of wall time;
- overhead_per_trial_s (one worker only): (wall_s - startup_s - train_s) / trials, where trials
  counts every proposal (rejected ones too) and startup_s is a bare `ray.init` + `ray.shutdown`
  (median over rounds; 0 for Optuna). It holds what both engines pay per trial (building the
  network, loading the data subset, latency lookup, checkpoint and result files) plus the
  engine's own scheduling; the Ray minus Optuna difference is Ray's own per-trial cost.

Two recipes: "throughput" (trials of a few seconds; 1 vs 2 workers) and "overhead" (trials of a
fraction of a second, one worker; wall time is then mostly per-trial overhead).

    python benchmarks/bench_engines.py --out experiments/engines --runs runs/bench-engines --repeat 2
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import click
import pandas as pd

# throughput: trials of a few seconds, so 1 vs 2 concurrent trials shows what concurrency buys;
# overhead: trials of a fraction of a second, so wall time is mostly what an engine adds per trial
RECIPES = {
    "throughput": {"train_subset": 1024, "val_size": 256, "image_size": 16, "epochs": 2, "batch_size": 64,
                   "relax_strides": 0},
    "overhead": {"train_subset": 64, "val_size": 64, "image_size": 16, "epochs": 1, "batch_size": 64,
                 "relax_strides": 0},
}
ROWS = [("throughput", "optuna", 1), ("throughput", "ray", 1), ("throughput", "optuna", 2), ("throughput", "ray", 2),
        ("overhead", "optuna", 1), ("overhead", "ray", 1)]


def _one_search(engine: str, workers: int, trials: int, budget: str, recipe: str, out: str) -> dict:
    """Run one search in this process and return its timings (see the module docstring)."""
    from nas.recipe import load_recipe, recipe_to_dict
    from nas.search import SearchConfig, parse_budget, prepare, run_search
    from nas.space import DEFAULT_SPACE

    config = SearchConfig(target="pixel", budget_ms=parse_budget(budget), out=out, space=str(DEFAULT_SPACE),
                          recipe=recipe_to_dict(load_recipe(recipe)), trials=trials, seed=0, sampler="random",
                          pruner="none", scheduler="none", engine=engine, workers=workers)
    config, _ = prepare(config, resume=False)
    start = time.perf_counter()
    run_search(config, progress=False)
    wall = time.perf_counter() - start
    frame = pd.read_csv(Path(out) / "trials.csv")
    trained = frame["state"].isin(["COMPLETE", "PRUNED", "FAIL"])
    return {"engine": engine, "workers": workers, "trials": len(frame), "trained": int(trained.sum()),
            "rejected": int((frame["state"] == "REJECTED").sum()), "wall_s": round(wall, 2),
            "train_s": round(float(frame["seconds"].fillna(0).sum()), 2)}


def _ray_startup() -> float:
    """Seconds of a bare local `ray.init` + `ray.shutdown` sized to this machine."""
    import ray

    start = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    ray.shutdown()
    return time.perf_counter() - start


def _in_fresh_process(*args: str) -> dict:
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="experiments/engines", show_default=True,
              help="Folder for results.md, results.csv and the recipes used.")
@click.option("--runs", type=click.Path(file_okay=False), default="runs/bench-engines", show_default=True,
              help="Folder for the run folders (checkpoints included; not committed).")
@click.option("--trials", type=int, default=10, show_default=True, help="Trained trials per throughput search.")
@click.option("--overhead-trials", type=int, default=20, show_default=True,
              help="Trained trials per overhead search.")
@click.option("--repeat", type=int, default=1, show_default=True,
              help="Rounds of all rows (the machine may be shared).")
@click.option("--budget", default="60ms", show_default=True, help="Latency budget on pixel.")
@click.option("--one", default=None, hidden=True, help="Internal: run one row and print it as JSON.")
@click.option("--startup", is_flag=True, hidden=True, help="Internal: time ray.init and print it as JSON.")
def main(out: str, runs: str, trials: int, overhead_trials: int, repeat: int, budget: str, one: str | None,
         startup: bool) -> None:
    """Run every row (optuna and ray; 1 and 2 workers; throughput and overhead recipes) and write
    the comparison."""
    if startup:
        print(json.dumps({"startup_s": _ray_startup()}))
        return
    if one is not None:
        print(json.dumps(_one_search(**json.loads(one))))
        return
    folder, runs_dir = Path(out).resolve(), Path(runs).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    recipes = {}
    for part, knobs in RECIPES.items():
        recipes[part] = folder / f"{part}_recipe.yaml"
        recipes[part].write_text("".join(f"{k}: {v}\n" for k, v in knobs.items()))
    startups = [_in_fresh_process("--startup")["startup_s"] for _ in range(max(1, repeat))]
    startup_s = sorted(startups)[len(startups) // 2]
    rows = []
    for round_ in range(1, repeat + 1):
        for part, engine, workers in ROWS:
            run = runs_dir / f"{part}-{engine}-w{workers}-r{round_}"
            if run.exists():
                raise SystemExit(f"{run} exists; remove it or pass another --runs")
            load = os.getloadavg()[0]
            row = _in_fresh_process("--one", json.dumps({
                "engine": engine, "workers": workers, "trials": trials if part == "throughput" else overhead_trials,
                "budget": budget, "recipe": str(recipes[part]), "out": str(run)}))
            row = {"part": part, "round": round_, **row, "load_1m": round(load, 2),
                   "trained_per_hour": round(row["trained"] / row["wall_s"] * 3600)}
            if workers == 1:
                own_startup = startup_s if engine == "ray" else 0.0
                row["overhead_per_trial_s"] = round((row["wall_s"] - own_startup - row["train_s"]) / row["trials"], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(folder / "results.csv", index=False)
    header = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"ray.init + shutdown: {', '.join(f'{s:.1f}' for s in startups)} s (median {startup_s:.1f} s)\n\n")
    (folder / "results.md").write_text(header + _markdown(df))
    print(header + _markdown(df))


if __name__ == "__main__":
    main()
