"""Timing ops on an Android phone over adb with TFLite's `benchmark_model`: the same ops a build
times here, converted to .tflite on this machine, pushed to the phone and timed there.

`nas latency build --target my-phone --runtime tflite --adb SERIAL` writes a table whose header
says `measured_on: device` (never compared with the machine predicting) and records the phone's
`getprop` fingerprint. Ops are timed one `benchmark_model` run each (its own warm-up and runs, on
`--threads` threads, optionally pinned with `taskset`), appended as they finish (an interrupted
build resumes), and a canary op is re-timed every BATCH ops to show thermal throttling. Then the
op model is fitted and the overhead model calibrated on whole networks timed the same way.

What has run: the command lines, the parsing of `benchmark_model`'s output and the table built
from it, against a stand-in `adb` in the tests. No phone was attached where this was written, so
none of it has timed a real device (docs/latency.md says so too).
"""

from __future__ import annotations

import datetime
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from nas.arch import Arch, Layer
from nas.builder import build, build_layer
from nas.errors import NasError
from nas.latency.build import (BATCH, BuildResult, build_layers, calibrate, calibration_set,
                               check_calibration, fit_table_model, table_path, wide_count)
from nas.latency.measure import CANARY_LAYERS, Timing, arch_input, example_input, tflite_bytes
from nas.latency.table import KEY_FORMAT, Row, append_rows, building, finish_build, read_table, start_table
from nas.space import Space

DEVICE_DIR = "/data/local/tmp/nas"
DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
_PAIR = re.compile(r"(\w+)=([-+0-9.eE]+)")


def parse_benchmark_output(text: str) -> Timing:
    """The timing of a `benchmark_model` run from its output: the last line with `count=` and
    `avg=` (the measured runs; the warm-up's line has no avg). Microseconds become milliseconds.
    `ms` is the 5th percentile where the tool prints one (`p5=`, recent releases), else the
    average; `median_ms` the median, or the average."""
    lines = [l for l in text.splitlines() if "count=" in l and "avg=" in l]
    if not lines:
        last = next((l.strip() for l in reversed(text.splitlines()) if l.strip()), "(nothing)")
        raise NasError(f"benchmark_model printed no timing line (count=... avg=...); its last line: {last}")
    v = {k: float(x) for k, x in _PAIR.findall(lines[-1])}
    avg = v["avg"] / 1000
    return Timing(ms=v.get("p5", v["avg"]) / 1000, median_ms=v.get("median", v["avg"]) / 1000, mean_ms=avg,
                  std_ms=v.get("std", 0.0) / 1000, count=int(v["count"]), rejected=0)


@dataclass(frozen=True)
class Device:
    """One phone reached with `adb -s serial`."""

    serial: str
    adb: str = "adb"
    timeout_s: float = 600.0

    def run(self, *args: str) -> str:
        cmd = [self.adb, "-s", self.serial, *args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except FileNotFoundError:
            raise NasError(f"--adb: '{self.adb}' is not on PATH; install Android's platform tools "
                           f"(Debian: apt install adb)") from None
        except subprocess.TimeoutExpired:
            raise NasError(f"adb: '{shlex.join(cmd)}' did not finish within {self.timeout_s:g} s") from None
        if p.returncode != 0:
            said = (p.stderr or p.stdout).strip().splitlines()
            raise NasError(f"adb: '{shlex.join(cmd)}' failed (exit code {p.returncode})"
                           + (f": {said[-1]}" if said else ""))
        return p.stdout

    def shell(self, command: str) -> str:
        return self.run("shell", command)

    def push(self, local: Path, remote: str) -> None:
        self.run("push", str(local), remote)

    def check(self, binary: str) -> None:
        """NasError unless the phone is attached and `binary` is executable on it."""
        state = self.run("get-state").strip()
        if state != "device":
            raise NasError(f"--adb {self.serial}: the phone is '{state}', not ready; `adb devices` lists "
                           f"the attached ones")
        if "ok" not in self.shell(f"test -x {shlex.quote(binary)} && echo ok"):
            raise NasError(f"benchmark_model is not at {binary} on {self.serial}: push TFLite's "
                           f"benchmark_model there (adb -s {self.serial} push benchmark_model {binary}; "
                           f"adb -s {self.serial} shell chmod +x {binary}) or pass --benchmark-binary")
        self.shell(f"mkdir -p {DEVICE_DIR}")

    def fingerprint(self) -> dict:
        props = {"maker": "ro.product.manufacturer", "model": "ro.product.model",
                 "soc": "ro.board.platform", "abi": "ro.product.cpu.abi", "android": "ro.build.version.release"}
        out = {k: self.shell(f"getprop {p}").strip() or "unknown" for k, p in props.items()}
        return {"serial": self.serial, **out}


@dataclass(frozen=True)
class DeviceTimer:
    """Times .tflite models on a `Device` with `benchmark_model`."""

    device: Device
    threads: int = 1
    binary: str = DEFAULT_BINARY
    warmup: int = 20
    runs: int = 100
    cpu_mask: str | None = None   # e.g. "f0": the big cores of many phones (taskset)
    convert: Callable = tflite_bytes

    def command(self, remote: str) -> str:
        pin = f"taskset {shlex.quote(self.cpu_mask)} " if self.cpu_mask else ""
        return (f"{pin}{shlex.quote(self.binary)} --graph={shlex.quote(remote)} --num_threads={self.threads} "
                f"--use_xnnpack=true "
                f"--warmup_runs={self.warmup} --num_runs={self.runs}")

    def time_model(self, model: bytes, name: str) -> Timing:
        remote = f"{DEVICE_DIR}/{name}.tflite"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / f"{name}.tflite"
            local.write_bytes(model)
            self.device.push(local, remote)
        return parse_benchmark_output(self.device.shell(self.command(remote)))

    def time_layer(self, layer: Layer) -> Timing:
        return self.time_model(self.convert(build_layer(layer), example_input(layer)), "op")

    def time_arch(self, arch: Arch) -> Timing:
        return self.time_model(self.convert(build(arch), arch_input(arch)), "net")


def build_device_table(target: str, space: Space, timer: DeviceTimer, samples: int = 24,
                       calibration: int = 16, path: Path | None = None,
                       progress: Callable[[Iterable, int], Iterable] | None = None,
                       baselines: bool = True) -> BuildResult:
    """Time the ops of `build_layers(space, samples)` (the baselines' and the random networks',
    as a quick build) on the phone, fit the op model, then time `calibration` random networks and
    the wide ones end to end and fit the overhead model. Resumes a table of the same phone."""
    check_calibration(calibration, samples)
    started = time.monotonic()
    timer.device.check(timer.binary)
    path = Path(path or table_path(target))
    with building(path) as partial:
        fingerprint = timer.device.fingerprint()
        existing = read_table(partial) if partial.exists() else read_table(path) if path.exists() else None
        if existing is not None and existing.rows and existing.header.get("machine") != fingerprint:
            raise NasError(f"{path}: was measured on {existing.header.get('machine')}, not on this phone "
                           f"({fingerprint}); use another --target")
        header = {
            "target": target, "device": f"{fingerprint['maker']} {fingerprint['model']} (over adb)",
            "runtime": "tflite", "runtime_version": f"benchmark_model at {timer.binary} (XNNPACK)",
            "threads": timer.threads, "date": datetime.date.today().isoformat(), "method": "measured",
            "measured_on": "device", "machine": fingerprint, "build": "adb",
            "how": (f"Each op built alone by nas.builder.build_layer, batch 1, float32, converted to .tflite by "
                    f"litert-torch on the host, pushed with adb and timed by `{timer.command('<op>.tflite')}`; "
                    f"ms is benchmark_model's p5 (its average where it prints no p5). Ops: the baselines' and "
                    f"those of {samples} random architectures of {Path(space.path).name}; a canary op is "
                    f"re-timed every {BATCH} ops (canary_ms) to show throttling."),
            "key_format": KEY_FORMAT,
            "space": Path(space.path).name, "samples": samples}
        table = start_table(partial, header, existing)
        wanted = build_layers(space, samples, baselines, heads=False, wide=wide_count(calibration))
        todo = [l for l in wanted if l.key not in table.rows]
        canary = CANARY_LAYERS[0]
        canary_ms = list(table.header.get("canary_ms", []))
        batches = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
        for batch in progress(batches, len(todo)) if progress else batches:
            canary_ms.append(round(timer.time_layer(canary).ms, 5))
            for layer in batch:
                t = timer.time_layer(layer)
                append_rows(partial, [Row(layer, t.ms, t.mean_ms, t.std_ms, t.count, "measured")])
        table = read_table(partial)
        table.header["canary_ms"] = canary_ms
        cv = fit_table_model(table)
        cal_mape = terms = None
        if calibration > 0:
            archs = calibration_set(space, calibration)
            cal_mape = calibrate(table, archs, [timer.time_arch(a).ms for a in archs])
            terms = table.header["overhead_fit"]["terms"]
        table.header["build_seconds"] = {"total": round(time.monotonic() - started)}
        finish_build(table, path)
        return BuildResult(path, len(todo), len(wanted) - len(todo), cv, cal_mape, terms)
