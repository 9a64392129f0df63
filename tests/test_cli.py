import json
import subprocess
import sys

from click.testing import CliRunner

from nas.cli import main


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_baselines_json_lists_the_four_networks():
    code, out = run("baselines", "--json")
    assert code == 0
    assert [r["name"] for r in json.loads(out)] == ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                                                     "mobilenet_v3_small"]


def test_show_json_has_the_contract_fields():
    code, out = run("show", "mobilenet_v3_small", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"name", "params", "madds", "resolution", "width_mult", "blocks"} <= set(data)
    assert data["params"] == 2_542_856
    assert sum(b["params"] for b in data["blocks"]) == data["params"]


def test_show_applies_width_and_resolution():
    code, out = run("show", "mobilenet_v1", "--width", "0.75", "--resolution", "160", "--json")
    data = json.loads(out)
    assert (data["width_mult"], data["resolution"]) == (0.75, 160)
    assert data["blocks"][0]["input"] == "160x160x3"


def test_show_prints_a_table_with_totals():
    code, out = run("show", "mobilenet_v2")
    assert code == 0 and "3,504,872 parameters" in out and "300.8 M multiply-adds" in out


def test_show_reads_a_json_file(tmp_path):
    from nas.baselines import load_baseline
    from nas.arch import save_arch
    path = save_arch(load_baseline("mobilenet_v3_large"), tmp_path / "a.json")
    code, out = run("show", str(path), "--json")
    assert code == 0 and json.loads(out)["params"] == 5_483_032


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True)


def test_unknown_arch_exits_2_with_one_line_and_no_traceback():
    p = _cli("show", "mobilenet_v9")
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "mobilenet_v3_large" in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_json_file_exits_2_naming_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "x", "resolution": 224, "num_classes": 10,
                                "stem": {"out": 16}, "blocks": [{"type": "ir", "kernel": 4, "exp": 16,
                                                                 "out": 16, "se": False, "act": "relu",
                                                                 "stride": 1}],
                                "head": {"conv": None, "hidden": None}}))
    p = _cli("show", str(path))
    assert p.returncode == 2 and "blocks[0].kernel: 4" in p.stderr and "Traceback" not in p.stderr


def test_bad_option_value_exits_2():
    p = _cli("show", "mobilenet_v2", "--width", "wide")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_latency_ops_with_a_bad_space_prints_only_the_error(tmp_path):
    code, out = run("latency", "ops", "--space", str(tmp_path / "missing.yaml"))
    assert code == 2 and out.startswith("error:") and out.count("\n") == 1
