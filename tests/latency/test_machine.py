"""A table knows the machine it was measured on: a fingerprint in its header, one warning when it
is used on another machine, and `nas search` refuses it there unless told otherwise."""

import pytest
from click.testing import CliRunner

from nas.arch import Layer
from nas.baselines import load_baseline
from nas.cli import main
from nas.errors import NasError
from nas.latency import machine, predict_latency
from nas.latency import predict as predict_module
from nas.latency.build import _measured_header
from nas.latency.measure import TimingPlan
from nas.latency.table import Row, Table, read_table, write_table
from nas.space import load_space
from conftest import FIXTURES

HERE = {"cpu": "Intel(R) Xeon(R) CPU @ 2.60GHz", "isa": ["avx2", "avx512f"], "cores": 4,
        "os": "Linux x86_64", "runtime": "onnxruntime 1.32.0", "threads": 1}
THERE = {"cpu": "AMD EPYC", "isa": ["avx2", "avx512_vnni", "avx512f"], "cores": 2,
         "os": "Linux x86_64", "runtime": "onnxruntime 1.32.0", "threads": 1}


@pytest.fixture
def tables(tmp_path, monkeypatch):
    """latency_tables/ with tiny tables, this machine pretending to be HERE, no warning given yet."""
    monkeypatch.setattr(predict_module, "LATENCY_TABLES", tmp_path)
    monkeypatch.setattr(machine, "this_machine", lambda runtime, threads: {**HERE, "threads": threads})
    monkeypatch.setattr(machine, "_warned", set())

    def make(name, **header):
        rows = {l.key: Row(l, 0.1, 0.1, 0.0, 5) for l in load_baseline("mobilenet_v3_small").layers()}
        h = {"target": name, "method": "measured", "runtime": "onnxruntime", "threads": 1,
             "op_model": {"block": 1, "pw_madds": 0.01}, **header}
        write_table(Table(h, rows), tmp_path / f"{name}.csv")
        return name
    return make


def test_a_build_header_carries_this_machines_fingerprint():
    h = _measured_header("x", "onnxruntime", 1, load_space(), 10, TimingPlan())
    assert h["measured_on"] == "machine"
    assert {"cpu", "cpu_id", "isa", "cores", "os", "runtime", "threads"} <= set(h["machine"])
    assert h["machine"]["runtime"].startswith("onnxruntime ") and h["machine"]["threads"] == 1
    assert h["machine"]["isa"] == "unknown" or set(h["machine"]["isa"]) <= set(machine.ISA_FLAGS)


def test_the_shipped_tables_say_where_they_come_from():
    local = read_table(predict_module.LATENCY_TABLES / "local-cpu.csv").header
    assert local["measured_on"] == "machine" and local["machine"]["cpu"] == "AMD EPYC"
    assert local["machine"]["cpu_id"].startswith("AuthenticAMD family ") and "avx2" in local["machine"]["isa"]
    pixel = read_table(predict_module.LATENCY_TABLES / "pixel.csv").header
    assert pixel["measured_on"] == "derived" and not machine.is_compared(pixel)


def test_a_foreign_table_warns_once_naming_both_machines_and_the_build_command(tables, capsys):
    tables("cpu-a", machine=THERE)
    arch = load_baseline("mobilenet_v3_small")
    predict_latency(arch, "cpu-a")
    predict_latency(arch, "cpu-a")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "AMD EPYC" in err[0] and "Xeon" in err[0]
    assert "nas latency build --target cpu-a --quick" in err[0]
    assert "cpu, isa, cores" in err[0]


ZEN3 = {**THERE, "isa": ["avx2"], "cpu_id": "AuthenticAMD family 25 model 1 stepping 1"}
ZEN4 = {**THERE, "cpu_id": "AuthenticAMD family 25 model 17 stepping 1"}


def test_two_generations_behind_one_model_name_are_two_machines(tables, capsys, monkeypatch):
    # a virtual machine names every EPYC "AMD EPYC": the CPU's own identity tells them apart
    monkeypatch.setattr(machine, "this_machine", lambda runtime, threads: {**ZEN3, "isa": THERE["isa"]})
    tables("zen4", machine=ZEN4)
    predict_latency(load_baseline("mobilenet_v3_small"), "zen4")
    err = capsys.readouterr().err
    assert "differ in cpu_id" in err
    assert "family 25 model 17 stepping 1" in err and "family 25 model 1 stepping 1" in err


def test_a_processors_identity_is_read_from_cpuinfo():
    x86 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
           "model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu avx2 sse\n\n"
           "processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n")
    model, flags, ids = machine.parse_cpuinfo(x86)
    assert model == "AMD EPYC" and "avx2" in flags
    assert machine.identity(ids) == "AuthenticAMD family 25 model 1 stepping 1"  # the first processor's
    arm = ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
           "CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n")
    assert machine.identity(machine.parse_cpuinfo(arm)[2]) == "implementer 0x41 part 0xd0c variant 0x3"
    assert machine.identity({}) == "unknown"


def test_a_table_of_this_machine_does_not_warn(tables, capsys):
    tables("cpu-b", machine=HERE)
    predict_latency(load_baseline("mobilenet_v3_small"), "cpu-b")
    assert capsys.readouterr().err == ""


def test_unknown_fields_are_not_compared(tables, capsys):
    tables("cpu-c", machine={**HERE, "isa": "unknown", "os": "unknown"})
    predict_latency(load_baseline("mobilenet_v3_small"), "cpu-c")
    assert capsys.readouterr().err == ""


def test_another_runtime_version_is_another_machine(tables, capsys):
    tables("cpu-d", machine={**HERE, "runtime": "onnxruntime 1.17.0"})
    predict_latency(load_baseline("mobilenet_v3_small"), "cpu-d")
    assert "runtime" in capsys.readouterr().err


@pytest.mark.parametrize("header", [{"method": "derived", "measured_on": "derived"},
                                    {"measured_on": "device", "device": "Pixel 7", "runtime": "tflite"}])
def test_derived_tables_and_tables_measured_on_a_device_are_never_flagged(tables, capsys, header):
    tables("elsewhere", machine=THERE, **header)
    predict_latency(load_baseline("mobilenet_v3_small"), "elsewhere")
    assert capsys.readouterr().err == ""
    predict_module.require_here("elsewhere")


def test_a_measured_table_without_a_fingerprint_is_flagged(tables, capsys):
    tables("old")
    predict_latency(load_baseline("mobilenet_v3_small"), "old")
    assert "records no machine fingerprint" in capsys.readouterr().err


def test_search_refuses_a_foreign_table_with_exit_2_unless_allowed(tables, tmp_path):
    tables("cpu-a", machine=THERE)
    result = CliRunner().invoke(main, ["search", "--target", "cpu-a", "--budget", "100ms",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "AMD EPYC" in lines[0] and "Xeon" in lines[0]
    assert "nas latency build --target cpu-a --quick" in lines[0] and "--allow-foreign-table" in lines[0]
    assert not (tmp_path / "run").exists()
    predict_module.require_here("cpu-a", allow_foreign=True)  # the flag's effect
    with pytest.raises(NasError, match="--allow-foreign-table"):
        predict_module.require_here("cpu-a")


def test_an_unknown_target_offers_the_quick_build():
    with pytest.raises(NasError, match="nas latency build --target my-cpu --quick"):
        predict_latency(load_baseline("mobilenet_v3_small"), "my-cpu")


TINY_SPACE = (FIXTURES / "tiny_space_one_stage.yaml").read_text()
TINY_PLAN = TimingPlan(warmup=1, rounds=2, min_samples=2, max_samples=4, budget_s=0.001, retries=0)


def test_a_build_does_not_resume_a_table_measured_on_another_machine(tmp_path, monkeypatch, capsys):
    from nas.latency import build as build_module
    monkeypatch.setattr(build_module, "this_machine", lambda runtime, threads: {**HERE, "runtime": "torch x"})
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
    path = tmp_path / "t.csv"
    foreign = Row(Layer("pool", 99, 8, 8), 1.0, 1.0, 0.0, 1)
    write_table(Table({"target": "t", "method": "measured", "runtime": "torch", "threads": 1,
                       "machine": {**THERE, "runtime": "torch x"}}, {foreign.key: foreign}), path)
    build_module.build_table("t", load_space(space_file), runtime="torch", samples=1, calibration=0,
                             plan=TINY_PLAN, path=path, baselines=False, quick=True)
    table = read_table(path)
    assert foreign.key not in table.rows and table.header["machine"]["cpu"] == HERE["cpu"]
    assert read_table(tmp_path / "t.csv.bak").rows.keys() == {foreign.key}
    assert "moved it to" in capsys.readouterr().err


def test_a_quick_build_times_fewer_ops_and_says_so(tmp_path):
    from nas.latency.build import build_layers, build_table
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE.replace("hidden: [32]", "hidden: [32, 64]"))
    space = load_space(space_file)
    assert len(build_layers(space, 1, baselines=False, heads=False)) < len(build_layers(space, 1, baselines=False))
    r = build_table("q", space, runtime="torch", samples=1, calibration=0, plan=TINY_PLAN,
                    path=tmp_path / "q.csv", baselines=False, quick=True)
    assert read_table(r.path).header["build"] == "quick"
    full = build_table("f", space, runtime="torch", samples=1, calibration=0, plan=TINY_PLAN,
                       path=tmp_path / "f.csv", baselines=False)
    with pytest.raises(NasError, match="holds a full build"):
        build_table("f", space, runtime="torch", samples=1, calibration=0, plan=TINY_PLAN,
                    path=full.path, baselines=False, quick=True)


def test_validation_networks_outside_the_space_are_the_promised_ones():
    from nas.latency.build import calibration_archs, wide_archs
    from nas.latency.validate import outside_networks
    names = [a.name for a in outside_networks()]
    assert {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet_a1",
            "proxylessnas_mobile"} <= set(names) and len(names) == len(set(names)) >= 10
    fitted = {a.layers() for a in calibration_archs(load_space(), 40) + wide_archs(20)}
    assert not any(a.layers() in fitted for a in outside_networks())
