"""`nas export` and `nas report`."""

from __future__ import annotations

import click

from nas.cli_common import print_json, print_table
from nas.export import FORMATS


@click.command()
@click.argument("source", metavar="ARCH|RUN_DIR")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="onnx, torchscript, pytorch (state_dict + architecture; nas.load reads it), json "
                   "(architecture file), string (block string), tflite (needs pip install nas[tflite]).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--trial", type=int, default=None, help="Trial number of RUN_DIR (default: the best trial).")
@click.option("--best", is_flag=True, help="The best trial of RUN_DIR (the default).")
@click.option("--num-classes", type=int, default=None, help="Classifier outputs (deployment architecture).")
@click.option("--resolution", type=int, default=None, help="Input side in pixels (deployment architecture).")
@click.option("--width", type=float, default=None, help="Width multiplier alpha (deployment architecture).")
@click.option("--deploy-arch", is_flag=True,
              help="From RUN_DIR, export the deployment architecture with initialised weights even "
                   "when the trial has trained proxy weights.")
@click.option("--opset", type=int, default=None, help="ONNX opset, 18..23 (default 18).")
@click.option("--force", is_flag=True,
              help="Replace a file the export writes beside --out (pytorch: OUT.json) even when it holds "
                   "something else.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written and the checks as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def export(source, fmt, out, trial, best, num_classes, resolution, width, deploy_arch, opset, force, as_json,
           no_progress):
    """Export an architecture (baseline name, JSON file, block string) or a run's trial, then check
    the written file (onnx: onnx.checker + onnxruntime against PyTorch)."""
    from nas.errors import NasError
    from nas.export import describe_source, export as run_export

    if trial is not None and best:
        raise NasError("--trial and --best pick different trials; pass one of them")
    result = run_export(source, fmt, out, trial=trial, best=best, width=width, resolution=resolution,
                        num_classes=num_classes, deploy_arch=deploy_arch, opset=opset, progress=not no_progress,
                        force=force)
    if as_json:
        print_json(result.to_dict())
        return
    for path in result.files:
        click.echo(f"wrote {path} ({_size(path.stat().st_size)})")
    click.echo(f"network: {describe_source(result.source)}")
    click.echo(f"weights: {result.source.note}")
    click.echo(f"check:   {_check_line(result.format, result.checks)}")
    for note in result.source.notes:
        click.echo(f"note: {note}")


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _check_line(fmt: str, checks: dict) -> str:
    diff = next((k for k in checks if k.endswith("_max_abs_diff")), None)
    if diff is None:
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in checks.items())
    runner = {"onnx": "onnxruntime", "torchscript": "reloaded TorchScript", "pytorch": "nas.load",
              "tflite": "LiteRT interpreter"}[fmt]
    line = (f"{runner} vs PyTorch max abs difference {checks[diff]:.2e} (< {checks['tolerance']:g}, "
            f"{checks['relative_diff']:.1e} of the largest output) on a {checks['check_input_shape']} batch")
    if fmt == "onnx":
        line = f"onnx.checker passed, opset {checks['opset']}; " + line
    if "litert_latency_ms" in checks:
        line += (f"; LiteRT latency on this machine {checks['litert_latency_ms']:.2f} ms median "
                 f"({checks['litert_runs']} runs, {checks['litert_threads']} thread)")
    return line


@click.command()
@click.argument("run_dir")
@click.option("--top-k", default=10, show_default=True, help="Rows in the table of most accurate trials.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written and the headline numbers as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def report(run_dir, top_k, as_json, no_progress):
    """Write report.md and PNG plots into RUN_DIR: accuracy vs latency with the Pareto front,
    best so far, the top trials and the winner's latency per block."""
    from nas.report import write_report
    from nas.report.markdown import estimate_cell
    from nas.search.trials_table import ESTIMATE_COLUMN

    result = write_report(run_dir, top_k=top_k, progress=not no_progress)
    if as_json:
        print_json(result.to_dict())
        return
    for path in result.files:
        click.echo(f"wrote {path}")
    h = result.headline
    w = h["winner"]
    est = lambda v: estimate_cell(h["ranked_by"], v)
    rows = []
    if w is not None:
        rows.append({"network": f"winner (trial {w['trial']})", **est(w[ESTIMATE_COLUMN]),
                     "accuracy %": round(100 * w["accuracy"], 2), "latency ms": w["latency_ms"]})
    for b in h["baselines"].values():
        rows.append({"network": f"{b['label']} ({b['state'].lower()})", **est(b[ESTIMATE_COLUMN]),
                     "accuracy %": None if b["accuracy"] is None else round(100 * b["accuracy"], 2),
                     "latency ms": round(b["latency_ms"], 2)})
    states = ", ".join(f"{n} {s.lower()}" for s, n in h["states"].items())
    budget = "no budget" if h["budget_ms"] is None else f"budget {h['budget_ms']:g} ms"
    click.echo(f"{h['trials']} trials ({states}); {budget} on {h['target']}")
    if rows:
        print_table(rows, list(rows[0]))
    for note in result.notes:
        click.echo(f"note: {note}")


def register(main: click.Group) -> None:
    main.add_command(export)
    main.add_command(report)
