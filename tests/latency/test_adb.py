"""nas.latency.adb: a phone's table over adb with benchmark_model, against a stand-in adb.

The stand-in answers as adb and benchmark_model do (output lines in benchmark_model's format)
and times a model by its size, so what is checked is our side: the commands sent, the parsing,
the table written, resuming and the errors. No phone is attached here."""

import json
import os
import stat
import sys
import textwrap

import pytest
from click.testing import CliRunner

from nas.cli import main
from nas.errors import NasError
from nas.latency.adb import Device, DeviceTimer, build_device_table, parse_benchmark_output
from nas.latency.table import read_table
from nas.space import load_space
from conftest import FIXTURES

RECENT = """INFO: STARTING!
INFO: Graph: [/data/local/tmp/nas/op.tflite]
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=74 first=7912 curr=6514 min=6203 p5=6288 median=6663 p95=7408
INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=152 first=6651 curr=6530 min=6172 max=7802 avg=6588.71 std=257 p5=6239 median=6547 p95=7086
INFO: Inference timings in us: Init: 20536, First inference: 7912, Warmup (avg): 6756.24, Inference (avg): 6588.71
"""
OLD = """count=50 first=249042 curr=250889 min=247067 max=254474 avg=249684 std=1442
Inference timings in us: Init: 16242, First inference: 360262, Warmup (avg): 304586, Inference (avg): 249684
"""

FAKE_ADB = textwrap.dedent("""\
    #!{python}
    # A stand-in for adb: one attached phone, serial PHONE1, with benchmark_model installed.
    import json, os, re, sys
    log = os.environ["FAKE_ADB_LOG"]
    args = sys.argv[1:]
    with open(log, "a") as f:
        f.write(json.dumps(args) + "\\n")
    if args[:2] != ["-s", "PHONE1"]:
        sys.exit("error: device '%s' not found" % args[1])
    cmd = args[2:]
    state = os.path.join(os.path.dirname(log), "pushed")
    if cmd == ["get-state"]:
        print("device")
    elif cmd[0] == "push":
        open(state, "w").write(str(os.path.getsize(cmd[1])))
        print("1 file pushed")
    elif cmd[0] == "shell" and cmd[1].startswith("test -x"):
        print("" if os.environ.get("FAKE_ADB_NO_BINARY") else "ok")
    elif cmd[0] == "shell" and cmd[1].startswith("getprop"):
        print({{"ro.product.model": "Pixel 1", "ro.product.manufacturer": "Google"}}.get(cmd[1].split()[1], "x"))
    elif cmd[0] == "shell" and "benchmark_model" in cmd[1]:
        us = 50 + int(open(state).read()) / 1000     # a model's time grows with its size
        print("count=50 first=%d curr=%d min=%d max=%d avg=%g std=3 p5=%g median=%g p95=%g"
              % (us, us, us, us, us * 1.02, us, us * 1.01, us * 1.05))
        print("Inference timings in us: Init: 100, First inference: 1, Warmup (avg): 1, Inference (avg): 1")
    elif cmd[0] == "shell":
        print("")
    """)


def fake_convert(module, x):
    """Bytes as many as the module's weights and input: stands in for the .tflite conversion."""
    n = sum(p.numel() for p in module.parameters()) + x.numel()
    return b"\0" * (4 * n)


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    import nas.latency.build as build_module
    monkeypatch.setattr(build_module, "EXPERIMENTS", tmp_path)
    return lambda: [json.loads(l) for l in log.read_text().splitlines()]


def test_benchmark_output_is_parsed_from_its_measured_line():
    t = parse_benchmark_output(RECENT)  # the warm-up line (no avg) is not the measurement
    assert (t.ms, t.median_ms, t.mean_ms, t.std_ms, t.count) == (6.239, 6.547, 6.58871, 0.257, 152)
    old = parse_benchmark_output(OLD)   # releases that print no percentiles: the average
    assert old.ms == old.mean_ms == 249.684 and old.count == 50
    with pytest.raises(NasError, match="no timing line.*Failed to load model"):
        parse_benchmark_output("STARTING!\nERROR: Failed to load model\n")


def test_phone_table_is_built_over_adb_and_resumes(tmp_path, fake_adb):
    space = load_space(FIXTURES / "tiny_space.yaml")
    timer = DeviceTimer(Device("PHONE1"), threads=1, cpu_mask="f0", convert=fake_convert)
    path = tmp_path / "phone.csv"
    r = build_device_table("phone", space, timer, samples=2, calibration=2, path=path, baselines=False)
    table = read_table(path)
    h = table.header
    assert h["measured_on"] == "device" and h["runtime"] == "tflite" and h["build"] == "adb"
    assert h["machine"]["model"] == "Pixel 1" and h["device"] == "Google Pixel 1 (over adb)"
    assert r.timed == len(table.rows) > 10 and r.calibration_mape_pct is not None
    assert "op_model" in h and set(h["overhead"]) == set(r.overhead_terms)
    assert h["overhead_fit"]["networks"] == 3  # 2 random networks of the space and 1 wide one
    runs = [a for a in fake_adb() if a[2] == "shell" and "--graph=" in a[3]]
    assert runs and all(a[3].startswith("taskset f0 /data/local/tmp/benchmark_model --graph=/data/local/tmp/nas/")
               and "--num_threads=1" in a[3] for a in runs)
    row = next(iter(table.rows.values()))
    assert row.ms < row.mean_ms  # p5 below the average, as the stand-in prints them
    again = build_device_table("phone", space, timer, samples=2, calibration=2, path=path, baselines=False)
    assert again.timed == 0 and again.reused == r.timed


def test_adb_errors_are_one_line(tmp_path, fake_adb, monkeypatch):
    space = load_space(FIXTURES / "tiny_space.yaml")
    with pytest.raises(NasError, match="device 'PHONE9' not found"):
        build_device_table("p", space, DeviceTimer(Device("PHONE9"), convert=fake_convert), samples=1,
                           calibration=0, path=tmp_path / "p.csv", baselines=False)
    monkeypatch.setenv("FAKE_ADB_NO_BINARY", "1")
    with pytest.raises(NasError, match="benchmark_model is not at /data/local/tmp/benchmark_model"):
        build_device_table("p", space, DeviceTimer(Device("PHONE1"), convert=fake_convert), samples=1,
                           calibration=0, path=tmp_path / "p.csv", baselines=False)
    with pytest.raises(NasError, match="'no-such-adb' is not on PATH"):
        Device("PHONE1", adb="no-such-adb").run("get-state")
    assert not (tmp_path / "p.csv").exists()


def test_cli_refuses_adb_without_tflite_and_phone_options_without_adb():
    r = CliRunner().invoke(main, ["latency", "build", "-t", "p", "--adb", "PHONE1"])
    assert r.exit_code == 2 and "a phone runs --runtime tflite" in r.output
    r = CliRunner().invoke(main, ["latency", "build", "-t", "p", "--cpu-mask", "f0"])
    assert r.exit_code == 2 and "not allowed without --adb" in r.output
    r = CliRunner().invoke(main, ["latency", "build", "-t", "p", "--runtime", "tflite", "--adb", "PHONE1",
                                  "--cpu-mask", "big"])
    assert r.exit_code == 2 and "--cpu-mask: 'big' is not allowed" in r.output
