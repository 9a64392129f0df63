"""Export an architecture or a searched trial for deployment, and check the file before saying so.

    from nas.export import export, load
    result = export("runs/pixel-60ms", "onnx", "winner.onnx")     # best trial of a run
    model = load("winner.pt")                                     # a `--format pytorch` file

What is exported (`select_source`):
- a baseline name, an architecture JSON or a block string: that architecture with initialised
  weights (seed 0);
- a run folder: its best trial (or `trial=N`). When the search kept a checkpoint for that trial
  (it keeps the Pareto trials'), the *trained proxy network* is exported: the network the
  checkpoint's weights belong to (the proxy data set's input size and classes, relaxed strides).
  Otherwise, or when `width` / `resolution` / `num_classes` change the shapes, or `deploy_arch`
  is set, the trial's *deployment architecture* (ImageNet head, deployment resolution) with
  initialised weights. `ExportSource.note` says which, in one sentence.

Every format is checked after writing: onnx passes `onnx.checker` and onnxruntime reproduces the
PyTorch output within `CHECK_ATOL`; torchscript, pytorch and tflite files are reloaded and run;
json and string files are decoded back to the same architecture. Inputs are float32 NCHW images
normalised as in training.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from nas.arch import Arch, arch_from_dict, arch_to_dict, dumps_arch, load_arch, save_arch
from nas.blockstring import decode_blocks, encode_blocks, looks_like_block_string
from nas.builder import build
from nas.cost import arch_cost
from nas.errors import NasError
from nas.files import io_error, write_atomic

FORMATS = ("onnx", "torchscript", "pytorch", "json", "string", "tflite")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "pytorch": ".pt", "json": ".json", "string": ".txt",
            "tflite": ".tflite"}
CHECK_ATOL = 1e-4          # largest allowed |exported - PyTorch| on the check batch
CHECK_RTOL = 1e-3          # ... and that difference over the largest |PyTorch output|
ONNX_OPSETS = range(18, 24)  # what torch.onnx's exporter writes natively (older opsets fail to convert)
CHECK_BATCH = 2            # a batch of 2 also proves the onnx batch axis is dynamic
INIT_SEED = 0              # initialised weights are reproducible
PYTORCH_FILE_FORMAT = "nas-pytorch/1"
TFLITE_EXTRA = "litert-torch==0.10.0"


@dataclass(frozen=True)
class ExportSource:
    """What gets exported: the architecture, its weights (None: initialised) and where from.
    `weights` is "trained" or "initialised"; `note` says why, in one sentence."""

    arch: Arch
    state_dict: dict | None
    weights: str
    note: str
    run: str | None = None
    trial: int | None = None
    accuracy: float | None = None
    dataset: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class ExportResult:
    """Files written and the checks run on them."""

    format: str
    files: list[Path]
    source: ExportSource
    checks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-safe summary (what `nas export --json` prints)."""
        a, s = self.source.arch, self.source
        cost = arch_cost(a)
        return {"format": self.format, "files": [str(p) for p in self.files],
                "bytes": {str(p): p.stat().st_size for p in self.files},
                "arch": a.name, "input_shape": [1, 3, a.resolution, a.resolution],
                "num_classes": a.num_classes, "width_mult": a.width_mult,
                "params": cost.params, "madds": cost.madds,
                "weights": s.weights, "weights_note": s.note, "run": s.run, "trial": s.trial,
                "accuracy": s.accuracy, "dataset": s.dataset, "checks": self.checks, "notes": list(s.notes)}


# ---------------------------------------------------------------- what to export

def select_source(source: str, trial: int | None = None, best: bool = False, width: float | None = None,
                  resolution: int | None = None, num_classes: int | None = None,
                  deploy_arch: bool = False) -> ExportSource:
    """Resolve SOURCE (a run folder, baseline name, architecture JSON or block string) and the
    options into the network to export; see the module docstring for the rules."""
    from nas.baselines import baseline_names
    from nas.resolve import resolve_arch

    path = Path(source)
    if path.is_dir():
        return _source_from_run(source, trial, width, resolution, num_classes, deploy_arch)
    if trial is not None or best:
        raise NasError(f"--trial/--best pick a trial of a run folder; {source!r} is not a folder")
    if (source not in baseline_names() and not path.exists() and path.suffix != ".json"
            and not looks_like_block_string(source)):
        raise NasError(f"{source!r}: no such run folder or architecture; expected a run folder (runs/NAME), "
                       f"a baseline ({', '.join(baseline_names())}), an architecture JSON file "
                       "or a block string like 'ir_r1_k3_s1_e1_c16_nre'")
    arch = resolve_arch(source, width, resolution, num_classes)
    return ExportSource(arch, None, "initialised",
                        f"initialised weights (seed {INIT_SEED}): {source!r} is an architecture, not a run folder")


def _source_from_run(run_dir: str, trial: int | None, width: float | None, resolution: int | None,
                     num_classes: int | None, deploy_arch: bool) -> ExportSource:
    from nas.rundir import open_run

    run = open_run(run_dir)
    t = run.trial(trial) if trial is not None else run.best()
    where = f"trial {t.number} of {run.path}"
    ckpt = run.checkpoint_path(t.number)
    reshaped = any(v is not None for v in (width, resolution, num_classes))
    common = {"run": str(run.path), "trial": t.number, "accuracy": t.accuracy,
              "dataset": run.config.get("dataset"), "notes": run.notes}
    if ckpt is not None and not reshaped and not deploy_arch:
        c = run.checkpoint(t)
        a = c.proxy_arch
        acc = f", val accuracy {c.accuracy:.4f}" if c.accuracy is not None else ""
        note = (f"trained weights of {where}: the proxy network trained on {c.dataset or 'the proxy data'} "
                f"({a.resolution}x{a.resolution} input, {a.num_classes} classes{acc}); "
                "pass --deploy-arch for the deployment architecture with initialised weights")
        return ExportSource(a, c.state_dict, "trained", note, **(common | {"accuracy": c.accuracy,
                                                                            "dataset": c.dataset or common["dataset"]}))
    if ckpt is not None:
        why = ("--width/--resolution/--num-classes change the shapes the checkpoint was trained at"
               if reshaped else "--deploy-arch asked for the deployment architecture")
    elif t.state == "COMPLETE":
        why = "no checkpoint: the search keeps the weights of Pareto-front trials only"
    else:
        why = f"the trial was not trained to the end (state {t.state})"
    arch = t.arch.with_overrides(width=width, resolution=resolution, num_classes=num_classes)
    note = f"initialised weights (seed {INIT_SEED}) of the deployment architecture of {where}: {why}"
    return ExportSource(arch, None, "initialised", note, **common)


# ---------------------------------------------------------------- writing and checking

def export(source: str, fmt: str, out: str | Path, trial: int | None = None, best: bool = False,
           width: float | None = None, resolution: int | None = None, num_classes: int | None = None,
           deploy_arch: bool = False, opset: int | None = None, progress: bool = False,
           force: bool = False) -> ExportResult:
    """Pick the network (`select_source`), write it to `out` in format `fmt` and check the file.
    Raises NasError for bad options and for a file that fails its check. `force`: see `export_arch`."""
    _check_request(fmt, opset)  # before reading a checkpoint, so option errors come first
    _check_out(Path(out), fmt, force)
    chosen = select_source(source, trial, best, width, resolution, num_classes, deploy_arch)
    return export_arch(chosen, fmt, out, opset=opset, progress=progress, force=force)


def export_arch(source: Arch | ExportSource, fmt: str, out: str | Path, opset: int | None = None,
                progress: bool = False, force: bool = False) -> ExportResult:
    """Write one network to `out` in format `fmt` and check it. `source` is an architecture
    (exported with initialised weights) or an `ExportSource` carrying trained weights.
    `out` itself is replaced if it exists (it is the file asked for); a file written beside it
    (the pytorch export's architecture JSON) that exists and differs is only replaced with
    `force`. NasError for an I/O error (disk full, read-only folder), in one line."""
    _check_request(fmt, opset)
    if isinstance(source, Arch):
        source = ExportSource(source, None, "initialised", f"initialised weights (seed {INIT_SEED})")
    out = Path(out)
    _check_out(out, fmt, force, source.arch)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return _write_and_check(source, fmt, out, opset, progress)
    except OSError as e:
        raise io_error(out, e) from None


def sidecar_of(out: Path, fmt: str) -> Path | None:
    """The file a `fmt` export writes beside `out` without being asked (None for most formats)."""
    return out.with_suffix(".json") if fmt == "pytorch" else None


def _check_out(out: Path, fmt: str, force: bool, arch: Arch | None = None) -> None:
    """NasError for an `out` that is a folder, a pytorch `out` ending in .json, or a sidecar file
    that exists and (when `arch` is known) holds something else, unless `force`."""
    if out.is_dir():
        raise NasError(f"--out {out}: is a folder; expected a file path like {out / ('model' + SUFFIXES[fmt])}")
    sidecar = sidecar_of(out, fmt)
    if sidecar is None:
        return
    if sidecar == out:
        raise NasError(f"--out {out}: a pytorch export needs a name not ending in .json (e.g. {out.with_suffix('.pt')})")
    if force or not sidecar.exists():
        return
    if arch is not None and sidecar.is_file():
        try:
            if sidecar.read_text(encoding="utf-8") == dumps_arch(arch):
                return  # the same architecture file, as a re-export writes it
        except (OSError, UnicodeDecodeError):
            pass
    elif arch is None:
        return  # checked again once the network is known
    raise NasError(f"--out {out}: the pytorch export also writes its architecture to {sidecar}, which exists "
                   "and holds something else; move it, pick another --out, or pass --force to replace it")


def _write_and_check(source: ExportSource, fmt: str, out: Path, opset: int | None, progress: bool) -> ExportResult:
    if fmt == "json":
        return ExportResult(fmt, [save_arch(source.arch, out)], source, _check_json(source.arch, out))
    if fmt == "string":
        return ExportResult(fmt, [_write_block_string(source.arch, out)], source, _check_string(source.arch, out))
    writers = {"onnx": _export_onnx, "torchscript": _export_torchscript, "pytorch": _export_pytorch,
               "tflite": _export_tflite}
    with _steps(progress, fmt) as step:
        step("building the network")
        model = network(source)
        files, checks = writers[fmt](model, source, out, step, opset)
    return ExportResult(fmt, files, source, checks)


def network(source: ExportSource) -> nn.Module:
    """The PyTorch module of `source` in eval mode: its weights, or initialised with INIT_SEED."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        model = build(source.arch)
    if source.state_dict is not None:
        _load_weights(model, source.state_dict, source.arch.name)
    return model.eval()


def check_input(arch: Arch, batch: int = CHECK_BATCH) -> torch.Tensor:
    """The fixed batch every check runs: standard-normal float32 NCHW at the arch's resolution."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, arch.resolution, arch.resolution, generator=g)


def _export_onnx(model: nn.Module, source: ExportSource, out: Path, step, opset: int | None) -> tuple[list[Path], dict]:
    import onnx
    import onnxruntime as ort

    x = check_input(source.arch)
    step("exporting with torch.onnx")
    with _quiet():
        torch.onnx.export(model, (x,), str(out), dynamo=True, verbose=False, external_data=False,
                          opset_version=opset or ONNX_OPSETS[0], input_names=["image"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    step("onnx.checker and onnxruntime")
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    written = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    checks = {"onnx_checker": "passed", "opset": written,
              **_compare(model, x, torch.from_numpy(got), "onnxruntime")}
    return [out], checks


def _export_torchscript(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    step("scripting with torch.jit")
    with _quiet():  # TorchScript is deprecated upstream but still what many runtimes load
        torch.jit.save(torch.jit.script(model), str(out))
        step("reloading and comparing")
        reloaded = torch.jit.load(str(out), map_location="cpu").eval()
    x = check_input(source.arch)
    with torch.no_grad():
        got = reloaded(x)
    return [out], _compare(model, x, got, "torchscript_reload")


def _export_pytorch(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    sidecar = out.with_suffix(".json")
    if sidecar == out:
        raise NasError(f"--out {out}: a pytorch export needs a name not ending in .json (e.g. {out.with_suffix('.pt')})")
    step("saving state_dict and architecture")
    buffer = io.BytesIO()  # serialised first, so a full disk fails in a plain write (OSError)
    torch.save({"format": PYTORCH_FILE_FORMAT, "arch": arch_to_dict(source.arch),
                "state_dict": model.state_dict(), "weights": source.weights, "note": source.note,
                "run": source.run, "trial": source.trial, "accuracy": source.accuracy,
                "dataset": source.dataset}, buffer)
    write_atomic(out, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    write_atomic(sidecar, lambda tmp: save_arch(source.arch, tmp))
    step("reloading with nas.load and comparing")
    x = check_input(source.arch)
    with torch.no_grad():
        got = load(out)(x)
    return [out, sidecar], _compare(model, x, got, "nas_load")


def _require_litert() -> None:
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("litert_torch", "ai_edge_litert")):
        raise NasError(f"--format tflite needs the optional LiteRT packages: pip install 'nas[tflite]' "
                       f"(that is {TFLITE_EXTRA}, which keeps torch 2.13)")


def _export_tflite(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    x = check_input(source.arch, batch=1)  # a LiteRT model has the fixed shape it was converted at
    step("converting with litert-torch")
    # litert-torch narrates its passes on stdout, which would corrupt `--json` output.
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):
        litert_torch.convert(model, (x,)).export(str(out))
    step("running in the LiteRT interpreter")
    interpreter = Interpreter(model_path=str(out), num_threads=1)
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], x.numpy())
    interpreter.invoke()
    checks = _compare(model, x, torch.from_numpy(interpreter.get_tensor(outp["index"]).copy()), "litert")
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


def _compare(model: nn.Module, x: torch.Tensor, got: torch.Tensor, name: str) -> dict:
    """Max |got - model(x)|; NasError when it exceeds CHECK_ATOL (the file stays for inspection)."""
    with torch.no_grad():
        want = model(x)
    diff = float((got.float() - want).abs().max())
    scale = float(want.abs().max())
    # Untrained networks give logits near 1e-9, where any absolute difference passes; the
    # difference relative to the largest logit keeps the check meaningful for them too.
    relative = diff / scale if scale > 0 else diff
    checks = {f"{name}_max_abs_diff": diff, "tolerance": CHECK_ATOL, "relative_diff": relative,
              "relative_tolerance": CHECK_RTOL, "output_max_abs": scale, "check_input_shape": list(x.shape)}
    if not (diff < CHECK_ATOL and relative < CHECK_RTOL):
        raise NasError(f"{name} check failed: max abs difference {diff:.3g} against PyTorch (relative "
                       f"{relative:.3g}) is not below {CHECK_ATOL:g} (relative {CHECK_RTOL:g}); "
                       "the file was kept for inspection")
    return checks


def _write_block_string(arch: Arch, out: Path) -> Path:
    out.write_text(encode_blocks(arch.blocks, arch.stem.out) + "\n")
    return out


def _check_json(arch: Arch, out: Path) -> dict:
    if load_arch(out) != arch:
        raise NasError(f"{out}: the written architecture does not load back unchanged")
    return {"reloads_unchanged": True}


def _check_string(arch: Arch, out: Path) -> dict:
    if decode_blocks(out.read_text(), arch.stem.out) != arch.blocks:
        raise NasError(f"{out}: the written block string does not decode back to the same blocks")
    return {"decodes_to_same_blocks": True,
            "not_in_string": "stem, head, resolution, width_mult and num_classes (use --format json for those)"}


# ---------------------------------------------------------------- loading

def load(path: str | Path) -> nn.Module:
    """Rebuild a network in eval mode from a `nas export --format pytorch` file, a run checkpoint
    (`checkpoints/trial_<n>.pt`: the trained proxy network) or an architecture JSON (initialised).
    The module's `.arch` is its architecture."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such file; expected a .pt written by `nas export --format pytorch`")
    if path.suffix == ".json":
        return network(ExportSource(load_arch(path), None, "initialised", ""))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a TorchScript archive, a truncated file, or not torch at all
        raise NasError(f"{path}: not a nas pytorch export ({type(e).__name__}); a torchscript export loads "
                       "with torch.jit.load") from None
    if isinstance(data, dict) and "state_dict" in data and ("proxy_arch" in data or "arch" in data):
        arch = arch_from_dict(data["proxy_arch"] if "proxy_arch" in data else data["arch"])
        return network(ExportSource(arch, data["state_dict"], "trained", ""))
    raise NasError(f"{path}: not a nas pytorch export; expected a dict with arch and state_dict")


def _load_weights(model: nn.Module, state_dict: dict, name: str) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise NasError(f"weights do not fit architecture {name!r}: {first}") from None


# ---------------------------------------------------------------- helpers

def _check_request(fmt: str, opset: int | None) -> None:
    """NasError for an unknown format, a bad opset, or tflite without its optional packages."""
    if fmt not in FORMATS:
        raise NasError(f"--format {fmt!r} is not allowed; expected one of {', '.join(FORMATS)}")
    if fmt == "tflite":
        _require_litert()
    if opset is None:
        return
    if fmt != "onnx":
        raise NasError(f"--opset applies to --format onnx only, not {fmt}")
    if opset not in ONNX_OPSETS:
        raise NasError(f"--opset {opset} is not allowed; expected {ONNX_OPSETS[0]}..{ONNX_OPSETS[-1]} "
                       "(torch.onnx writes opset 18 and newer)")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation warnings and info logs; errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _steps(enabled: bool, fmt: str) -> Iterator[Any]:
    """A step progress bar on stderr; `step(label)` advances it."""
    from tqdm import tqdm

    total = {"onnx": 3, "torchscript": 3, "pytorch": 3, "tflite": 3}[fmt]
    bar = tqdm(total=total, desc=f"export {fmt}", disable=None if enabled else True, leave=False,
               bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
    started = [False]

    def step(label: str) -> None:
        if started[0]:
            bar.update(1)
        started[0] = True
        bar.set_postfix_str(label)

    try:
        yield step
        bar.update(1)
    finally:
        bar.close()


def describe_source(source: ExportSource) -> str:
    """One line naming the network: architecture name, input size, classes, width."""
    a = source.arch
    return (f"{a.name}: {a.resolution}x{a.resolution} input, {a.num_classes} classes, width x{a.width_mult:g}, "
            f"{arch_cost(a).params:,} parameters")

