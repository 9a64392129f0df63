"""What every export check shares: the fixed input batch, the comparison with PyTorch and a quiet
exporter. Inputs are float32 NCHW images normalised as in training."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

import torch
from torch import nn

from nas.arch import Arch
from nas.errors import NasError

CHECK_ATOL = 1e-4          # largest allowed |exported - PyTorch| on the check batch
CHECK_RTOL = 1e-3          # ... and that difference over the largest |PyTorch output|
CHECK_BATCH = 2            # a batch of 2 also proves the onnx batch axis is dynamic


def check_input(arch: Arch, batch: int = CHECK_BATCH) -> torch.Tensor:
    """The fixed batch every check runs: standard-normal float32 NCHW at the arch's resolution."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, arch.resolution, arch.resolution, generator=g)

def compare(model: nn.Module, x: torch.Tensor, got: torch.Tensor, name: str) -> dict:
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


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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
