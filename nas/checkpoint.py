"""The one writer of `.pt` files: trial checkpoints (`checkpoints/trial_<n>.pt`), `nas train
--checkpoint`, and `nas export --format pytorch` all go through `save_checkpoint`.

A checkpoint is a plain dict that `torch.load(..., weights_only=True)` reads back: the
architecture as the dict `nas.arch.arch_to_dict` gives, the `state_dict`, and the caller's other
fields (numbers, strings, architecture dicts). It is serialised in memory first and then written
whole or not at all (`nas.files.write_atomic`), so a full disk fails in a plain write and never
leaves half a file. Readers: `nas.rundir.load_checkpoint` (trial checkpoints) and `nas.load`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from nas.arch import Arch, arch_to_dict
from nas.files import write_atomic


def save_checkpoint(path: str | Path, arch: Arch, state_dict: dict, **fields: Any) -> Path:
    """Write {"arch": arch_to_dict(arch), "state_dict": state_dict, **fields} to `path`
    atomically; an `Arch` among `fields` is stored as its dict too. Returns the path; NasError
    (one line) for an I/O error."""
    data = {"arch": arch_to_dict(arch), "state_dict": state_dict}
    data.update({k: arch_to_dict(v) if isinstance(v, Arch) else v for k, v in fields.items()})
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return write_atomic(Path(path), lambda tmp: tmp.write_bytes(buffer.getvalue()))
