"""A latency table that is not what it claims is one NasError line naming the file, the line or
header field, and what is allowed; never a traceback, never silently accepted (issue 14, class 5)."""

import math

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from nas.arch import Layer
from nas.cli import main
from nas.errors import NasError
from nas.latency import predict as predict_module
from nas.latency.model import network_terms
from nas.latency.table import Row, Table, read_table, write_table

POOL = Row(Layer("pool", 7, 96, 96), 0.01, 0.011, 0.001, 10)
FC = Row(Layer("fc", 1, 96, 10), 0.02, 0.021, 0.001, 10)  # the row GOOD_LINE spells
GOOD_LINE = "fc-1x1x96-e0-o10-k1-s1-se0-none,fc,1,96,0,10,1,1,0,none,0.02,0.021,0.001,10,measured"


def table_file(tmp_path, header=None, lines=(), name="t.csv"):
    """A valid two-row table with `header` merged in and `lines` appended as raw text."""
    path = tmp_path / name
    write_table(Table({"target": "t", "method": "derived", **(header or {})}, {POOL.key: POOL}), path)
    path.write_text(path.read_text() + "".join(l + "\n" for l in lines))
    return path


def rejects(path, *words):
    with pytest.raises(NasError) as e:
        read_table(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message, message
    return message


@pytest.mark.parametrize("cell,value,words", [
    ("ms", "inf", ["ms", "finite number > 0"]),
    ("ms", "nan", ["ms", "finite"]),
    ("ms", "-0.5", ["ms", "> 0"]),
    ("ms", "0", ["ms", "> 0"]),
    ("mean_ms", "-1", ["mean_ms", ">= 0"]),
    ("std_ms", "-0.001", ["std_ms", ">= 0"]),
    ("mean_ms", "inf", ["mean_ms", "finite"]),
    ("std_ms", "NaN", ["std_ms", "finite"]),
    ("ms", "fast", ["ms", "finite"]),
    ("count", "-3", ["count", "integer"]),
    ("count", "1" * 5000, ["count", "integer"]),
    ("size", "0", ["size", "from 1"]),
    ("kernel", "100", ["kernel", "to 15"]),
    ("se", "2", ["se", "0, 1"]),
    ("act", "gelu", ["act", "relu"]),
    ("source", "guess", ["source", "measured"]),
])
def test_a_bad_cell_names_its_line_column_and_what_is_allowed(tmp_path, cell, value, words):
    from nas.latency.table import COLUMNS
    cells = GOOD_LINE.split(",")
    cells[COLUMNS.index(cell)] = value
    path = table_file(tmp_path, lines=[",".join(cells)])
    message = rejects(path, *words)
    assert f":{len(path.read_text().splitlines())}:" in message  # the line of the bad row


def test_a_duplicated_key_is_an_error_naming_both_lines(tmp_path):
    path = table_file(tmp_path, lines=[GOOD_LINE, GOOD_LINE.replace("0.02,", "0.05,", 1)])
    n = len(path.read_text().splitlines())
    rejects(path, "appears twice", f"line {n - 1}", f":{n}:")


def test_a_short_row_in_the_middle_is_an_error(tmp_path):
    path = table_file(tmp_path, lines=[GOOD_LINE[:40], GOOD_LINE])
    rejects(path, "cells", "only an unfinished last line")


def test_a_long_row_is_an_error(tmp_path):
    rejects(table_file(tmp_path, lines=[GOOD_LINE + ",extra"]), "16 cells")


def test_only_an_unfinished_last_line_may_be_cut_short(tmp_path):
    path = table_file(tmp_path)
    path.write_text(path.read_text() + GOOD_LINE[:30])  # no newline: an append cut by a kill
    assert list(read_table(path).rows) == [POOL.key]
    path.write_text(path.read_text() + "\n")            # a finished line that is short: damage
    rejects(path, "cells")


@pytest.mark.parametrize("header,words", [
    ({"overhead": {"ops_ms": math.nan}}, ["overhead.ops_ms", "finite"]),
    ({"overhead": {"ops_ms": 1.0, "const": math.inf}}, ["overhead.const", "finite"]),
    ({"overhead": {"ops_ms": 1.0, "speed": 2}}, ["overhead", "speed", "ops_ms"]),
    ({"overhead": "fast"}, ["overhead", "mapping"]),
    ({"pace": {"op": "ir-28x28x40-e120-o40-k5-s1-se1-hswish", "reference_ms": 0}}, ["pace", "reference_ms", "> 0"]),
    ({"pace": {"op": "ir-28x28x40-e120-o40-k5-s1-se1-hswish", "reference_ms": math.nan}}, ["pace", "finite"]),
    ({"pace": {"reference_ms": 0.5}}, ["pace", "op"]),
    ({"pace": 0.5}, ["pace", "mapping"]),
    ({"network_pace": {"op": "pace:mobilenet_v3_small-0.75-192", "reference_ms": -1}}, ["network_pace", "> 0"]),
    ({"network_pace": [1.5]}, ["network_pace", "mapping"]),
    ({"op_model": "fast"}, ["op_model", "mapping"]),
    ({"op_model": {"block": 16, "pw_madds": "big"}}, ["op_model.pw_madds", "finite"]),
    ({"op_model": {"block": 16, "pw_madds": -0.1}}, ["op_model.pw_madds", ">= 0"]),
    ({"op_model": {"block": 3, "pw_madds": 0.1}}, ["op_model.block", "16"]),
    ({"op_model": {"block": 16, "pw_madds": 0.1, "groups": {"blocks": 7}}}, ["groups.blocks", "mapping"]),
    ({"op_model": {"block": 16, "groups": {"heads": {}}}}, ["groups", "heads", "stem"]),
    ({"op_model": {"block": 16, "warp": 1.0}}, ["op_model", "warp", "pw_madds"]),
    ({"act_aliases": 5}, ["act_aliases", "activation"]),
    ({"act_aliases": {"relu": 6}}, ["act_aliases", "relu6"]),
    ({"act_aliases": ["relu"]}, ["act_aliases"]),
    ({"threads": "two"}, ["threads", "integer"]),
    ({"threads": 0}, ["threads", "integer"]),
    ({"method": "guessed"}, ["method", "measured, derived"]),
    ({"measured_on": "moon"}, ["measured_on", "machine, device, derived"]),
    ({"machine": "my laptop"}, ["machine", "mapping"]),
])
def test_a_bad_header_field_is_named_with_what_is_allowed(tmp_path, header, words):
    rejects(table_file(tmp_path, header), *words)


def test_a_header_with_a_duplicated_key_or_an_alias_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    body = "key,kind,size,cin,exp,cout,kernel,stride,se,act,ms,mean_ms,std_ms,count,source\n"
    path.write_text("# target: a\n# threads: 1\n# target: b\n" + body + GOOD_LINE + "\n")
    rejects(path, "duplicate key", "target")
    path.write_text("# target: a\n# x: &x [1, 2]\n# y: *x\n" + body + GOOD_LINE + "\n")
    rejects(path, "aliases")
    path.write_text("# target: a\n" + body + GOOD_LINE + "\n")
    assert list(read_table(path).rows) == [FC.key]


def test_a_non_utf8_table_is_one_line(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"# target: x\n\xff\xfe\x00garbage\n")
    rejects(path, "UTF-8")


def test_a_bad_table_in_latency_tables_is_one_line_and_exit_2_for_show_and_predict(tmp_path, monkeypatch):
    write_table(Table({"target": "pixel-copy"}, {POOL.key: POOL}), tmp_path / "ok.csv")
    table_file(tmp_path, {"op_model": "fast"}, name="broken.csv")
    monkeypatch.setattr(predict_module, "LATENCY_TABLES", tmp_path)
    for args in (["latency", "predict", "mobilenet_v3_small", "--target", "broken"],
                 ["show", "mobilenet_v3_small"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "broken.csv" in lines[0] and "op_model" in lines[0]
        assert not isinstance(result.exception, (KeyError, TypeError, AttributeError))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_a_table_or_a_nas_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_bytes(data)
    try:
        read_table(path)
    except NasError:
        pass


header_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_subnormal=False) | st.text(max_size=5),
                             lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                             max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["op_model", "overhead", "act_aliases", "threads", "method",
                                        "measured_on", "machine", "runtime"]), header_values, max_size=4))
def test_random_headers_are_a_table_or_a_nas_error(tmp_path_factory, header):
    path = tmp_path_factory.mktemp("fuzz") / "h.csv"
    try:
        write_table(Table({"target": "h", **header}, {POOL.key: POOL}), path)
    except Exception:  # a header yaml cannot even write (e.g. a NaN key) is not a file under test
        return
    try:
        table = read_table(path)
    except NasError:
        return
    # what the loader accepts, the predictor can use (or refuses in one line)
    from nas.baselines import load_baseline
    try:
        target = predict_module._load(str(path), path.stat().st_mtime_ns)
    except NasError:
        return
    arch = load_baseline("mobilenet_v3_small")
    assert math.isfinite(target.overhead.apply(network_terms(arch, 1.0)))
    assert all(math.isfinite(target.op_model.predict(l)) for l in arch.layers())
