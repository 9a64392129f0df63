"""nas.latency.table: op keys and the table file format."""

import pytest
from hypothesis import given, settings, strategies as st

from nas.arch import Layer
from nas.baselines import load_baseline
from nas.errors import NasError
from nas.latency.table import Row, Table, read_table, write_table


def test_key_spells_out_every_field_of_the_signature():
    layer = Layer("ir", 56, 24, 24, kernel=5, stride=1, exp=72, se=True, act="hswish")
    assert layer.key == "ir-56x56x24-e72-o24-k5-s1-se1-hswish"


def test_every_baseline_op_has_a_distinct_key_per_signature():
    for name in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"):
        layers = load_baseline(name).layers()
        assert len({l.key for l in layers}) == len(set(layers))


layers = st.builds(
    Layer, kind=st.sampled_from(["stem", "ir", "ds", "conv", "pool", "fc"]),
    size=st.integers(1, 224), cin=st.integers(1, 1280), cout=st.integers(1, 1280),
    kernel=st.sampled_from([1, 3, 5, 7]), stride=st.sampled_from([1, 2]), exp=st.integers(0, 2000),
    se=st.booleans(), act=st.sampled_from(["relu", "relu6", "hswish", "none"]))
# allow_subnormal=False: a torch build test earlier in the run flushes denormals process-wide
rows = st.builds(Row, layer=layers, ms=st.floats(1e-4, 1e3, allow_subnormal=False),
                 mean_ms=st.floats(1e-4, 1e3, allow_subnormal=False),
                 std_ms=st.floats(0, 10, allow_subnormal=False), count=st.integers(1, 1000),
                 source=st.sampled_from(["measured", "model"]))


@settings(max_examples=30, deadline=None)
@given(st.lists(rows, min_size=1, max_size=8, unique_by=lambda r: r.key))
def test_table_round_trips_through_its_file(tmp_path_factory, table_rows):
    path = tmp_path_factory.mktemp("t") / "x.csv"
    table = Table({"target": "x", "device": "d", "op_model": {"block": 16, "pw_madds": 0.5}},
                  {r.key: r for r in table_rows})
    write_table(table, path)
    back = read_table(path)
    assert back.header == table.header
    assert set(back.rows) == set(table.rows)
    for key, row in table.rows.items():
        assert back.rows[key].layer == row.layer
        assert back.rows[key].ms == pytest.approx(row.ms, rel=1e-4)
        assert back.rows[key].count == row.count


def test_a_row_whose_key_disagrees_with_its_columns_is_rejected(tmp_path):
    path = tmp_path / "bad.csv"
    write_table(Table({"target": "bad"}, {}), path)
    path.write_text(path.read_text() + "ir-9x9x9-e9-o9-k3-s1-se0-relu,ir,8,9,9,9,3,1,0,relu,1,1,0,1,measured\n")
    with pytest.raises(NasError, match="does not match"):
        read_table(path)


def test_a_line_cut_short_by_an_interrupted_build_is_skipped(tmp_path):
    path = tmp_path / "cut.csv"
    row = Row(Layer("pool", 7, 96, 96), 0.01, 0.01, 0.0, 10)
    write_table(Table({"target": "cut"}, {row.key: row}), path)
    path.write_text(path.read_text() + "ir-7x7x96-e576-o96-k5-s1")
    assert list(read_table(path).rows) == [row.key]


def test_default_options_leave_the_key_as_before_and_others_add_suffixes():
    plain = Layer("ir", 28, 40, 40, 5, 1, 120, True, "relu")
    assert plain.key == "ir-28x28x40-e120-o40-k5-s1-se1-relu"
    from dataclasses import replace
    odd = replace(plain, se_mid=10, se_act="swish", se_gate="sigmoid", skip=False)
    assert odd.key == plain.key + "-sm10-saswish-sgsigmoid-noskip"
    assert replace(Layer("ir", 112, 16, 16, 3, 1, 16, False, "relu"), expand_conv=True).key.endswith("-x1")
    assert Layer("fc", 1, 960, 1280, act="hswish", bias=False).key.endswith("-nobias")


def test_a_row_with_option_suffixes_round_trips_through_the_file(tmp_path):
    from dataclasses import replace
    layer = replace(Layer("ir", 28, 40, 40, 5, 1, 120, True, "swish"), se_mid=10, se_gate="sigmoid", skip=False)
    table = Table({"target": "x", "device": "d"}, {layer.key: Row(layer, 1.0, 1.0, 0.1, 5, "measured")})
    write_table(table, tmp_path / "x.csv")
    back = read_table(tmp_path / "x.csv")
    assert back.rows[layer.key].layer == layer
    assert back.lookup(layer) is not None


def test_grouped_convs_get_a_key_suffix_that_parses_back(tmp_path):
    from dataclasses import replace
    layer = replace(Layer("ir", 14, 112, 112, 5, 1, 112, False, "relu"), groups=2)
    assert layer.key == "ir-14x14x112-e112-o112-k5-s1-se0-relu-g2"
    table = Table({"target": "x", "device": "d"}, {layer.key: Row(layer, 1.0, 1.0, 0.1, 5, "measured")})
    write_table(table, tmp_path / "x.csv")
    assert read_table(tmp_path / "x.csv").rows[layer.key].layer == layer
    assert read_table(tmp_path / "x.csv").lookup(replace(layer, groups=1)) is None


def test_a_conv_bias_leaves_the_key_alone():
    # it folds into the BatchNorm shift on device: the op the table measured
    from dataclasses import replace
    stem = Layer("stem", 224, 3, 16, 3, 2, act="relu")
    assert replace(stem, conv_bias=True).key == stem.key
