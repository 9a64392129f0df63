"""Which torch device a trial trains on.

A device is written as the recipe knob and flag `device`: `auto` (CUDA if present, then Apple's
MPS, then the CPU), `cpu`, `cuda`, `cuda:N` or `mps`. `check_spec` accepts or rejects the text
alone (a recipe written on a GPU machine still loads on a laptop); `resolve` turns it into the
`torch.device` of this machine and refuses, in one line, a device this machine does not have.

Several trials can share the machine's GPUs: `worker_device(spec, worker, trials_per_gpu)` places
worker w of an Optuna search on GPU (w // trials_per_gpu) mod the GPU count. A Ray trial is
given its GPU by Ray, which makes it the only visible one, so it is simply `cuda:0` there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nas.errors import NasError

if TYPE_CHECKING:  # torch is imported where a device is resolved, not where a recipe is read
    import torch

ALLOWED = "auto, cpu, cuda, cuda:N or mps"
_SPEC = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_spec(spec: object) -> str:
    """`spec` if it is a well-formed device name; NasError naming it and what is allowed."""
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise NasError(f"device {str(spec)[:40]!r} is not allowed; expected {ALLOWED}")
    return spec


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available() -> list[str]:
    """The devices this machine can train on, CPU last: cuda:0 .. cuda:N-1, mps, cpu."""
    return [f"cuda:{i}" for i in range(gpu_count())] + (["mps"] if _mps_available() else []) + ["cpu"]


def resolve(spec: str) -> "torch.device":
    """The torch.device `spec` names on this machine; NasError (one line, the devices there are)
    when it is not here: `cuda` on a machine without CUDA, `cuda:3` with two GPUs."""
    import torch

    spec = check_spec(spec)
    here = available()
    if spec == "auto":
        return torch.device(here[0])
    if spec == "cuda" and any(d.startswith("cuda") for d in here):
        return torch.device("cuda:0")
    if spec in here:
        return torch.device(spec)
    why = ("this torch has no CUDA support" if spec.startswith("cuda") and torch.version.cuda is None
           else "no such device here")
    raise NasError(f"device {spec!r} is not available ({why}; torch {torch.__version__}); "
                   f"this machine has {', '.join(here)}")


def gpu_count() -> int:
    """CUDA devices visible to this process."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_device(spec: str, worker: int, trials_per_gpu: int = 1) -> str:
    """The device worker `worker` (0-based) of a multi-process search trains on. `auto` and
    `cuda` spread workers over the GPUs, `trials_per_gpu` consecutive workers on each; an explicit
    `cuda:N`, `mps` or `cpu` is the same for every worker; `auto` without CUDA resolves as usual."""
    spec = check_spec(spec)
    gpus = gpu_count()
    if spec in ("auto", "cuda") and gpus:
        return f"cuda:{(worker // max(1, trials_per_gpu)) % gpus}"
    return str(resolve(spec))


def describe(device: "torch.device") -> str:
    """A short name of the hardware behind `device`, for run folders: "cpu",
    "cuda:0 (NVIDIA A100-SXM4-40GB)", "mps"."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
