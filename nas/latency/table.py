"""Latency tables: one CSV file per target in `latency_tables/`, a YAML header in `#` lines.

    # target: local-cpu
    # device: ...                      provenance: device, runtime, runtime_version, threads,
    # ...                              date, method (measured | derived), how
    # op_model: {pw_madds: 0.0119, ...}   the fitted per-op model (optional; fitted on load if absent)
    # overhead: {ops_ms: 1.02, ...}       the whole-network overhead model (optional; identity)
    key,kind,size,cin,exp,cout,kernel,stride,se,act,ms,mean_ms,std_ms,count,source
    ir-56x56x24-e72-o24-k3-s1-se0-relu,ir,56,24,72,24,3,1,0,relu,0.2311,0.2330,0.0041,60,measured

`key` is `Layer.key` (see `docs/latency.md`); the columns after it spell the same signature out so
a file written by hand or on a phone can be checked. `ms` is the value predictions use (the median
of the kept samples when measured here), `mean_ms` / `std_ms` / `count` the sample statistics.
Rows are appended one at a time while a build runs, so an interrupted build resumes.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from nas.arch import Layer
from nas.errors import NasError

COLUMNS = ("key", "kind", "size", "cin", "exp", "cout", "kernel", "stride", "se", "act",
           "ms", "mean_ms", "std_ms", "count", "source")
SOURCES = ("measured", "model")
KINDS = ("stem", "ir", "ds", "conv", "pool", "fc")
_INT_COLUMNS = ("size", "cin", "exp", "cout", "kernel", "stride", "count")


@dataclass(frozen=True)
class Row:
    """One op signature with its latency in milliseconds."""

    layer: Layer
    ms: float
    mean_ms: float
    std_ms: float
    count: int
    source: str = "measured"

    @property
    def key(self) -> str:
        return self.layer.key

    def cells(self) -> list:
        l = self.layer
        return [l.key, l.kind, l.size, l.cin, l.exp, l.cout, l.kernel, l.stride, int(l.se), l.act,
                f"{self.ms:.5g}", f"{self.mean_ms:.5g}", f"{self.std_ms:.3g}", self.count, self.source]


@dataclass
class Table:
    """A target's header (provenance and fitted models) and its rows by key."""

    header: dict
    rows: dict[str, Row] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return str(self.header.get("target", ""))

    def lookup(self, layer: Layer) -> Row | None:
        """The row for `layer`, trying the header's `act_aliases` (e.g. relu -> relu6, two clamps
        that cost the same when fused) after the exact key."""
        row = self.rows.get(layer.key)
        if row is None and layer.act in self.header.get("act_aliases", {}):
            alias = Layer(layer.kind, layer.size, layer.cin, layer.cout, layer.kernel, layer.stride,
                          layer.exp, layer.se, self.header["act_aliases"][layer.act])
            row = self.rows.get(alias.key)
        return row

    def measured(self) -> list[Row]:
        return [r for r in self.rows.values() if r.source == "measured"]


def _plain(value: Any) -> Any:
    """Header values as plain YAML types (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _header_text(header: dict) -> str:
    text = yaml.safe_dump(_plain(header), sort_keys=False, width=100, default_flow_style=None)
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


def _row_from_cells(where: str, cells: dict) -> Row:
    try:
        ints = {c: int(cells[c]) for c in _INT_COLUMNS}
        layer = Layer(cells["kind"], ints["size"], ints["cin"], ints["cout"], ints["kernel"],
                      ints["stride"], ints["exp"], bool(int(cells["se"])), cells["act"])
        row = Row(layer, float(cells["ms"]), float(cells["mean_ms"]), float(cells["std_ms"]),
                  ints["count"], cells["source"])
    except (KeyError, TypeError, ValueError) as e:
        raise NasError(f"{where}: unreadable row ({e}); expected columns {','.join(COLUMNS)}") from None
    if layer.kind not in KINDS:
        raise NasError(f"{where}: kind {layer.kind!r} is not allowed; expected one of {', '.join(KINDS)}")
    if row.source not in SOURCES:
        raise NasError(f"{where}: source {row.source!r} is not allowed; expected one of {', '.join(SOURCES)}")
    if cells["key"] != layer.key:
        raise NasError(f"{where}: key {cells['key']!r} does not match its columns (expected {layer.key!r})")
    if not row.ms > 0:
        raise NasError(f"{where}: ms {row.ms!r} is not allowed; expected a number > 0")
    return row


def read_table(path: str | Path) -> Table:
    """Parse a table file; raises NasError naming the file and line of the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such latency table")
    lines = path.read_text().splitlines()
    head = [l[2:] if l.startswith("# ") else l[1:] for l in lines if l.startswith("#")]
    try:
        header = yaml.safe_load("\n".join(head)) or {}
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML header: {str(e).splitlines()[0]}") from None
    if not isinstance(header, dict):
        raise NasError(f"{path}: the '#' header must be a YAML mapping")
    body = [(i + 1, l) for i, l in enumerate(lines) if l.strip() and not l.startswith("#")]
    table = Table(header)
    if not body:
        return table
    columns = next(csv.reader([body[0][1]]))
    if tuple(columns) != COLUMNS:
        raise NasError(f"{path}:{body[0][0]}: columns must be {','.join(COLUMNS)}")
    for lineno, line in body[1:]:
        cells = next(csv.reader([line]))
        if len(cells) != len(COLUMNS):
            continue  # a line cut short by an interrupted build; it is measured again on resume
        row = _row_from_cells(f"{path}:{lineno}", dict(zip(COLUMNS, cells)))
        table.rows[row.key] = row
    return table


def write_table(table: Table, path: str | Path) -> Path:
    """Write the whole file atomically (header, columns, rows sorted by key)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    out.write(_header_text(table.header))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for key in sorted(table.rows):
        writer.writerow(table.rows[key].cells())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(out.getvalue())
    os.replace(tmp, path)
    return path


def start_table(path: str | Path, header: dict) -> Table:
    """Open a table for an incremental build: read it if it exists (keeping its rows), else
    create it with `header`. The header of an existing file is updated with `header`."""
    path = Path(path)
    table = read_table(path) if path.exists() else Table({})
    table.header.update(header)
    write_table(table, path)
    return table


def append_rows(path: str | Path, rows: Iterable[Row]) -> None:
    """Append rows to a table file and flush them to disk (one build step survives a kill)."""
    with open(path, "a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for row in rows:
            writer.writerow(row.cells())
        f.flush()
        os.fsync(f.fileno())
