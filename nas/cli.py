"""The `nas` command line. Each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
from typing import Any

import click

from nas import cli_export, cli_latency, cli_proxy, cli_search, cli_supernet, cli_train
from nas.cli_common import arch_options, print_json, print_table
from nas.errors import NasError


class NasGroup(click.Group):
    """A click group whose usage errors and NasErrors become one line and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        argv = kwargs.get("args", args[0] if args else None)
        try:
            _refuse_empty_values(sys.argv[1:] if argv is None else list(argv))
            return super().main(*args, **kwargs)
        except NasError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (try '{ctx.command_path} --help')" if ctx is not None else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(2)


def _refuse_empty_values(argv: list[str]) -> None:
    """NasError naming an empty value on the command line: no option or argument of nas takes
    one, and as a path it would read as the current folder (or, for --out, the default)."""
    for i, arg in enumerate(argv):
        if arg == "" or (arg.startswith("--") and arg.endswith("=")):
            option = arg[:-1] if arg else argv[i - 1] if i and argv[i - 1].startswith("--") else None
            what = f"{option}: the value" if option else "an argument"
            raise NasError(f"{what} '' is empty; expected a value")


@click.group(cls=NasGroup)
@click.version_option(package_name="nas")
def main() -> None:
    """Hardware-aware architecture search for MobileNetV3-style networks."""
    from nas.paths import check_home

    check_home()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def baselines(as_json: bool) -> None:
    """List the shipped baseline architectures with their size and cost."""
    from nas.baselines import baseline_names, load_baseline
    from nas.cost import arch_cost

    rows = []
    for name in baseline_names():
        arch = load_baseline(name)
        cost = arch_cost(arch)
        rows.append({"name": name, "resolution": arch.resolution, "width_mult": arch.width_mult,
                     "blocks": len(arch.blocks), "params": cost.params, "madds": cost.madds})
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "resolution", "width_mult", "blocks", "params", "madds"])


@main.command()
@arch_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def show(arch: str, width: float | None, resolution: int | None, as_json: bool) -> None:
    """Show an architecture (baseline name, JSON file or block string) block by block."""
    from nas.report.arch import describe
    from nas.resolve import resolve_arch

    info = describe(resolve_arch(arch, width, resolution))
    if as_json:
        print_json(info)
        return
    click.echo(f"{info['name']}: {info['resolution']}x{info['resolution']} input, "
               f"width x{info['width_mult']}")
    print_table(info["blocks"], [c for c in info["blocks"][0] if c != "key"])
    totals = f"total: {info['params']:,} parameters, {info['madds'] / 1e6:,.1f} M multiply-adds"
    for target, ms in info.get("latency_ms", {}).items():
        totals += f", {ms:.1f} ms on {target}"
    click.echo(totals)


# The command groups of the other cli_* modules register themselves on `main`.
for _module in (cli_latency, cli_train, cli_search, cli_export, cli_proxy, cli_supernet):
    _module.register(main)
