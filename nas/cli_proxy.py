"""`nas proxy fidelity` and `nas proxy networks`: how well the proxy ranks like ImageNet top-1."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nas.cli_common import print_json, print_table

_SCORE_LABELS = {"proxy": "proxy (trained)", "latency": "pixel latency (free)",
                 "params": "parameters (free)", "madds": "multiply-adds (free)"}


def networks_options(f):
    """The --networks file and the --only name filter both commands accept."""
    f = click.option("--only", multiple=True, metavar="TEXT",
                     help="Keep networks whose name contains TEXT (case-insensitive; repeatable).")(f)
    return click.option("--networks", "networks_paths", type=click.Path(dir_okay=False), multiple=True,
                        help="Networks YAML (default: the shipped nas/_data/imagenet_top1/imagenet_top1.yaml); "
                             "repeatable: the networks of every file, in order.")(f)


def _networks(paths: tuple[str, ...], only: tuple[str, ...]):
    from nas.proxy.networks import load_network_files, select

    return select(load_network_files(paths), only)


def score_rows(scores: dict) -> list[dict]:
    """One table row per score of an `evaluate` result (figures rounded for printing)."""
    r = lambda v, d=3: None if v is None else round(v, d)
    return [{"score": _SCORE_LABELS.get(k, k), "kendall_tau": r(s["kendall_tau"]), "spearman": r(s["spearman"]),
             "matched_pairs": r(s["matched_pairs"]), "resolution_pairs": r(s["resolution_pairs"]),
             "mae_top1": r(s["mae"], 2)} for k, s in scores.items()]


_SCORE_COLUMNS = ["score", "kendall_tau", "spearman", "matched_pairs", "resolution_pairs", "mae_top1"]


@click.group()
def proxy() -> None:
    """Measure the proxy against published ImageNet top-1."""


@proxy.command()
@networks_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def networks(networks_paths: tuple[str, ...], only: tuple[str, ...], as_json: bool) -> None:
    """List the networks with their cost, predicted Pixel latency and the zero-cost fidelity."""
    from dataclasses import asdict

    from nas.proxy.fidelity import zero_cost_fidelity
    from nas.proxy.stats import matched_pairs

    nets = _networks(networks_paths, only)
    rows = [{"name": n.name, "family": n.family, "width": n.width, "resolution": n.resolution,
             "top1": n.top1, "params": n.params, "madds_M": round(n.madds / 1e6, 1),
             "latency_ms": round(n.latency_ms, 2), "source": n.source} for n in nets]
    scores = {k: asdict(v) for k, v in zero_cost_fidelity(nets).items()}
    pairs = len(matched_pairs([n.latency_ms for n in nets]))
    if as_json:
        print_json({"networks": rows, "matched_pairs": pairs, "scores": scores})
        return
    print_table(rows, list(rows[0]))
    click.echo(f"\n{len(nets)} networks, {pairs} matched-latency pairs (within 25 %)")
    print_table(score_rows(scores), _SCORE_COLUMNS)


@proxy.command()
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), default=None,
              help="Recipe YAML file (default: experiments/proxy_recipe.yaml).")
@networks_options
@click.option("--workers", default=1, show_default=True, type=int,
              help="Training processes (each on the recipe's threads).")
@click.option("--out", default=None, help="Results folder (default runs/fidelity/<recipe file stem>); "
                                          "rerunning into it trains only what is missing.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--estimate", "estimate_path", default=None, metavar="FILE",
              help="Score the networks with the ImageNet estimates fitted in FILE (an estimate.json; "
                   "'shipped': the one nas search uses) instead of fitting on them: the check that a fit "
                   "generalises to networks kept aside (e.g. --networks nas/_data/imagenet_top1/held_out.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print fidelity.json instead of the table.")
def fidelity(recipe_path: str | None, networks_paths: tuple[str, ...], only: tuple[str, ...], workers: int,
             out: str | None, progress: bool | None, estimate_path: str | None, as_json: bool) -> None:
    """Train every network with the recipe and compare its proxy accuracy with ImageNet top-1."""
    from nas.estimate import ESTIMATE_FILE, estimate_for, write_estimate
    from nas.proxy.fidelity import run_fidelity
    from nas.proxy.runner import check_workers
    from nas.recipe import DEFAULT_RECIPE, load_recipe

    check_workers(workers)
    recipe = load_recipe(recipe_path)
    nets = _networks(networks_paths, only)
    fitted, fitted_file = (), None
    if estimate_path is not None:
        fitted_file = ESTIMATE_FILE if estimate_path == "shipped" else Path(estimate_path)
        est = estimate_for(recipe, fitted_file, option="--estimate")
        fitted = (est.estimate,) if est.cost_only is None else (est.cost_only, est.estimate)
    out = out or str(Path("runs") / "fidelity" / Path(recipe_path or DEFAULT_RECIPE).stem)
    result = run_fidelity(recipe, nets, out, workers=workers,
                          progress=sys.stderr.isatty() if progress is None else progress,
                          networks_file=", ".join(networks_paths) or None, fitted=fitted, fitted_file=fitted_file)
    if not fitted:
        write_estimate(result, Path(out) / "estimate.json")
    if as_json:
        print_json(result)
        return
    listed, trained = result["listed"], result["trained_now"]
    click.echo(f"{listed} networks: {trained} trained now, {listed - trained} read from {out}/accuracies.csv, "
               f"{len(result['failed'])} failed; {result['matched_pairs']} matched-latency pairs, "
               f"{result['resolution_pairs']} resolution pairs; {result['cpu_seconds']['total']:,.0f} CPU s "
               f"of training in all")
    for name, status in result["failed"].items():
        click.echo(f"  {name}: {status}")
    print_table(score_rows(result["scores"]), _SCORE_COLUMNS)
    if fitted:
        click.echo(f"'fitted elsewhere': the estimates of {fitted_file} ({est.networks} networks), "
                   f"not fitted on these networks")
    click.echo(f"written: {out}/fidelity.json, fidelity.csv, fidelity.png, accuracies.csv"
               + ("" if fitted else ", estimate.json"))


def register(main: click.Group) -> None:
    from nas.cli_truth import truth

    proxy.add_command(truth)
    main.add_command(proxy)
