"""Writing a network in each format and checking the file before saying so: onnx passes
`onnx.checker` and onnxruntime reproduces the PyTorch output within `CHECK_ATOL`; torchscript and
pytorch files are reloaded and run; json and string files are decoded back to the same
architecture. tflite lives in `nas.export.litert`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import Arch, dumps_arch, load_arch, save_arch
from nas.blockstring import decode_blocks, encode_blocks
from nas.checkpoint import save_checkpoint
from nas.cost import arch_cost
from nas.errors import NasError
from nas.export.checks import check_input, compare, quiet
from nas.export.litert import export_tflite, require_litert
from nas.export.loading import load, network
from nas.export.source import INIT_SEED, ExportSource, select_source
from nas.files import check_output_path, io_error, write_atomic, write_text_atomic
from nas.progress import steps

FORMATS = ("onnx", "torchscript", "pytorch", "json", "string", "tflite")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "pytorch": ".pt", "json": ".json", "string": ".txt",
            "tflite": ".tflite"}
ONNX_OPSETS = range(18, 24)  # what torch.onnx's exporter writes natively (older opsets fail to convert)
PYTORCH_FILE_FORMAT = "nas-pytorch/1"


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
    """NasError for an `out` that is a folder (or a device, FIFO, socket: `check_output_path`), a
    pytorch `out` ending in .json, or a sidecar file that exists and (when `arch` is known) holds
    something else, unless `force`."""
    if out.is_dir():
        raise NasError(f"--out {out}: is a folder; expected a file path like {out / ('model' + SUFFIXES[fmt])}")
    check_output_path(out, "--out ")
    sidecar = sidecar_of(out, fmt)
    if sidecar is None:
        return
    check_output_path(sidecar, "--out: the file written beside it, ")
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
               "tflite": export_tflite}
    with steps(3, f"export {fmt}", progress) as step:
        step("building the network")
        model = network(source)
        files, checks = writers[fmt](model, source, out, step, opset)
    return ExportResult(fmt, files, source, checks)

def _export_onnx(model: nn.Module, source: ExportSource, out: Path, step, opset: int | None) -> tuple[list[Path], dict]:
    import onnx
    import onnxruntime as ort

    x = check_input(source.arch)
    step("exporting with torch.onnx")
    with quiet():
        write_atomic(out, lambda tmp: torch.onnx.export(
            model, (x,), str(tmp), dynamo=True, verbose=False, external_data=False,
            opset_version=opset or ONNX_OPSETS[0], input_names=["image"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},)))
    step("onnx.checker and onnxruntime")
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    written = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    checks = {"onnx_checker": "passed", "opset": written,
              **compare(model, x, torch.from_numpy(got), "onnxruntime")}
    return [out], checks

def _export_torchscript(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    step("scripting with torch.jit")
    with quiet():  # TorchScript is deprecated upstream but still what many runtimes load
        scripted = torch.jit.script(model)
        write_atomic(out, lambda tmp: torch.jit.save(scripted, str(tmp)))
        step("reloading and comparing")
        reloaded = torch.jit.load(str(out), map_location="cpu").eval()
    x = check_input(source.arch)
    with torch.no_grad():
        got = reloaded(x)
    return [out], compare(model, x, got, "torchscript_reload")

def _export_pytorch(model: nn.Module, source: ExportSource, out: Path, step, opset) -> tuple[list[Path], dict]:
    sidecar = out.with_suffix(".json")
    if sidecar == out:
        raise NasError(f"--out {out}: a pytorch export needs a name not ending in .json (e.g. {out.with_suffix('.pt')})")
    step("saving state_dict and architecture")
    save_checkpoint(out, source.arch, model.state_dict(), format=PYTORCH_FILE_FORMAT, weights=source.weights,
                    note=source.note, run=source.run, trial=source.trial, accuracy=source.accuracy,
                    dataset=source.dataset, normalisation=source.normalisation)
    write_atomic(sidecar, lambda tmp: save_arch(source.arch, tmp))
    step("reloading with nas.load and comparing")
    x = check_input(source.arch)
    with torch.no_grad():
        got = load(out)(x)
    return [out, sidecar], compare(model, x, got, "nas_load")

def _write_block_string(arch: Arch, out: Path) -> Path:
    return write_text_atomic(out, encode_blocks(arch.blocks, arch.stem.out) + "\n")

def _check_json(arch: Arch, out: Path) -> dict:
    if load_arch(out) != arch:
        raise NasError(f"{out}: the written architecture does not load back unchanged")
    return {"reloads_unchanged": True}

def _check_string(arch: Arch, out: Path) -> dict:
    decoded = decode_blocks(out.read_text(), arch.stem.out)
    # the same network, op for op (a field written at its default value comes back left out)
    if decoded != arch.blocks and replace(arch, blocks=decoded).layers() != arch.layers():
        raise NasError(f"{out}: the written block string does not decode back to the same blocks")
    return {"decodes_to_same_blocks": True,
            "not_in_string": "stem, head, resolution, width_mult and num_classes (use --format json for those)"}

def _check_request(fmt: str, opset: int | None) -> None:
    """NasError for an unknown format, a bad opset, or tflite without its optional packages."""
    if fmt not in FORMATS:
        raise NasError(f"--format {fmt!r} is not allowed; expected one of {', '.join(FORMATS)}")
    if fmt == "tflite":
        require_litert()
    if opset is None:
        return
    if fmt != "onnx":
        raise NasError(f"--opset applies to --format onnx only, not {fmt}")
    if opset not in ONNX_OPSETS:
        raise NasError(f"--opset {opset} is not allowed; expected {ONNX_OPSETS[0]}..{ONNX_OPSETS[-1]} "
                       "(torch.onnx writes opset 18 and newer)")
