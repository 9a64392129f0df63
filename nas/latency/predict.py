"""Predicting a network's latency on a target from its table, op model and overhead model."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nas.arch import Arch
from nas.errors import NasError
from nas.latency.machine import build_command, check_here, warn_if_foreign
from nas.latency.model import OpModel, Overhead, approximations, choose_block, fit_op_model, network_terms
from nas.latency.table import Table, read_table
from nas.paths import LATENCY_TABLES, USER_LATENCY_TABLES


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency on one target, in milliseconds.

    ops: one dict per op (stem, blocks, head conv, pool, classifier) in network order: op (index),
    kind, key, ms (isolated op time) and source ("table" when the op is in the table, "model" when
    the op model predicted it), and for an op with a primitive no table we derive has measured
    (swish, a sigmoid SE gate) "approximated": what the op model stood in for it.
    `to_dict` names this list "blocks", the documented JSON key of `nas latency predict --json`.
    overhead_ms: latency_ms minus the sum of the ops (what the overhead model adds; may be < 0).
    n_approximated: how many ops carry "approximated" (0 for MobileNetV1/V2/V3-style networks).
    """

    target: str
    latency_ms: float
    runtime: str
    runtime_version: str
    threads: int
    method: str
    ops: list
    n_modelled: int
    overhead_ms: float
    n_approximated: int = 0

    def to_dict(self) -> dict:
        """JSON-safe, as `nas latency predict --json` prints it (the ops under "blocks")."""
        d = asdict(self)
        return {("blocks" if k == "ops" else k): v for k, v in d.items()}


@dataclass(frozen=True)
class Target:
    """A loaded table with its op model and overhead model."""

    name: str
    table: Table
    op_model: OpModel
    overhead: Overhead
    path: str = ""
    mtime_ns: int = 0

    @property
    def header(self) -> dict:
        return self.table.header


def sum_of_ops(table: Table, arch: Arch, model: OpModel) -> float:
    """Summed isolated-op milliseconds of a network: table rows where the table has the op, the
    op model elsewhere (no overhead model)."""
    total = 0.0
    for layer in arch.layers():
        row = table.lookup(layer)
        total += row.ms if row is not None else model.predict(layer)
    return total


def table_dirs(root: Path | None = None) -> list[Path]:
    """The folders holding `<target>.csv` tables, first match wins: `root` when given, else the
    tables built by this user (installed package only, see nas.paths) before the shipped ones."""
    if root is not None:
        return [Path(root)]
    return [Path(d) for d in (USER_LATENCY_TABLES, LATENCY_TABLES) if d is not None]


def known_targets(root: Path | None = None) -> list[str]:
    """Names of the tables in `latency_tables/` (each `<name>.csv`), sorted."""
    return sorted({p.stem for d in table_dirs(root) for p in d.glob("*.csv")})


def _unknown(target: str, root: Path | None) -> NasError:
    known = known_targets(root)
    hint = (f"; to measure this machine: {build_command(target)}"
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", target) else "")
    return NasError(f"target {target!r} is unknown; known targets: {', '.join(known) or '(none)'}{hint}")


def load_target(target: str, root: Path | None = None) -> Target:
    """The target's table and models (cached until its file changes)."""
    if not isinstance(target, str) or "/" in target:
        raise _unknown(str(target), root)
    path = next((p for d in table_dirs(root) if (p := d / f"{target}.csv").is_file()), None)
    if path is None:
        raise _unknown(target, root)
    return _load(str(path), os.stat(path).st_mtime_ns)


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> Target:
    table = read_table(path)
    if "op_model" in table.header:
        model = OpModel.from_dict(table.header["op_model"])
    else:  # a table dropped in without a fitted model (e.g. measured on a phone): fit it now
        rows = table.measured()
        if len(rows) < 2:
            raise NasError(f"{path}: has no op_model in its header and fewer than 2 measured rows to fit one")
        layers, ms = [r.layer for r in rows], np.array([r.ms for r in rows])
        block, _ = choose_block(layers, ms) if len(rows) >= 10 else (1, {})
        model = fit_op_model(layers, ms, block=block, by_group=len(rows) >= 10)
    overhead = Overhead(dict(table.header["overhead"])) if "overhead" in table.header else Overhead()
    return Target(Path(path).stem, table, model, overhead, path, mtime_ns)


def predict_latency(arch: Arch, target: str, strict: bool = False) -> Prediction:
    """Latency of `arch` on `target` in milliseconds: table rows for the ops the table has, the
    op model for the others (counted in n_modelled and marked source "model"), then the overhead
    model on the sum. With strict, an op missing from the table raises NasError."""
    t = load_target(target)
    warn_if_foreign(target, t.path, t.mtime_ns, t.header)
    ops, total, missing, approximated = [], 0.0, [], 0
    for i, layer in enumerate(arch.layers()):
        row = t.table.lookup(layer)
        if row is None:
            missing.append(layer.key)
            ms, source = t.op_model.predict(layer), "model"
        else:
            ms, source = row.ms, "table"
        total += ms
        ops.append({"op": i, "kind": layer.kind, "key": layer.key, "ms": round(ms, 5), "source": source})
        notes = approximations(layer) if source == "model" else []
        if notes:
            ops[-1]["approximated"] = "; ".join(notes)
            approximated += 1
    if strict and missing:
        raise NasError(f"target {target!r}: {len(missing)} op(s) of {arch.name} are not in the table "
                       f"(first: {missing[0]}); without --strict the op model predicts them")
    latency = t.overhead.apply(network_terms(arch, total))
    h = t.header
    return Prediction(target=target, latency_ms=round(latency, 4), runtime=str(h.get("runtime", "")),
                      runtime_version=str(h.get("runtime_version", "")), threads=int(h.get("threads", 1)),
                      method=str(h.get("method", "")), ops=ops, n_modelled=len(missing),
                      overhead_ms=round(latency - total, 4), n_approximated=approximated)


def predict_all_targets(arch: Arch) -> dict[str, float]:
    """Predicted latency in milliseconds of `arch` on every known target."""
    return {t: round(predict_latency(arch, t).latency_ms, 2) for t in known_targets()}


def require_here(target: str, allow_foreign: bool = False) -> None:
    """For `nas search`: raise NasError (one line) when `target`'s table was measured on another
    machine (`nas.latency.machine.check_here`), unless `allow_foreign`. Unknown targets are left
    to the caller's own check."""
    if allow_foreign or target not in known_targets():
        return
    message = check_here(target, load_target(target).header)
    if message:
        raise NasError(f"{message}; or pass --allow-foreign-table to search with it anyway")
