"""Networks from export records and files: `network(source)` builds the module an export writes,
`load(path)` rebuilds one from a `--format pytorch` file, a run checkpoint or an architecture JSON."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nas.arch import load_arch
from nas.builder import build
from nas.checkpoint import load_checkpoint
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
    if path.suffix == ".json":
        if not path.is_file():
            raise NasError(f"{path}: no such file; expected an architecture JSON or a .pt written by nas")
        return network(ExportSource(load_arch(path), None, "initialised", ""))
    c = load_checkpoint(path)
    return network(ExportSource(c.proxy_arch, c.state_dict, "trained", ""))

def load_weights(model: nn.Module, state_dict: dict, name: str) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise NasError(f"weights do not fit architecture {name!r}: {first}") from None
