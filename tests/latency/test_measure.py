"""nas.latency.measure: keeping pace with a machine whose speed drifts."""

import pytest

import nas.latency.measure as measure
from nas.latency.build import _build_pace, _network_pace
from nas.latency.measure import PACE_LAYER, Pace, TimingPlan, time_interleaved
from nas.latency.table import Table

PLAN = TimingPlan(warmup=1, rounds=3, min_samples=6, max_samples=6, budget_s=0.001, quantile=0.5)


class Scripted:
    """A pace whose readings are given: factor() = reference / next reading."""

    def __init__(self, readings, reference_ms=1.0):
        self.readings, self.reference_ms, self.read = list(readings), reference_ms, 0

    def factor(self):
        self.read += 1
        return self.reference_ms / self.readings[(self.read - 1) % len(self.readings)]


@pytest.fixture
def one_ms(monkeypatch):
    """Every run takes exactly 1 ms, or `slow` ms while the machine is slow."""
    state = {"slow": 1.0}
    monkeypatch.setattr(measure, "_one", lambda run: state["slow"])
    return state


def test_samples_are_scaled_by_the_pace_read_before_them(one_ms):
    # the machine runs at half speed: runs take 2 ms, and so does the pace op (2 x its 1 ms reference)
    one_ms["slow"] = 2.0
    raw = time_interleaved({"a": None}, PLAN)["a"]
    paced = time_interleaved({"a": None}, PLAN, pace=Scripted([2.0]))["a"]
    assert raw.ms == 2.0 and paced.ms == pytest.approx(1.0)


def test_one_pace_reading_per_run_of_samples(one_ms):
    pace = Scripted([1.0])
    time_interleaved({"a": None, "b": None}, PLAN, pace=pace)
    assert pace.read == 2 * PLAN.rounds


def test_a_new_pace_sets_its_reference_from_the_median_reading(monkeypatch):
    monkeypatch.setattr(measure, "PACE_START_S", 0.0)
    readings = iter([3.0, 1.0, 2.0, 5.0, 4.0, 9.0])
    monkeypatch.setattr(Pace, "_read", lambda self: next(readings))
    pace = Pace("torch", 1)
    assert pace.reference_ms == 3.0                 # median of the first five readings
    assert pace.factor() == pytest.approx(3.0 / 3.5)  # the median of the latest readings: 9 barely moves it
    assert pace.header() == {"op": PACE_LAYER.key, "reference_ms": 3.0}
    s = pace.summary()
    assert s["readings"] == 6 and s["factor_min"] == s["factor_max"] == pytest.approx(0.857)


def test_the_pace_follows_a_lasting_change_within_its_window(monkeypatch):
    monkeypatch.setattr(Pace, "_read", lambda self: 2.0)  # the machine now runs at half speed
    pace = Pace("torch", 1, reference_ms=1.0)
    factors = [pace.factor() for _ in range(measure.PACE_WINDOW)]
    assert factors == [0.5] * measure.PACE_WINDOW
    monkeypatch.setattr(Pace, "_read", lambda self: 1.0)  # back to full speed
    factors = [pace.factor() for _ in range(measure.PACE_WINDOW)]
    assert factors[0] == 0.5 and factors[-1] == 1.0   # one fast reading is not yet a change


def test_a_table_keeps_its_stored_reference_and_a_raw_table_stays_raw(monkeypatch):
    monkeypatch.setattr(Pace, "_read", lambda self: 0.5)
    stored = Pace.for_table({"pace": {"op": PACE_LAYER.key, "reference_ms": 0.25}}, "torch", 1)
    assert stored.reference_ms == 0.25 and stored.factor() == 0.5
    assert Pace.for_table({}, "torch", 1) is None
    # another pace op: its reference says nothing about this one
    assert Pace.for_table({"pace": {"op": "ir-8x8x8-e8-o8-k3-s1-se0-relu", "reference_ms": 1}}, "torch", 1) is None
    raw_rows = Table({"target": "old"}, rows={"k": object()})
    assert _build_pace(raw_rows, "torch", 1, "network") is None  # resuming a table measured without pace
    resumed = Table({"pace": {"op": PACE_LAYER.key, "reference_ms": 0.25}}, rows={"k": object()})
    assert _build_pace(resumed, "torch", 1, "network").reference_ms == 0.25


def test_each_network_keeps_its_fastest_pass(monkeypatch):
    import nas.latency.build as build
    from nas.latency.measure import Timing

    class Passes:  # pass 1: the first network slowed by a neighbour; pass 2: the second
        def __init__(self):
            self.calls = 0

        def time(self, runners, seed=0, plan=None):
            self.calls += 1
            slow = {1: 0, 2: 1}[self.calls]
            return {j: Timing(2.0 if j == slow else 1.0, 1, 1, 0, 1, 0) for j in runners}

    monkeypatch.setattr(build, "arch_runner", lambda arch, runtime, threads: None)
    canary = Passes()
    assert build.measure_archs(["a", "b"], "torch", 1, TimingPlan(), canary, passes=2) == [1.0, 1.0]
    assert canary.calls == 2


def test_a_network_can_be_the_pace(monkeypatch):
    # end-to-end timings are paced by a network: the reading runs it, the header names it
    monkeypatch.setattr(measure, "PACE_START_S", 0.0)
    pace = Pace("onnxruntime", 1, arch=measure.pace_network())  # (a torch runner would flush denormals process-wide)
    assert pace.header()["op"] == "pace:mobilenet_v3_small-0.75-192" and len(pace.readings) >= 5
    assert pace.reference_ms > 0 and pace.factor() > 0
    # a table's op pace is an op: a network-paced header is not taken for one
    assert Pace.for_table({"pace": pace.header()}, "onnxruntime", 1) is None


def test_networks_keep_the_network_pace_a_table_stores_else_its_op_pace(monkeypatch):
    monkeypatch.setattr(Pace, "_read", lambda self: 2.0)
    net = measure.pace_network().name
    op = {"op": PACE_LAYER.key, "reference_ms": 0.25}
    both = Pace.for_networks({"pace": op, "network_pace": {"op": net, "reference_ms": 1.5}}, "onnxruntime", 1)
    assert both.op == net and both.reference_ms == 1.5 and both.factor() == 0.75
    assert Pace.for_networks({"pace": op}, "onnxruntime", 1).op == PACE_LAYER.key  # calibrated op-paced
    assert Pace.for_networks({}, "onnxruntime", 1) is None                        # a raw table stays raw
    other = {"pace": op, "network_pace": {"op": "mobilenet_v3_small", "reference_ms": 1.5}}
    assert Pace.for_networks(other, "onnxruntime", 1).op == PACE_LAYER.key    # another pace network's reference
    assert _network_pace(None, "onnxruntime", 1, "network") is None
    assert _network_pace(both, "onnxruntime", 1, "network").op == net


def test_a_new_table_is_paced_as_asked(monkeypatch):
    from nas.errors import NasError
    from nas.latency.build import check_pace

    monkeypatch.setattr(Pace, "_read", lambda self: 1.0)
    monkeypatch.setattr(measure, "PACE_START_S", 0.0)
    assert _build_pace(None, "torch", 1, "none") is None               # raw rows, raw networks
    op = _build_pace(None, "torch", 1, "op")
    assert op.op == PACE_LAYER.key and _network_pace(op, "onnxruntime", 1, "op") is op
    assert _network_pace(op, "onnxruntime", 1, "network").op == measure.pace_network().name
    resumed = Table({"pace": {"op": PACE_LAYER.key, "reference_ms": 0.25}}, rows={"k": object()})
    assert _build_pace(resumed, "torch", 1, "none").reference_ms == 0.25  # a resumed table keeps its unit
    with pytest.raises(NasError, match="pace: 'fast' is not allowed; expected one of none, network, op"):
        check_pace("fast")


def test_the_pace_network_is_neither_calibrated_on_nor_validated():
    from nas.latency.build import calibration_set
    from nas.latency.validate import outside_networks
    from nas.space import load_space
    paced = measure.pace_network().layers()
    assert all(a.layers() != paced for a in outside_networks() + calibration_set(load_space(), 40))


def _node(op, index, dur, out_shape=(1, 8, 4, 4)):
    return {"cat": "Node", "name": f"{op}_kernel_time", "dur": dur,
            "args": {"op_name": op, "node_index": str(index), "output_type_shape": [{"float": list(out_shape)}]}}


def test_the_boundary_share_counts_only_the_reorders_at_the_ops_edges():
    one_run = [_node("ReorderInput", 0, 10), _node("Conv", 1, 60), _node("ReorderOutput", 2, 5, (1, 16, 4, 4)),
               _node("Mul", 3, 10, (1, 16, 4, 4)), _node("ReorderInput", 4, 5), _node("Conv", 5, 0),
               _node("ReorderOutput", 6, 10)]
    warm_up = [dict(n, dur=n["dur"] * 50) for n in one_run]  # the first run is dropped
    assert measure._boundary_share(warm_up + one_run * 2, [1, 8, 4, 4], 3) == pytest.approx(0.2)
    # the last reorder does not yield the graph's output: only the input edge counts
    assert measure._boundary_share(one_run * 2, [1, 8, 2, 2], 2) == pytest.approx(0.1)
    assert measure._boundary_share([_node("Gemm", 0, 5)] * 2, [1, 8], 2) == 0.0


def test_a_real_op_pays_reorders_at_its_edges_and_a_classifier_none():
    from nas.arch import Layer
    from nas.latency.measure import boundary_share, layer_runner
    conv = boundary_share(layer_runner(Layer("conv", 14, 32, 64, act="hswish"), "onnxruntime", 1), runs=4)
    assert 0.0 < conv < 1.0
    assert boundary_share(layer_runner(Layer("fc", 1, 64, 10, act="none"), "onnxruntime", 1), runs=4) == 0.0
    assert boundary_share(lambda: None) == 0.0  # a runner of another runtime: nothing to profile


def test_only_a_fresh_reference_is_re_anchored_to_the_median_of_all_readings(monkeypatch):
    monkeypatch.setattr(measure, "PACE_START_S", 0.0)
    readings = iter([4.0] * 5 + [1.0] * 10)
    monkeypatch.setattr(Pace, "_read", lambda self: next(readings))
    fresh = Pace("torch", 1)
    for _ in range(10):
        fresh.factor()
    assert fresh.reference_ms == 4.0 and fresh.anchor() == 0.25 and fresh.reference_ms == 1.0
    assert fresh.summary()["anchored_by"] == 0.25
    assert fresh.anchor() == 1.0 and fresh.reference_ms == 1.0  # once: the rows now use it
    stored = Pace("torch", 1, reference_ms=4.0)  # a table's: its rows are at it
    assert stored.anchor() == 1.0 and stored.reference_ms == 4.0 and "anchored_by" not in stored.summary()
