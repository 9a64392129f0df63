"""`nas latency ...`: predict, list targets, build a table here, derive the pixel table, validate."""

from __future__ import annotations

import re

import click

from nas.cli_common import arch_options, print_json, print_table
from nas.errors import NasError
from nas.latency.build import PACES
from nas.latency.measure import RUNTIMES


def register(main: click.Group) -> None:
    main.add_command(latency_group)


@click.group("latency")
def latency_group() -> None:
    """Per-device latency tables: predict, build, derive, validate."""


def _progress(label: str):
    """A wrapper for the timing loops: yields their batches of ops while a bar counts the ops."""
    from nas.progress import bar

    def wrap(batches, total):
        with bar(total=total, desc=label, unit="op", file=click.get_text_stream("stderr")) as timed:
            for batch in batches:
                yield batch
                timed.update(len(batch))
    return wrap


@latency_group.command("predict")
@arch_options
@click.option("--target", "-t", required=True, help="A table of latency_tables/ (see 'nas latency targets').")
@click.option("--strict", is_flag=True, help="Fail when an op is missing from the table instead of modelling it.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def predict(arch: str, width: float | None, resolution: int | None, target: str, strict: bool,
            as_json: bool) -> None:
    """Predict ARCH's latency on a target, op by op."""
    from nas.latency import predict_latency
    from nas.resolve import resolve_arch

    p = predict_latency(resolve_arch(arch, width, resolution), target, strict=strict)
    if as_json:
        print_json(p.to_dict())
        return
    print_table([{**b, "ms": f"{b['ms']:9.4f}"} for b in p.ops], ["op", "kind", "key", "ms", "source"])
    click.echo(f"sum of ops {p.latency_ms - p.overhead_ms:.3f} ms, overhead model {p.overhead_ms:+.3f} ms")
    click.echo(f"latency: {p.latency_ms:.2f} ms on {target} ({p.runtime_version or p.runtime}, "
               f"{p.threads} thread{'s' if p.threads != 1 else ''})")
    if p.n_modelled:
        click.echo(f"note: {p.n_modelled} of {len(p.ops)} ops are not in the table and were predicted "
                   f"by the op model (source 'model'); --strict makes that an error")
    if p.n_approximated:
        first = next(b for b in p.ops if "approximated" in b)
        click.echo(f"note: {p.n_approximated} op(s) use a primitive no op of this table measured; the op "
                   f"model approximated it (first: op {first['op']}, {first['approximated']}); "
                   f"treat the latency as an estimate")


@latency_group.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def targets(as_json: bool) -> None:
    """List the latency tables: device, runtime, threads, measured or derived."""
    from nas.latency import known_targets, load_target
    from nas.latency.machine import status

    rows = []
    for name in known_targets():
        h = load_target(name).header
        rows.append({"name": name, "device": h.get("device", ""), "runtime": h.get("runtime", ""),
                     "version": h.get("runtime_version", ""), "threads": h.get("threads"),
                     "method": h.get("method", ""), "measured_on": status(name, h),
                     "ops": len(load_target(name).table.rows), "date": str(h.get("date", ""))})
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "method", "measured_on", "device", "runtime", "version", "threads", "ops", "date"])


@latency_group.command("build")
@click.option("--target", "-t", required=True, help="Name of the table to write (latency_tables/NAME.csv).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="onnxruntime", show_default=True,
              help="onnxruntime, torch, or tflite (the LiteRT interpreter with XNNPACK, as on phones; "
                   "pip install 'nas[tflite]').")
@click.option("--threads", type=int, default=1, show_default=True, help="Threads the runtime may use.")
@click.option("--space", "space_file", default=None, help="Search-space YAML (default: search_spaces/mobilenet_v3.yaml).")
@click.option("--samples", type=int, default=None,
              help="Time the ops of this many random architectures (plus the baselines' and, unless "
                   "--quick, every head op) [default: 400; 24 with --quick].")
@click.option("--calibration", type=int, default=None,
              help="Of those, measure this many end to end, with half as many networks of "
                   "search_spaces/calibration_wide.yaml, to fit the overhead model (0: skip) "
                   "[default: 40; 16 with --quick].")
@click.option("--max-wait", type=float, default=None,
              help="Seconds to wait for a quiet machine (load average <= 1) before timing networks "
                   "[default: 600; 15 with --quick].")
@click.option("--quick", is_flag=True,
              help="About 3 minutes: fewer ops, shorter timing, the op model for the rest (see docs/latency.md).")
@click.option("--pace", "pace_mode", type=click.Choice(list(PACES)), default="none", show_default=True,
              help="A new table: what scales timings to the machine's reference speed (raw; ops by a pace op "
                   "and networks by a pace network; both by the op); see docs/latency.md.")
@click.option("--edges", is_flag=True,
              help="onnxruntime: take off each op's time the layout reorders at its edges, which a network "
                   "pays once (measured with onnxruntime's profiler; an experiment, see docs/latency.md).")
@click.option("--adb", "serial", default=None, metavar="SERIAL",
              help="Time the ops on this attached Android phone (adb -s SERIAL) with TFLite's "
                   "benchmark_model instead of on this machine; needs --runtime tflite.")
@click.option("--benchmark-binary", default=None, metavar="PATH",
              help="With --adb: where benchmark_model is on the phone [default: /data/local/tmp/benchmark_model].")
@click.option("--cpu-mask", default=None, metavar="HEX",
              help="With --adb: pin benchmark_model to these cores with taskset (e.g. f0, the big cores of many phones).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(target: str, runtime: str, threads: int, space_file: str | None, samples: int | None,
          calibration: int | None, max_wait: float | None, quick: bool, pace_mode: str, edges: bool, serial: str | None,
          benchmark_binary: str | None, cpu_mask: str | None, as_json: bool) -> None:
    """Time the op signatures of a search space on this machine (or a phone, --adb) into a table (resumable)."""
    from nas.latency.build import (QUICK_CALIBRATION, QUICK_MAX_WAIT_S, QUICK_OP_PASSES, QUICK_PLAN,
                                   QUICK_SAMPLES, build_table)
    from nas.latency.measure import TimingPlan
    from nas.space import load_space

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", target):
        raise NasError(f"target {target!r} is not allowed; expected letters, digits, '-', '_' or '.'")
    for name, value in (("samples", samples), ("calibration", calibration)):
        if value is not None and value < 0:
            raise NasError(f"--{name}: {value} is not allowed; expected an integer >= 0")
    if serial is None and (benchmark_binary or cpu_mask):
        raise NasError("--benchmark-binary and --cpu-mask are not allowed without --adb SERIAL")
    if serial is not None:
        _build_on_phone(target, runtime, threads, load_space(space_file), samples, calibration, serial,
                        benchmark_binary, cpu_mask, as_json)
        return
    r = build_table(target, load_space(space_file), runtime, threads,
                    samples if samples is not None else QUICK_SAMPLES if quick else 400,
                    calibration if calibration is not None else QUICK_CALIBRATION if quick else 40,
                    plan=QUICK_PLAN if quick else TimingPlan(),
                    progress=_progress(f"timing ops ({runtime}, {threads} thread(s))"),
                    max_wait_s=max_wait if max_wait is not None else QUICK_MAX_WAIT_S if quick else 600, quick=quick,
                    edges=edges, pace_mode=pace_mode, op_passes=QUICK_OP_PASSES if quick else 1)
    _report_build(r, as_json)


def _report_build(r, as_json: bool) -> None:
    out = {"table": str(r.path), "timed": r.timed, "reused": r.reused,
           "op_model_cv_mape_pct": r.op_model_cv_mape_pct, "calibration_mape_pct": r.calibration_mape_pct,
           "overhead_terms": r.overhead_terms, "warning": r.warning}
    if as_json:
        print_json(out)
    else:
        click.echo(f"{r.path}: timed {r.timed} ops, kept {r.reused} already measured; op model "
                   f"cross-validated MAPE {r.op_model_cv_mape_pct} %; overhead model fit MAPE "
                   f"{r.calibration_mape_pct} %" + (f" (terms {' + '.join(r.overhead_terms)})"
                                                    if r.overhead_terms else ""))
        if r.warning:
            click.echo(f"warning: {r.warning}", err=True)


def _build_on_phone(target: str, runtime: str, threads: int, space, samples: int | None,
                    calibration: int | None, serial: str, binary: str | None, cpu_mask: str | None,
                    as_json: bool) -> None:
    from nas.latency.adb import DEFAULT_BINARY, Device, DeviceTimer, build_device_table
    from nas.latency.build import QUICK_CALIBRATION, QUICK_SAMPLES
    from nas.latency.measure import require_litert

    if runtime != "tflite":
        raise NasError(f"--adb: runtime {runtime!r} is not allowed; a phone runs --runtime tflite")
    if cpu_mask is not None and not re.fullmatch(r"[0-9a-fA-F]+", cpu_mask):
        raise NasError(f"--cpu-mask: {cpu_mask!r} is not allowed; expected a hexadecimal core mask such as f0")
    require_litert()
    timer = DeviceTimer(Device(serial), threads, binary or DEFAULT_BINARY, cpu_mask=cpu_mask)
    r = build_device_table(target, space, timer, samples if samples is not None else QUICK_SAMPLES,
                           calibration if calibration is not None else QUICK_CALIBRATION,
                           progress=_progress(f"timing ops on {serial} (benchmark_model, {threads} thread(s))"))
    _report_build(r, as_json)


@latency_group.command("derive")
@click.option("--target", "-t", default="pixel", show_default=True, help="Only 'pixel' is derived.")
@click.option("--json", "as_json", is_flag=True, help="Print the derivation report as JSON.")
def derive(target: str, as_json: bool) -> None:
    """Derive the pixel table from the ProxylessNAS op table and published latencies."""
    from nas.latency.pixel import derive_pixel, write_report

    if target != "pixel":
        raise NasError(f"target {target!r} cannot be derived; derivable targets: pixel")
    d = derive_pixel()
    report = write_report(d)
    if as_json:
        print_json({"fit": d.table.header["fit"], "op_model": d.op_model.to_dict(), "scale": d.scale,
                    "networks": d.rows})
        return
    print_table([{**r, "era": str(r["era"])} for r in d.rows],
                ["name", "era", "role", "published_ms", "predicted_ms", "error_pct"])
    fit = d.table.header["fit"]
    click.echo(f"fitted on {fit['fitted_networks']['networks']} networks: MAPE {fit['fitted_networks']['mape_pct']} %; "
               f"held out {fit['holdout_networks']['networks']}: MAPE {fit['holdout_networks']['mape_pct']} %, "
               f"{fit['holdout_networks']['within_10pct']} % within ±10 %")
    click.echo(f"wrote {report.with_name('pixel.csv')} and {report}")


@latency_group.command("validate")
@click.option("--target", "-t", required=True, help="A table measured on this machine.")
@click.option("--samples", type=int, default=50, show_default=True, help="Random architectures to measure.")
@click.option("--space", "space_file", default=None, help="Search-space YAML (default: search_spaces/mobilenet_v3.yaml).")
@click.option("--no-missing", is_flag=True, help="Do not time the ops the table lacks.")
@click.option("--max-wait", type=float, default=600, show_default=True,
              help="Seconds to wait for a quiet machine (load average <= 1) before timing networks.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(target: str, samples: int, space_file: str | None, no_missing: bool, max_wait: float,
             as_json: bool) -> None:
    """Measure random networks of the space and networks outside it (baselines, MnasNet,
    ProxylessNAS, hand-made variants) end to end; compare with predictions, per group."""
    from nas.latency.validate import validate as run
    from nas.space import load_space

    if samples < 3:
        raise NasError(f"samples: {samples} is not allowed; expected an integer >= 3")
    v = run(target, load_space(space_file), samples, measure_missing=not no_missing,
            progress=_progress("timing ops the table lacks"), max_wait_s=max_wait)
    if as_json:
        print_json(v.report)
        return
    print_table(v.rows, list(v.rows[0]))
    for name in ("as_shipped", "as_shipped_adjusted", "table_complete", "table_complete_adjusted"):
        for subset, m in v.report.get(name, {}).items():
            click.echo(f"{name:24s} {subset:9s} n={m['n']:3d}  Spearman {m['spearman']:.3f}  MAPE {m['mape_pct']:.2f} %  "
                       f"within ±10 % {m['within_10pct']:.1f} %  worst {m['max_abs_error_pct']:.1f} %")
    r = v.report.get("repeatability")
    if r:
        click.echo(f"{'repeatability':24s} {'calib.':9s} n={r['n']:3d}  Spearman {r['spearman']:.3f}  MAPE {r['mape_pct']:.2f} %  "
                   f"within ±10 % {r['within_10pct']:.1f} %  worst {r['max_abs_error_pct']:.1f} %  "
                   f"(calibration networks timed now vs at build: how well this machine's timings repeat)")
    n = v.report["naive_sum_of_ops"]
    click.echo(f"naive sum of isolated ops / measured: {n['sum_over_measured_min']}-{n['sum_over_measured_max']}; "
               f"overhead model {v.report['overhead_model']}")
    if "op_model_on_missing_ops" in v.report:
        m = v.report["op_model_on_missing_ops"]
        click.echo(f"op model on {m['n']} ops the table lacks: MAPE {m['mape_pct']} %, {m['within_10pct']} % within ±10 %")
    f = v.report["contention_factor"]
    click.echo(f"contention factor per batch (calibration networks re-timed vs when calibrated): "
               f"{f['min']:.3f}-{f['max']:.3f}")
    if "warning" in v.report:
        click.echo(f"warning: {v.report['warning']}")
    click.echo(f"plot: {v.png}")


@latency_group.command("ops")
@click.option("--space", "space_file", default=None, help="Search-space YAML (default: search_spaces/mobilenet_v3.yaml).")
@click.option("--samples", type=int, default=400, show_default=True, help="Random architectures whose ops to list.")
def ops(space_file: str | None, samples: int) -> None:
    """Print, as table rows to fill in, the op signatures `build` would time (for a phone)."""
    import csv
    import sys

    from nas.latency.build import build_layers
    from nas.latency.table import COLUMNS
    from nas.space import load_space

    layers = build_layers(load_space(space_file), samples)  # a bad space fails before any output
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(COLUMNS)
    for l in layers:
        w.writerow([l.key, l.kind, l.size, l.cin, l.exp, l.cout, l.kernel, l.stride, int(l.se), l.act,
                    "", "", "", "", "measured"])
