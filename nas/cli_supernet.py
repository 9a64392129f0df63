"""`nas supernet train` and `nas supernet eval`: a weight-sharing evaluator (nas.supernet)."""

from __future__ import annotations

import sys
import time

import click

from nas.cli_common import arch_options, print_json, print_table


@click.group()
def supernet() -> None:
    """One supernet holding every network of a search space: train once, score any subnet in seconds."""


@supernet.command()
@click.option("--space", "space_path", type=click.Path(dir_okay=False), default=None,
              help="Search-space YAML (default: the shipped mobilenet_v3 space).")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), default=None,
              help="Recipe YAML: data, image side, optimizer, schedule (default: experiments/proxy_recipe.yaml).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder of the supernet (resumed when it holds an unfinished one).")
@click.option("--epochs", type=click.IntRange(1, 10_000), default=None, help="Replace the recipe's epochs.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Replace the recipe's seed.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the training history as JSON.")
def train(space_path: str | None, recipe_path: str | None, out: str, epochs: int | None, seed: int | None,
          progress: bool | None, as_json: bool) -> None:
    """Train the supernet of a space with the sandwich rule and in-place distillation into OUT."""
    from nas.recipe import load_recipe
    from nas.space import DEFAULT_SPACE, load_space
    from nas.supernet import train_supernet

    space_path = space_path or str(DEFAULT_SPACE)
    load_space(space_path)  # refused in one line before any data is loaded
    recipe = load_recipe(recipe_path, seed=seed)
    trained = train_supernet(space_path, recipe, out, epochs,
                             progress=sys.stderr.isatty() if progress is None else progress)
    if as_json:
        print_json({"out": out, "epochs": trained.epochs, "history": trained.history})
        return
    print_table(trained.history, ["epoch", "loss", "seconds", "cpu_seconds", "largest_val", "smallest_val"])
    click.echo(f"supernet of {trained.space.name}: {trained.finished} of {trained.epochs} epochs in {out}")


@supernet.command(name="eval")
@click.argument("folder", type=click.Path(file_okay=False))
@arch_options
@click.option("--test", "evaluate_test", is_flag=True,
              help="Score on the test set instead of the validation split (final evaluation, not search).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def eval_(folder: str, arch: str, width: float | None, resolution: int | None, evaluate_test: bool,
          as_json: bool) -> None:
    """Score ARCH (baseline name, JSON file or block string) as a subnet of the supernet in FOLDER:
    validation accuracy after BatchNorm recalibration."""
    from nas.resolve import resolve_arch
    from nas.supernet import SubnetEvaluator

    net = resolve_arch(arch, width, resolution)
    evaluator = SubnetEvaluator(folder)
    start, cpu = time.perf_counter(), time.process_time()
    accuracy = evaluator.accuracy(net, test=evaluate_test)
    split = "test" if evaluate_test else "val"
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if as_json:
        print_json({"arch": net.name, "accuracy": accuracy, "split": split, "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu_seconds, 3), "supernet_epochs": evaluator.trained.finished})
        return
    click.echo(f"{net.name}: {split} accuracy {accuracy:.4f} as a subnet of {folder} "
               f"({evaluator.trained.finished} epochs) in {seconds:.1f} s")


def register(main: click.Group) -> None:
    main.add_command(supernet)
