"""`nas train ARCH`: one proxy trial from the command line (the search's trial function, alone)."""

from __future__ import annotations

import sys
import typing
from dataclasses import fields
from typing import Any, Callable

import click

from nas.cli_common import arch_options, print_json, print_table
from nas.recipe import KNOB_HELP, Recipe

_CLICK_TYPES = {int: int, float: float, str: str}


def _knob_type(name: str) -> type:
    """The plain type of a Recipe knob (int for "int", str for "str | None", ...)."""
    hint = typing.get_type_hints(Recipe)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def recipe_options(f: Callable) -> Callable:
    """One override option per recipe knob (`--train-subset`, `--channels-last/--no-channels-last`,
    ...); an option left out keeps the recipe file's value."""
    for field in reversed(fields(Recipe)):
        flag = field.name.replace("_", "-")
        kind = _knob_type(field.name)
        if kind is bool:
            f = click.option(f"--{flag}/--no-{flag}", field.name, default=None,
                             help=f"{KNOB_HELP[field.name]}.")(f)
        else:
            choices = field.metadata["choices"]
            f = click.option(f"--{flag}", field.name, default=None, help=f"{KNOB_HELP[field.name]}.",
                             type=click.Choice(choices) if choices else _CLICK_TYPES[kind])(f)
    return f


@click.command()
@arch_options
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), default=None,
              help="Recipe YAML file (default: experiments/proxy_recipe.yaml).")
@recipe_options
@click.option("--test", "evaluate_test", is_flag=True,
              help="Also score the final model on the test set (final evaluation, not search).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Save the trained proxy model (arch, recipe, state_dict) to this file.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def train(arch: str, width: float | None, resolution: int | None, recipe_path: str | None,
          evaluate_test: bool, checkpoint: str | None, progress: bool | None, as_json: bool,
          **knobs: Any) -> None:
    """Train ARCH with the proxy recipe and print its validation accuracy after every epoch."""
    from nas.files import check_output_path
    from nas.recipe import load_recipe, recipe_to_dict
    from nas.resolve import resolve_arch
    from nas.train import TrainingFailed, train_arch

    if checkpoint:  # refused before training, not after
        check_output_path(checkpoint, "--checkpoint ")
    net = resolve_arch(arch, width, resolution)
    recipe = load_recipe(recipe_path, **knobs)
    try:
        result = train_arch(net, recipe, evaluate_test=evaluate_test,
                            progress=sys.stderr.isatty() if progress is None else progress)
    except TrainingFailed as e:
        click.echo(f"error: training failed: {e}", err=True)
        sys.exit(1)
    _print_result(net, result, recipe_to_dict(recipe), evaluate_test, as_json, _imagenet_estimate(net, recipe, result))
    if checkpoint:  # after the result is out, so a checkpoint that cannot be written loses no result
        _save_checkpoint(checkpoint, result.model, recipe_to_dict(recipe), result.normalisation)


def _imagenet_estimate(net: Any, recipe: Any, result: Any) -> float | None:
    """The ImageNet top-1 estimate (%) `nas search` ranks this network by, or None when the
    shipped estimate was fitted for another recipe (see nas.estimate)."""
    from nas.errors import NasError
    from nas.estimate import estimate_for

    try:
        return round(estimate_for(recipe).predict(net, result.accuracy), 2)
    except NasError:
        return None


def _print_result(net: Any, result: Any, recipe: dict, evaluate_test: bool, as_json: bool,
                  estimate: float | None) -> None:
    if as_json:
        out = {"accuracy": result.accuracy, "epochs": result.epochs, "seconds": round(result.seconds, 3),
               "imagenet_estimate": estimate}
        if evaluate_test:
            out["test_accuracy"] = result.test_accuracy
        print_json({**out, "arch": net.name, "recipe": recipe})
        return
    print_table([{"epoch": i + 1, "val_accuracy_%": round(100 * a, 2)} for i, a in enumerate(result.epochs)],
                ["epoch", "val_accuracy_%"])
    line = f"{net.name}: val accuracy {result.accuracy:.4f} in {result.seconds:.1f} s"
    if result.test_accuracy is not None:
        line += f", test accuracy {result.test_accuracy:.4f}"
    if estimate is not None:
        line += f"; ImageNet top-1 estimate {estimate:.1f} % (what nas search ranks by)"
    click.echo(line)


def _save_checkpoint(path: str, model: Any, recipe: dict, normalisation: dict | None) -> None:
    """Write the trained proxy (its architecture, the recipe, the weights, the input
    normalisation) whole or not at all; NasError (one line, exit 2) for an I/O error."""
    from nas.checkpoint import save_checkpoint

    save_checkpoint(path, model.arch, model.state_dict(), recipe=recipe, normalisation=normalisation)


def register(main: click.Group) -> None:
    main.add_command(train)
