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
While a build runs its rows are appended to `<table>.partial`, so an interrupted build resumes;
the table itself is written whole when the build is done (`building`, `finish_build`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from nas.arch import Layer, with_options_suffix
from nas.errors import NasError
from nas.fileio import read_text, short
from nas.files import io_error, write_text_atomic
from nas.locks import lock_file, locked

COLUMNS = ("key", "kind", "size", "cin", "exp", "cout", "kernel", "stride", "se", "act",
           "ms", "mean_ms", "std_ms", "count", "source")
SOURCES = ("measured", "model")
KEY_FORMAT = "<kind>-<H>x<W>x<C>-e<exp>-o<out>-k<kernel>-s<stride>-se<0|1>-<act>"  # what Layer.key spells, for table headers
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
            alias = replace(layer, act=self.header["act_aliases"][layer.act])
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


MAX_TABLE_BYTES = 64 << 20   # the full local-cpu table is about 0.5 MB
_LIMITS = {"size": (1, 4096), "cin": (0, 1 << 16), "exp": (0, 1 << 17), "cout": (0, 1 << 16),
           "kernel": (1, 15), "stride": (1, 4), "count": (0, 1 << 31)}
ACTS = ("relu", "relu6", "hswish", "swish", "none")
METHODS = ("measured", "derived")
MEASURED_ON = ("machine", "device", "derived")


class _HeaderLoader(yaml.SafeLoader):
    """safe_load for table headers: no aliases (write_table never emits them, and they are how a
    small header expands into a huge one) and no duplicate keys."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise NasError(f"header line {mark.line + 1}: YAML aliases (*name) are not allowed in a table header")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float)) or isinstance(key, bool):
                raise NasError(f"header line {key_node.start_mark.line + 1}: key {short(key)} is not allowed; "
                               f"keys are names or numbers")
            if key in seen:
                raise NasError(f"header line {key_node.start_mark.line + 1}: duplicate key {short(key)}; "
                               f"each key may appear once per mapping")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _load_header(path: Path, text: str) -> dict:
    try:
        header = yaml.load(text, Loader=_HeaderLoader)
    except yaml.YAMLError as e:
        raise NasError(f"{path}: malformed YAML header: {str(e).splitlines()[0][:200]}") from None
    except NasError as e:
        raise NasError(f"{path}: {e}") from None
    except (ValueError, RecursionError) as e:
        raise NasError(f"{path}: bad YAML header value: {str(e)[:200]}") from None
    header = {} if header is None else header
    if not isinstance(header, dict):
        raise NasError(f"{path}: the '#' header must be a YAML mapping")
    return header


def _number(where: str, name: str, text: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not (value > 0 if positive else value >= 0):
        raise NasError(f"{where}: {name} {short(text)} is not allowed; expected a finite number "
                       f"{'> 0' if positive else '>= 0'} (milliseconds)")
    return value


def _integer(where: str, name: str, text: str) -> int:
    lo, hi = _LIMITS.get(name, (0, 1))
    try:
        value = int(text) if len(text) <= 12 else None
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise NasError(f"{where}: {name} {short(text)} is not allowed; expected an integer from {lo} to {hi:,}")
    return value


def _row_from_cells(where: str, cells: dict) -> Row:
    """One row, every cell checked: integers in range, milliseconds finite (ms > 0, mean_ms and
    std_ms >= 0), kind/act/se/source from their lists, the key equal to the columns' signature."""
    ints = {c: _integer(where, c, cells[c].strip()) for c in _INT_COLUMNS}
    for name, value, allowed in (("kind", cells["kind"], KINDS), ("act", cells["act"], ACTS),
                                 ("se", cells["se"], ("0", "1")), ("source", cells["source"], SOURCES)):
        if value not in allowed:
            raise NasError(f"{where}: {name} {short(value)} is not allowed; expected one of {', '.join(allowed)}")
    layer = Layer(cells["kind"], ints["size"], ints["cin"], ints["cout"], ints["kernel"],
                  ints["stride"], ints["exp"], cells["se"] == "1", cells["act"])
    key = cells["key"]
    if key.startswith(layer.key + "-"):  # block options beyond the columns (arch.options_suffix)
        layer = with_options_suffix(layer, key[len(layer.key):]) or layer
    if key != layer.key:
        raise NasError(f"{where}: key {short(cells['key'])} does not match its columns (expected {layer.key!r})")
    return Row(layer, _number(where, "ms", cells["ms"], True), _number(where, "mean_ms", cells["mean_ms"], False),
               _number(where, "std_ms", cells["std_ms"], False), ints["count"], cells["source"])


def _check_coefficients(where: str, value: Any, allowed: tuple, extra: tuple = ()) -> None:
    if not isinstance(value, dict):
        raise NasError(f"{where}: {short(value)} is not allowed; expected a mapping of "
                       f"{', '.join(allowed)} to numbers")
    for name, c in value.items():
        if name in extra:
            continue
        if name not in allowed:
            raise NasError(f"{where}: {short(name)} is not allowed; expected one of {', '.join(allowed + extra)}")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
            raise NasError(f"{where}.{name}: {short(c)} is not allowed; expected a finite number")


def check_header(where: str, header: dict) -> dict:
    """The header's fields that predictions read, checked: op_model (block, feature coefficients
    >= 0, groups), overhead (finite coefficients of its terms), act_aliases (activation to
    activation), threads, method, measured_on, machine, pace and network_pace (op and
    reference_ms > 0). NasError naming the field otherwise."""
    from nas.latency.model import BLOCKS, FEATURES, GROUPS, OVERHEAD_TERMS

    if "op_model" in header:
        m = header["op_model"]
        _check_coefficients(f"{where}: op_model", m, FEATURES, ("block", "groups"))
        if isinstance(m.get("block", 1), bool) or m.get("block", 1) not in BLOCKS:
            raise NasError(f"{where}: op_model.block {short(m.get('block'))} is not allowed; expected one of "
                           f"{', '.join(map(str, BLOCKS))}")
        groups = m.get("groups", {})
        allowed = tuple(dict.fromkeys(GROUPS.values()))
        if not isinstance(groups, dict):
            raise NasError(f"{where}: op_model.groups {short(groups)} is not allowed; expected a mapping of "
                           f"{', '.join(allowed)} to coefficients")
        for g, coef in groups.items():
            if g not in allowed:
                raise NasError(f"{where}: op_model.groups.{short(g)} is not allowed; expected one of {', '.join(allowed)}")
            _check_coefficients(f"{where}: op_model.groups.{g}", coef, FEATURES)
        for name, c in [(k, v) for k, v in m.items() if k in FEATURES] + \
                [(f"groups.{g}.{k}", v) for g, cs in groups.items() for k, v in cs.items()]:
            if c < 0:
                raise NasError(f"{where}: op_model.{name}: {c} is not allowed; expected a number >= 0 (ms per unit)")
    if "overhead" in header:
        _check_coefficients(f"{where}: overhead", header["overhead"], OVERHEAD_TERMS)
    aliases = header.get("act_aliases", {})
    if not isinstance(aliases, dict) or not all(k in ACTS and v in ACTS for k, v in aliases.items()):
        raise NasError(f"{where}: act_aliases {short(aliases)} is not allowed; expected a mapping from "
                       f"activation to activation ({', '.join(ACTS)}), e.g. {{relu: relu6}}")
    threads = header.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        raise NasError(f"{where}: threads {short(threads)} is not allowed; expected an integer from 1 to 1,024")
    for name, allowed in (("method", METHODS), ("measured_on", MEASURED_ON)):
        if name in header and header[name] not in allowed:
            raise NasError(f"{where}: {name} {short(header[name])} is not allowed; expected one of {', '.join(allowed)}")
    for name in ("pace", "network_pace"):
        if name not in header:
            continue
        pace = header[name]
        ref = pace.get("reference_ms") if isinstance(pace, dict) else None
        if not isinstance(pace, dict) or not isinstance(pace.get("op"), str) or isinstance(ref, bool) \
                or not isinstance(ref, (int, float)) or not (math.isfinite(ref) and ref > 0):
            raise NasError(f"{where}: {name} {short(pace)} is not allowed; expected a mapping with op (a key "
                           f"or network name) and reference_ms (a finite number > 0)")
    if "machine" in header and not isinstance(header["machine"], dict):
        raise NasError(f"{where}: machine {short(header['machine'])} is not allowed; expected a mapping "
                       f"(cpu, isa, cores, os, runtime, threads)")
    return header


def read_table(path: str | Path) -> Table:
    """Parse and check a table file; raises NasError naming the file and the line or header
    field of the first problem. The last line may be cut short (an interrupted build appends
    row by row): it is skipped, and measured again when the build resumes. A short or long row
    anywhere else, or a key that appears twice, is an error."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such latency table")
    text = read_text(path, "latency table", MAX_TABLE_BYTES)
    lines = text.splitlines()
    head = [l[2:] if l.startswith("# ") else l[1:] for l in lines if l.startswith("#")]
    header = _load_header(path, "\n".join(head))
    check_header(str(path), header)
    body = [(i + 1, l) for i, l in enumerate(lines) if l.strip() and not l.startswith("#")]
    table = Table(header)
    if not body:
        return table
    columns = next(csv.reader([body[0][1]]))
    if tuple(columns) != COLUMNS:
        raise NasError(f"{path}:{body[0][0]}: columns must be {','.join(COLUMNS)}")
    first_line: dict[str, int] = {}
    for n, (lineno, line) in enumerate(body[1:], start=2):
        try:
            cells = next(csv.reader([line]))
        except csv.Error as e:
            raise NasError(f"{path}:{lineno}: unreadable row ({e})") from None
        if len(cells) != len(COLUMNS):
            if n == len(body) and len(cells) < len(COLUMNS) and not text.endswith("\n"):
                continue  # cut short by an interrupted build; measured again on resume
            raise NasError(f"{path}:{lineno}: a row of {len(cells)} cells; every row has {len(COLUMNS)} "
                           f"({','.join(COLUMNS)}), and only an unfinished last line may be cut short")
        row = _row_from_cells(f"{path}:{lineno}", dict(zip(COLUMNS, cells)))
        if row.key in first_line:
            raise NasError(f"{path}:{lineno}: key {row.key} appears twice (first on line "
                           f"{first_line[row.key]}); each op signature has one row")
        first_line[row.key] = lineno
        table.rows[row.key] = row
    return table


def write_table(table: Table, path: str | Path) -> Path:
    """Write the whole file atomically (header, columns, rows sorted by key)."""
    out = io.StringIO()
    out.write(_header_text(table.header))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for key in sorted(table.rows):
        writer.writerow(table.rows[key].cells())
    return write_text_atomic(path, out.getvalue())


def start_table(path: str | Path, header: dict, table: Table | None = None) -> Table:
    """Open a table for an incremental build: `table`, else the file at `path` if it exists
    (keeping its rows), else an empty one; its header updated with `header` and written to `path`."""
    path = Path(path)
    if table is None:
        table = read_table(path) if path.exists() else Table({})
    table.header.update(header)
    write_table(table, path)
    return table


def partial_path(path: str | Path) -> Path:
    """The file a build of table `path` appends to until it is done: `<table>.partial`."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


@contextmanager
def building(path: str | Path) -> Iterator[Path]:
    """Hold the build of table `path`; yields `partial_path(path)`, the file to build it in. A
    second build of the same table meanwhile is refused with one line (a lock beside the table,
    `nas.locks`; a killed build's lock goes with its process). The build writes the table itself
    only whole, when it is done, then removes the partial file (`finish_build`): a killed build
    never leaves a table that reads as complete, and the next build resumes its partial file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise io_error(path.parent, e, "create the folder") from None
    with locked(lock_file(path), remove=True,
                held=f"{path}: another nas latency build is building this table now; wait for it to "
                     f"finish, or build another --target"):
        yield partial_path(path)


def finish_build(table: Table, path: str | Path) -> Path:
    """Write the built table to `path` whole and remove the build's partial file."""
    write_table(table, path)
    partial_path(path).unlink(missing_ok=True)
    return Path(path)


def append_rows(path: str | Path, rows: Iterable[Row]) -> None:
    """Append rows to a table file and flush them to disk (one build step survives a kill)."""
    with open(path, "a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for row in rows:
            writer.writerow(row.cells())
        f.flush()
        os.fsync(f.fileno())
