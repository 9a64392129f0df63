"""Timing ops and networks on this machine, built with `nas.builder`, run by torch or onnxruntime.

Timings on a shared, loaded CPU are noisy, so every measurement here
  * runs on a fixed number of threads (1 by default) with denormals flushed to zero,
  * warms up first, then takes many single-run samples,
  * interleaves: a batch of ops (or networks) is timed round-robin in shuffled order, so a burst
    of load from another process spreads over all of them instead of spoiling one,
  * rejects outliers (beyond 3 scaled MADs of the median) and reports a low quantile (the 10th
    percentile by default) of the rest as the latency: interference only ever adds time, so the
    fast samples are the uncontended ones. On this machine the median of one network drifted by
    10-25 % between passes seconds apart, its 10th percentile by about half that;
  * times on the thread's CPU clock when running on one thread: it stops while another process
    holds the core, so time-slicing by other jobs drops out (on an idle machine it equals the
    wall clock for this compute-bound work); several threads are timed on the wall clock;
  * times "canary" ops (and for networks a canary network) with every batch and times the batch
    again, after a pause, while they run slow against their reference (Canary). Contention for
    cache and memory bandwidth, which the CPU clock does count, shows up there;
  * keeps pace (Pace): the virtual CPU itself runs faster and slower from second to second
    (on an idle Intel Xeon VM here a network's 10th percentile over 3-second windows went
    8.9 -> 12.4 ms and back within a minute, and a single op's with it, their ratio steady to
    +-4 %), so just before each run of samples a pace op is timed, and the samples are scaled by
    its reference time over its time now. A table stores the reference; everything later
    measured against that table (calibration, validation, a search's winner) is scaled to the
    same reference, so predictions and measurements are in one unit: milliseconds at the
    machine's reference pace.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Hashable, Sequence

import numpy as np
import torch

from nas.arch import Arch, Layer
from nas.builder import build, build_layer
from nas.errors import NasError

RUNTIMES = ("onnxruntime", "torch", "tflite")  # tflite: the LiteRT interpreter (XNNPACK), pip install 'nas[tflite]'
LITERT_PACKAGES = ("litert_torch", "ai_edge_litert")
Runner = Callable[[], object]


def runtime_version(runtime: str) -> str:
    """The version string of a runtime ("onnxruntime 1.32.0", "torch 2.13.0+cpu")."""
    check_runtime(runtime)
    if runtime == "torch":
        return f"torch {torch.__version__}"
    if runtime == "tflite":
        from importlib.metadata import version

        require_litert()
        return f"ai-edge-litert {version('ai-edge-litert')}"
    import onnxruntime
    return f"onnxruntime {onnxruntime.__version__}"


def require_litert() -> None:
    """NasError (one line, the install command) unless the LiteRT converter and interpreter are here."""
    import importlib.util

    missing = [m for m in LITERT_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        raise NasError(f"runtime 'tflite' needs the optional LiteRT packages ({', '.join(missing)} missing): "
                       f"pip install 'nas[tflite]'")


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise NasError(f"runtime {runtime!r} is not allowed; expected one of {', '.join(RUNTIMES)}")
    return runtime


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or the platform's processor string)."""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform
    return platform.processor() or "unknown CPU"


def load_average() -> float:
    """The 1-minute load average (runnable processes), or -1 where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def wait_for_quiet(max_load: float = 1.0, max_wait_s: float = 600.0, poll_s: float = 15.0) -> dict:
    """Wait (up to `max_wait_s`) until the 1-minute load average is at most `max_load`.

    Whole networks stream their weights from the shared cache and memory, so another job's work
    inflates them (by 17 % median, up to 38 %, at load 3 here) even on the CPU clock; end-to-end
    measurements wait for a quiet spell. Returns the seconds waited and the load at the end."""
    start = time.monotonic()
    while load_average() > max_load and time.monotonic() - start < max_wait_s:
        time.sleep(poll_s)
    return {"waited_s": round(time.monotonic() - start), "load_average": load_average(),
            "max_load": max_load}


# ---------------------------------------------------------------- runners

def example_input(layer: Layer) -> torch.Tensor:
    """The input an op is timed on (batch 1, fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    shape = (1, layer.cin) if layer.kind == "fc" else (1, layer.cin, layer.size, layer.size)
    return torch.randn(shape, generator=gen)


def _onnx_bytes(module: torch.nn.Module, x: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], do_constant_folding=True)
    return buf.getvalue()


def make_runner(module: torch.nn.Module, x: torch.Tensor, runtime: str, threads: int) -> Runner:
    """A zero-argument callable that runs one inference of `module` on `x`."""
    check_runtime(runtime)
    module = module.eval()
    if runtime == "torch":
        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)

        def run() -> object:
            with torch.inference_mode():
                return module(x)
        run.cpu_clock = threads == 1
        return run
    if runtime == "tflite":
        return _litert_runner(module, x, threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with torch.inference_mode():
        model = _onnx_bytes(module, x)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}

    def run_session() -> object:
        return session.run(None, feed)
    run_session.cpu_clock = threads == 1
    run_session.onnx, run_session.feed, run_session.threads = model, feed, threads
    return run_session


# ---------------------------------------------------------------- what an isolated op pays at its edges

BOUNDARY_RUNS = 25  # profiled runs per op (the first is dropped as warm-up)


def boundary_share(run: Runner, runs: int = BOUNDARY_RUNS) -> float:
    """The share of an onnxruntime op's node time spent converting its input into the runtime's
    blocked layout and its output back (the ReorderInput that runs first and the last
    ReorderOutput, which yields the graph's output shape), read from onnxruntime's profiler.
    Inside a network consecutive ops stay in the blocked layout, so that share is time the op
    alone pays and the network does not. 0.0 for runners of other runtimes."""
    model = getattr(run, "onnx", None)
    if model is None:
        return 0.0
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = run.threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"nas-boundary-{os.getpid()}")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    out_shape = list(session.get_outputs()[0].shape)
    for _ in range(runs):
        session.run(None, run.feed)
    path = session.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        os.remove(path)
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    return _boundary_share(nodes, out_shape, runs)


def _boundary_share(nodes: list[dict], out_shape: list, runs: int) -> float:
    """`boundary_share` from the profiler's node events (in execution order) of `runs` runs: the
    median over the runs after the first of the edge reorders' share of the run's node time."""
    if runs < 2 or not nodes or len(nodes) % runs:
        return 0.0
    per_run = len(nodes) // runs
    first = nodes[:per_run]
    edges = set()
    if first[0]["args"]["op_name"] == "ReorderInput":
        edges.add(first[0]["args"]["node_index"])
    outs = [e for e in first if e["args"]["op_name"] == "ReorderOutput"]
    if outs and list(outs[-1]["args"]["output_type_shape"][0].values())[0] == out_shape:
        edges.add(outs[-1]["args"]["node_index"])
    shares = []
    for r in range(1, runs):
        run = nodes[r * per_run:(r + 1) * per_run]
        total = sum(e["dur"] for e in run)
        shares.append(sum(e["dur"] for e in run if e["args"]["node_index"] in edges) / total if total else 0.0)
    return float(np.median(shares))


def tflite_bytes(module: torch.nn.Module, x: torch.Tensor) -> bytes:
    """`module` converted by litert-torch at the fixed shape of `x`: a .tflite flatbuffer."""
    require_litert()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the converter's C++ logs a line per pass
    import litert_torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode():
        warnings.simplefilter("ignore")
        return litert_torch.convert(module.eval(), (x,)).model_content()


def _litert_runner(module: torch.nn.Module, x: torch.Tensor, threads: int) -> Runner:
    """`module` converted by litert-torch (at the fixed shape of `x`) and run by the LiteRT
    interpreter with its default XNNPACK delegate on `threads` threads: the runtime phones use."""
    require_litert()
    from ai_edge_litert.interpreter import Interpreter

    model = tflite_bytes(module, x)
    interpreter = Interpreter(model_content=model, num_threads=threads)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())

    def run_interpreter() -> object:
        interpreter.invoke()
        return interpreter
    run_interpreter.cpu_clock = threads == 1
    return run_interpreter


def layer_runner(layer: Layer, runtime: str, threads: int) -> Runner:
    """A runner for one op, built by `nas.builder.build_layer`."""
    torch.manual_seed(0)
    return make_runner(build_layer(layer), example_input(layer), runtime, threads)


def arch_runner(arch: Arch, runtime: str, threads: int) -> Runner:
    """A runner for a whole network (batch 1), built by `nas.builder.build`."""
    torch.manual_seed(0)
    return make_runner(build(arch), arch_input(arch), runtime, threads)


def arch_input(arch: Arch) -> torch.Tensor:
    """The input a network is timed on (one image, fixed seed)."""
    return torch.randn(1, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- statistics and timing

@dataclass(frozen=True)
class Timing:
    """Robust statistics of one op's or network's samples, in milliseconds."""

    ms: float        # the latency: the plan's quantile of the kept samples
    median_ms: float
    mean_ms: float
    std_ms: float
    count: int       # samples kept
    rejected: int    # samples dropped as outliers


def robust_stats(samples_ms: Sequence[float], quantile: float = 0.5) -> Timing:
    """Statistics of the samples within 3 scaled MADs (at least 5 %) of the median; the rest are
    rejected as outliers (preemption, page faults). `ms` is the `quantile` of the kept samples."""
    s = np.asarray(samples_ms, dtype=float)
    med = float(np.median(s))
    spread = max(3 * 1.4826 * float(np.median(np.abs(s - med))), 0.05 * med)
    keep = s[np.abs(s - med) <= spread]
    return Timing(float(np.quantile(keep, quantile)), float(np.median(keep)), float(keep.mean()),
                  float(keep.std()), len(keep), len(s) - len(keep))


@dataclass(frozen=True)
class TimingPlan:
    """How hard to time: warm-up runs, interleaved rounds, the per-item time budget, and the
    quantile of the kept samples reported as the latency."""

    warmup: int = 5
    rounds: int = 10
    min_samples: int = 30
    max_samples: int = 200
    budget_s: float = 0.25   # timed seconds per item (after warm-up)
    quantile: float = 0.1
    retries: int = 3         # times a batch is timed again while the canaries run slow


def _one(run: Runner) -> float:
    """Milliseconds of one call: thread CPU time for single-threaded runners, else wall time."""
    clock = time.thread_time if getattr(run, "cpu_clock", False) else time.perf_counter
    start = clock()
    run()
    return (clock() - start) * 1e3


def time_interleaved(runners: dict[Hashable, Runner], plan: TimingPlan = TimingPlan(),
                     seed: int = 0, pace: "Pace | None" = None) -> dict[Hashable, Timing]:
    """Time every runner: warm up, size its samples to the budget, then `plan.rounds` rounds in
    shuffled order, each taking a share of every runner's samples. Milliseconds per inference;
    with `pace`, each share of samples is scaled by the pace factor read just before it."""
    rng = random.Random(seed)
    per_round: dict[Hashable, int] = {}
    for key, run in runners.items():
        warm = [_one(run) for _ in range(plan.warmup)]
        estimate = max(min(warm), 1e-3)
        total = int(min(plan.max_samples, max(plan.min_samples, plan.budget_s * 1e3 / estimate)))
        per_round[key] = max(1, -(-total // plan.rounds))
    samples: dict[Hashable, list[float]] = {k: [] for k in runners}
    keys = list(runners)
    for _ in range(plan.rounds):
        rng.shuffle(keys)
        for key in keys:
            run = runners[key]
            scale = pace.factor() if pace else 1.0
            samples[key].extend(_one(run) * scale for _ in range(per_round[key]))
    return {k: robust_stats(v, plan.quantile) for k, v in samples.items()}


# ---------------------------------------------------------------- keeping pace with the machine

PACE_LAYER = Layer("ir", 28, 40, 40, 5, 1, 120, True, "hswish")  # about 0.5 ms: compute, SE, h-swish
PACE_READS = 3       # runs of the pace op per reading; the fastest is the reading
PACE_START_S = 3.0   # seconds of pace readings that set a new reference
PACE_WINDOW = 15     # the factor is the reference over the median of this many latest readings
PACE_NETWORK = ("mobilenet_v3_small", 0.75, 192)  # the pace of networks (about 1.5 ms): no build
# calibrates on it and no validation checks it, so no network it paces is paced by itself


def pace_network() -> Arch:
    """The network whose speed paces end-to-end timings (PACE_NETWORK: a baseline at another
    width and resolution, named pace:<baseline>-<width>-<resolution>)."""
    from nas.baselines import load_baseline

    name, width, res = PACE_NETWORK
    arch = load_baseline(name).with_overrides(width=width, resolution=res)
    return replace(arch, name=f"pace:{name}-{width:g}-{res}")


class Pace:
    """The machine's speed now against a reference: `factor()` times the pace op (the fastest of
    PACE_READS runs) and returns reference / now, by which the next samples are scaled. "Now" is
    the median of the last PACE_WINDOW readings (under a second): one reading of a 1.5 ms network
    is itself noisy, and scaling by it added more spread than a steady machine has (a V1 timing's
    spread over 9 sessions on a quiet AMD EPYC: raw +-3 %, paced reading by reading +-12 %).

    Without `reference_ms` the reference is set from PACE_START_S seconds of readings (their
    median), and stored with a table (`header()`), so later measurements against that table use
    the same one. With `arch`, that network is the pace instead of the op: end-to-end timings
    are paced by `pace_network()`, since a network feels the shared cache and memory as other
    networks do and the small op barely (benchmarks/bench_timing_repeatability.py compares them)."""

    def __init__(self, runtime: str, threads: int, reference_ms: float | None = None,
                 arch: Arch | None = None, reads: int = PACE_READS) -> None:
        self.op = arch.name if arch is not None else PACE_LAYER.key
        self.reads = reads  # runs per reading (experiments/latency/pace/warm/ compares 3 and 8)
        self.run = (arch_runner(arch, runtime, threads) if arch is not None
                    else layer_runner(PACE_LAYER, runtime, threads))
        for _ in range(5):
            _one(self.run)
        self.readings: list[float] = []
        self.factors: list[float] = []
        self.fresh = reference_ms is None  # the reference is this pace's own, free to re-anchor
        self.anchored_by = 1.0
        if reference_ms is None:
            start = time.monotonic()
            while time.monotonic() - start < PACE_START_S or len(self.readings) < 5:
                self.readings.append(self._read())
            reference_ms = float(np.median(self.readings))
        self.reference_ms = float(reference_ms)

    def _read(self) -> float:
        return min(_one(self.run) for _ in range(self.reads))

    def factor(self) -> float:
        self.readings.append(self._read())
        self.factors.append(self.reference_ms / float(np.median(self.readings[-PACE_WINDOW:])))
        return self.factors[-1]

    def anchor(self) -> float:
        """Move a fresh reference (set from the first PACE_START_S seconds) to the median of every
        reading taken since, and return new / old: what timings already scaled to the old one are
        multiplied by to be at the new one. A stored reference stays (its table's rows are at it)
        and returns 1.0. A build that started in a slow spell set its op pace's reference 1.47x
        the machine's usual (experiments/latency/pace/network/, run 4), and its op rows came
        out in another unit than its calibration networks."""
        if not self.fresh or not self.readings:
            return 1.0
        old, self.reference_ms = self.reference_ms, float(np.median(self.readings))
        self.anchored_by, self.fresh = self.reference_ms / old, False  # anchored once: rows now use it
        return self.anchored_by

    def header(self) -> dict:
        """What a table stores: the pace op and its reference milliseconds."""
        return {"op": self.op, "reference_ms": round(self.reference_ms, 5)}

    def summary(self) -> dict:
        """The reference and the spread of the factors applied (1.0 = the reference pace)."""
        factors = np.array(self.factors or [1.0])
        anchored = {"anchored_by": round(self.anchored_by, 4)} if self.anchored_by != 1.0 else {}
        return {**self.header(), "readings": len(self.readings), **anchored,
                "factor_min": round(float(factors.min()), 3), "factor_max": round(float(factors.max()), 3)}

    @classmethod
    def for_table(cls, header: dict, runtime: str, threads: int) -> "Pace | None":
        """The pace a table's op measurements keep: its stored reference, or None for a table
        measured without one (its rows are raw milliseconds, and so must be what is compared)."""
        stored = header.get("pace")
        if isinstance(stored, dict) and stored.get("op") == PACE_LAYER.key:
            return cls(runtime, threads, float(stored["reference_ms"]))
        return None

    @classmethod
    def for_networks(cls, header: dict, runtime: str, threads: int) -> "Pace | None":
        """The pace a table's end-to-end measurements keep: the pace network at its stored
        reference (`network_pace`, set when the table was calibrated), else the op pace of
        `for_table` (tables calibrated before networks had their own pace)."""
        stored = header.get("network_pace")
        arch = pace_network()
        if isinstance(stored, dict) and stored.get("op") == arch.name:
            return cls(runtime, threads, float(stored["reference_ms"]), arch=arch)
        return cls.for_table(header, runtime, threads)


# ---------------------------------------------------------------- guarding against contention

CANARY_LAYERS = (PACE_LAYER, Layer("conv", 7, 160, 960, act="hswish"))
CANARY_ARCH = "mobilenet_v3_small"  # with networks: its weights do not fit in a core's cache


class Canary:
    """Reference ops (and optionally a reference network) timed alongside every batch.

    Another job on the machine slows things for seconds to minutes at a time, which interleaving
    alone cannot undo; the CPU clock drops time-slicing but not contention for the shared cache
    and memory bandwidth, which hits networks (weights beyond a core's cache) far more than small
    ops. The slowest canary's slowdown against its reference (the best timing seen, or one stored
    with the table) exposes such a batch, which is timed again after a pause."""

    def __init__(self, runtime: str, threads: int, plan: TimingPlan, tolerance: float = 1.08,
                 networks: bool = False, reference: dict[str, float] | None = None,
                 pace: Pace | None = None) -> None:
        self.runners = {f"canary:{l.key}": layer_runner(l, runtime, threads) for l in CANARY_LAYERS}
        if networks:
            from nas.baselines import load_baseline
            self.runners[f"canary:{CANARY_ARCH}"] = arch_runner(load_baseline(CANARY_ARCH), runtime, threads)
        self.plan, self.tolerance, self.retries, self.pace = plan, tolerance, plan.retries, pace
        self.best: dict[Hashable, float] = {k: v for k, v in (reference or {}).items() if k in self.runners}
        self.retimed = 0
        self.accepted: list[float] = []
        for seed in range(3):  # the baseline: the best of a few quick timings (and the reference)
            self._update(time_interleaved(self.runners, plan, seed=seed, pace=pace))

    def _update(self, timings: dict[Hashable, Timing]) -> float:
        ratios = []
        for key in self.runners:
            ms = timings[key].ms
            ratios.append(ms / self.best.get(key, ms))
            self.best[key] = min(self.best.get(key, ms), ms)
        return float(max(ratios))

    def time(self, runners: dict[Hashable, Runner], seed: int = 0, plan: TimingPlan | None = None
             ) -> dict[Hashable, Timing]:
        """Time `runners` with the canaries; retime (pausing first) while the canaries run more
        than `tolerance` slower than their best; keep the least contended attempt."""
        best_attempt, best_ratio = None, float("inf")
        for attempt in range(self.retries + 1):
            timings = time_interleaved({**runners, **self.runners}, plan or self.plan,
                                       seed=seed + 7919 * attempt, pace=self.pace)
            ratio = self._update(timings)
            if ratio < best_ratio:
                best_attempt, best_ratio = timings, ratio
            if ratio <= self.tolerance or attempt == self.retries:
                break
            self.retimed += 1
            time.sleep(min(30.0, 2.0 ** attempt))  # wait for the other job's burst to pass
        self.accepted.append(best_ratio)
        return {k: v for k, v in best_attempt.items() if k in runners}

    def rescale(self, scale: float) -> None:
        """Multiply the canaries' references by `scale` (their pace re-anchored: `Pace.anchor`)."""
        self.best = {k: v * scale for k, v in self.best.items()}

    def summary(self) -> dict:
        """Retimed batches, the canaries' accepted slowdowns (1.0 = as fast as their reference)
        and their reference timings (ms) to store with a table."""
        acc = self.accepted or [1.0]
        return {"retimed_batches": self.retimed, "tolerance": self.tolerance,
                "mean_accepted_slowdown": round(float(np.mean(acc)), 3),
                "worst_accepted_slowdown": round(float(max(acc)), 3),
                "canary_ms": {str(k): round(v, 5) for k, v in self.best.items()}}
