"""Networks from export records and files: `network(source)` builds the module an export writes,
`load(path)` rebuilds one from a `--format pytorch` file, a run checkpoint or an architecture JSON."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nas.arch import arch_from_dict, load_arch
from nas.builder import build
from nas.errors import NasError
from nas.export.source import INIT_SEED, ExportSource


def network(source: ExportSource) -> nn.Module:
    """The PyTorch module of `source` in eval mode: its weights, or initialised with INIT_SEED."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        model = build(source.arch)
    if source.state_dict is not None:
        load_weights(model, source.state_dict, source.arch.name)
    return model.eval()

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

def load_weights(model: nn.Module, state_dict: dict, name: str) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise NasError(f"weights do not fit architecture {name!r}: {first}") from None
