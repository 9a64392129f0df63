"""`nas proxy truth`: sample a decision band, train it long, and measure any score against it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nas.cli_common import print_json, print_table

_COMPARE_COLUMNS = ["score", "kendall_tau", "spearman", "pairs", "top_k", "regret_points"]


@click.group()
def truth() -> None:
    """Truth sets: networks of one latency band trained long, to measure scores against."""


@truth.command()
@click.option("--target", default="pixel", show_default=True, help="Latency table the band is read on.")
@click.option("--band", required=True, metavar="LO-HI", help="Predicted latency band in ms, e.g. 40-60.")
@click.option("--resolution", default="224", show_default=True, metavar="PIXELS|mixed",
              help="Every network's input side in pixels (compare block choices at one rho), or 'mixed': "
                   "each keeps the resolution the space drew.")
@click.option("--sample", default=24, show_default=True, type=click.IntRange(1, 10_000),
              help="Networks drawn from the space (baselines in the band are added).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed of the draw.")
@click.option("--space", "space_path", type=click.Path(dir_okay=False), default=None,
              help="Search-space YAML (default: the shipped mobilenet_v3 space).")
@click.option("--out", required=True, help="The truth folder to create.")
@click.option("--json", "as_json", is_flag=True, help="Print the networks as JSON.")
def create(target: str, band: str, resolution: str, sample: int, seed: int, space_path: str | None,
           out: str, as_json: bool) -> None:
    """Draw the networks of a truth set into OUT (rerunning with the same settings keeps it)."""
    from nas.latency.predict import load_target
    from nas.proxy.truth import MIXED, create_truth, parse_band

    lo_hi = parse_band(band)
    side = resolution if resolution == MIXED else _side(resolution)
    load_target(target)
    t = create_truth(out, target, lo_hi, side, sample, seed, space_path)
    rows = [{"name": n.name, "origin": n.origin, "params": n.params, "madds_M": round(n.madds / 1e6, 1),
             "latency_ms": round(n.latency_ms, 2)} for n in t.networks]
    if as_json:
        print_json({"truth": str(t.path), "spec": t.spec, "networks": rows})
        return
    print_table(rows, list(rows[0]))
    click.echo(f"{len(rows)} networks in {t.path}")


def _side(text: str) -> int:
    """--resolution as pixels, 32..1024; NasError naming the value and what is allowed otherwise."""
    import re

    from nas.errors import NasError

    side = int(text) if re.fullmatch(r"[0-9]{1,5}", text) else None
    if side is None or not 32 <= side <= 1024:
        raise NasError(f"--resolution: {text!r} is not allowed; expected an integer from 32 to 1,024 or 'mixed'")
    return side


@truth.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), default=None,
              help="Recipe YAML (default: experiments/proxy_recipe.yaml).")
@click.option("--label", required=True, help="Name of this recipe's results (e.g. long, default).")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Train each network at seeds 0..N-1.")
@click.option("--workers", default=1, show_default=True, type=int, help="Training processes.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def train(folder: str, recipe_path: str | None, label: str, seeds: int, workers: int,
          progress: bool | None) -> None:
    """Train every network of FOLDER with a recipe (resumable: a rerun trains only what is missing)."""
    from nas.proxy.runner import check_workers
    from nas.proxy.truth import check_label, load_truth, train_recipe
    from nas.recipe import load_recipe

    check_workers(workers)
    check_label(label)
    recipe = load_recipe(recipe_path)
    t = load_truth(folder)
    n = train_recipe(t, recipe, label, tuple(range(seeds)), workers,
                     sys.stderr.isatty() if progress is None else progress)
    click.echo(f"{label}: {n} trainings now, {len(t.networks) * seeds - n} already in "
               f"{Path(folder) / 'recipes' / label / 'results.csv'}")


@truth.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--truth", "truth_label", default="long", show_default=True,
              help="The label whose mean test accuracy over its seeds is the truth.")
@click.option("--proxy", "proxy_labels", multiple=True, metavar="LABEL",
              help="A trained recipe to score against the truth (repeatable).")
@click.option("--min-seeds", default=None, type=click.IntRange(1, 100),
              help="Score the networks with at least this many truth seeds (default: every seed trained).")
@click.option("--supernet", "supernet_dir", type=click.Path(file_okay=False), default=None,
              help="Also score each network as a subnet of this trained supernet (nas supernet train --out).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def score(folder: str, truth_label: str, proxy_labels: tuple[str, ...], min_seeds: int | None,
          supernet_dir: str | None, as_json: bool) -> None:
    """Score every free and trained score against the truth of FOLDER; writes FOLDER/scores.json."""
    from nas.files import write_text_atomic
    from nas.proxy.truth import load_truth, score_truth

    t = load_truth(folder)
    result = score_truth(t, truth_label, proxy_labels, min_seeds, supernet_dir)
    write_text_atomic(t.path / "scores.json", json.dumps(result, indent=2) + "\n")
    if as_json:
        print_json(result)
        return
    rows = [{"score": k, **{c: v[c] for c in _COMPARE_COLUMNS[1:]}} for k, v in result["scores"].items()]
    if result["noise"] is not None:
        rows.append({"score": f"truth seed {result['truth_seeds'][0]} vs seed {result['truth_seeds'][1]} "
                              f"({result['noise']['networks']} networks)",
                     **{c: result["noise"][c] for c in _COMPARE_COLUMNS[1:]}})
    click.echo(f"truth: {truth_label}, mean test accuracy over seeds {result['truth_seeds']} "
               f"(networks with at least {result['min_seeds']}), {result['networks']} networks")
    print_table(rows, _COMPARE_COLUMNS)
    if result.get("not_subnets"):
        click.echo(f"supernet: {len(result['not_subnets'])} networks are not subnets of {supernet_dir} and are left "
                   f"out of its row: {', '.join(result['not_subnets'])}")
    if result["other_seeds"]:
        click.echo("\nagainst the truth of the other seeds only (a recipe and the truth at one seed share "
                   "initial weights, validation split and part of the images):")
        print_table([{"score": k, **{c: v[c] for c in ["networks", *_COMPARE_COLUMNS[1:]]}}
                     for k, v in result["other_seeds"].items()], ["score", "networks", *_COMPARE_COLUMNS[1:]])
