"""What the `nas` commands share: the ARCH argument with its overrides, JSON and table output.
The command modules (`cli_*`) import it; `nas.cli` registers them on the `nas` group."""

from __future__ import annotations

import json
from typing import Any, Callable

import click

from nas.tables import text_table


def arch_options(f: Callable) -> Callable:
    """The ARCH argument and the alpha / rho overrides every architecture command accepts."""
    f = click.option("--resolution", type=int, default=None, help="Override rho: input side in pixels.")(f)
    f = click.option("--width", type=float, default=None, help="Override alpha: width multiplier.")(f)
    return click.argument("arch")(f)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Rows as an aligned text table (nas.tables.text_table); numbers right-aligned."""
    click.echo(text_table(rows, columns))
