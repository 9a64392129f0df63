"""The one `.pt` format, written and read here: trial checkpoints (`checkpoints/trial_<n>.pt`),
`nas train --checkpoint` and `nas export --format pytorch` all go through `save_checkpoint`,
and every reader (`nas.load`, run folders, export, report) through `load_checkpoint`.

A checkpoint is a plain dict that `torch.load(..., weights_only=True)` reads back: the
architecture as the dict `nas.arch.arch_to_dict` gives, the `state_dict`, and the caller's other
fields (numbers, strings, architecture dicts). It is serialised in memory first and then written
whole or not at all (`nas.files.write_atomic`), so a full disk fails in a plain write and never
leaves half a file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.arch import Arch, arch_from_dict, arch_to_dict
from nas.errors import NasError
from nas.files import write_atomic


@dataclass(frozen=True)
class Checkpoint:
    """Trained weights and what they belong to. The weights fit `proxy_arch` (the network actually
    trained: small input, the proxy data set's classes, relaxed strides); `arch` is the deployment
    network (the same as `proxy_arch` in a file that names only one)."""

    path: Path
    arch: Arch
    proxy_arch: Arch
    state_dict: dict
    accuracy: float | None
    dataset: str
    classes: tuple[str, ...]
    trial: int | None = None
    normalisation: dict | None = None  # {"mean", "std"} of 0..1 RGB input; None in older checkpoints


def save_checkpoint(path: str | Path, arch: Arch, state_dict: dict, **fields: Any) -> Path:
    """Write {"arch": arch_to_dict(arch), "state_dict": state_dict, **fields} to `path`
    atomically; an `Arch` among `fields` is stored as its dict too. Returns the path; NasError
    (one line) for an I/O error."""
    import torch  # here, not at the top: run folders read this module without needing torch loaded

    data = {"arch": arch_to_dict(arch), "state_dict": state_dict}
    data.update({k: arch_to_dict(v) if isinstance(v, Arch) else v for k, v in fields.items()})
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return write_atomic(Path(path), lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a `.pt` that `save_checkpoint` wrote (tensors, architecture dicts and numbers only:
    `weights_only`). NasError naming the file for a missing, truncated or foreign one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such file; expected a .pt written by nas (a search's checkpoints/, "
                       f"nas train --checkpoint or nas export --format pytorch)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a TorchScript archive, a truncated file, or not torch at all
        raise NasError(f"{path}: not a readable nas checkpoint ({type(e).__name__}: {str(e)[:200]}); "
                       f"a torchscript export loads with torch.jit.load") from None
    if not isinstance(data, dict) or not {"arch", "state_dict"} <= set(data):
        raise NasError(f"{path}: not a nas checkpoint; expected a dict with arch and state_dict")
    arch = arch_from_dict(data["arch"])
    accuracy, trial = data.get("accuracy"), data.get("trial")
    return Checkpoint(path=path, arch=arch,
                      proxy_arch=arch_from_dict(data["proxy_arch"]) if "proxy_arch" in data else arch,
                      state_dict=data["state_dict"],
                      accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
                      dataset=str(data.get("dataset", "") or ""), classes=tuple(data.get("classes", ()) or ()),
                      trial=trial if isinstance(trial, int) and not isinstance(trial, bool) else None,
                      normalisation=_normalisation(data.get("normalisation")))


def _normalisation(value: Any) -> dict | None:
    """A checkpoint's {"mean": [3 numbers], "std": [3 numbers]}, or None when absent or malformed."""
    ok = isinstance(value, dict) and all(
        isinstance(value.get(k), (list, tuple)) and len(value[k]) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[k]) for k in ("mean", "std"))
    return {"mean": [float(v) for v in value["mean"]], "std": [float(v) for v in value["std"]]} if ok else None
