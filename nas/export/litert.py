"""The LiteRT (TFLite) export: conversion with litert-torch, a run in the LiteRT interpreter, and
its latency on this machine. Needs the optional packages of `pip install 'nas[tflite]'`."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.errors import NasError
from nas.export.checks import check_input, compare, quiet
from nas.export.source import ExportSource
from nas.files import write_atomic

TFLITE_EXTRA = "litert-torch==0.10.0"


def require_litert() -> None:
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("litert_torch", "ai_edge_litert")):
        raise NasError(f"--format tflite needs the optional LiteRT packages: pip install 'nas[tflite]' "
                       f"(that is {TFLITE_EXTRA}, which keeps torch 2.13)")

def export_tflite(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    x = check_input(source.arch, batch=1)  # a LiteRT model has the fixed shape it was converted at
    step("converting with litert-torch")
    # litert-torch narrates its passes on stdout, which would corrupt `--json` output.
    with quiet(), contextlib.redirect_stdout(io.StringIO()):
        converted = litert_torch.convert(model, (x,))
        write_atomic(out, lambda tmp: converted.export(str(tmp)))
    step("running in the LiteRT interpreter")
    interpreter = Interpreter(model_path=str(out), num_threads=1)
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], x.numpy())
    interpreter.invoke()
    checks = compare(model, x, torch.from_numpy(interpreter.get_tensor(outp["index"]).copy()), "litert")
    checks.update(measure_tflite_latency(interpreter))
    return [out], checks

def measure_tflite_latency(interpreter: Any, runs: int = 50, warmup: int = 5) -> dict:
    """Median and spread of `runs` invocations of an allocated LiteRT interpreter, in milliseconds,
    measured on this machine's CPU (1 thread)."""
    import statistics

    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"litert_latency_ms": round(statistics.median(times), 4),
            "litert_latency_p90_ms": round(times[int(0.9 * (len(times) - 1))], 4),
            "litert_runs": runs, "litert_threads": 1}
