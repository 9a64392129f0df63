"""`nas export` and `nas.export.load`. The run folder is FIXTURE DATA built by
tests/test_report.py::make_run_folder (real architectures, made-up accuracies and latencies, a
checkpoint of untrained weights); see that file's docstring."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from nas.arch import load_arch
from nas.baselines import load_baseline
from nas.blockstring import decode_blocks
from nas.cli import main
from nas.errors import NasError
from nas.export import CHECK_ATOL, check_input, export, load, network, select_source
from nas.checkpoint import load_checkpoint
from test_report import make_run_folder

HAS_LITERT = importlib.util.find_spec("litert_torch") is not None


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> dict:
    return make_run_folder(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def onnx_from_run(run_folder, tmp_path_factory) -> dict:
    """One ONNX export of the run's best trial through the CLI (the slow step, done once)."""
    out = tmp_path_factory.mktemp("onnx") / "winner.onnx"
    result = CliRunner().invoke(main, ["export", str(run_folder["path"]), "--format", "onnx", "--out", str(out),
                                       "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    return {"out": out, "data": json.loads(result.output)}


def cli(*args: str):
    result = CliRunner().invoke(main, [*args, "--no-progress"] if args[0] == "export" else list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------- onnx

def test_onnx_export_passes_checker_and_matches_pytorch(onnx_from_run):
    checks = onnx_from_run["data"]["checks"]
    assert checks["onnx_checker"] == "passed"
    assert checks["onnxruntime_max_abs_diff"] < CHECK_ATOL
    assert checks["output_max_abs"] > 1e-3  # the comparison is not between two near-zero outputs
    onnx.checker.check_model(onnx.load(str(onnx_from_run["out"])))


def test_onnx_export_of_a_run_uses_the_trained_proxy_network(onnx_from_run, run_folder):
    d = onnx_from_run["data"]
    assert d["weights"] == "trained" and d["trial"] == run_folder["winner"]
    assert d["input_shape"] == [1, 3, 32, 32] and d["num_classes"] == 10
    assert "trained weights of trial" in d["weights_note"]


def test_onnx_file_reproduces_the_checkpoint_network_at_any_batch(onnx_from_run, run_folder):
    c = load_checkpoint(run_folder["path"] / "checkpoints" / f"trial_{run_folder['winner']}.pt")
    model = load(c.path)
    x = torch.randn(3, 3, 32, 32)
    session = ort.InferenceSession(str(onnx_from_run["out"]), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == (3, 10)
    assert np.abs(got - want).max() < CHECK_ATOL


def test_onnx_opset_below_18_is_refused(tmp_path):
    with pytest.raises(NasError, match="--opset 13 is not allowed; expected 18..23"):
        export("mobilenet_v3_small", "onnx", tmp_path / "m.onnx", opset=13)


def test_opset_with_another_format_is_refused(tmp_path):
    with pytest.raises(NasError, match="onnx only"):
        export("mobilenet_v3_small", "json", tmp_path / "m.json", opset=18)


# ---------------------------------------------------------------- torchscript and pytorch

def test_onnx_export_of_fbnet_a_keeps_its_shuffle_and_grouped_convs(tmp_path):
    result = export("fbnet_a", "onnx", tmp_path / "fbnet_a.onnx", resolution=64, num_classes=10)
    assert result.checks["onnx_checker"] == "passed"
    assert result.checks["onnxruntime_max_abs_diff"] < CHECK_ATOL
    graph = onnx.load(str(tmp_path / "fbnet_a.onnx")).graph
    groups = [a.i for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert groups.count(2) == 3  # the three projections of the ir_k*_g2 blocks (e1: no expansion conv)
    assert sum(n.op_type == "Transpose" for n in graph.node) == 3  # their channel shuffles


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_reloads_and_matches(run_folder, tmp_path):
    result = export(str(run_folder["path"]), "torchscript", tmp_path / "m.ts")
    assert result.checks["torchscript_reload_max_abs_diff"] < CHECK_ATOL
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    x = check_input(result.source.arch)
    with torch.no_grad():
        assert torch.allclose(scripted(x), network(result.source)(x), atol=CHECK_ATOL)


def test_pytorch_export_loads_with_one_call(tmp_path):
    result = export("mobilenet_v3_small", "pytorch", tmp_path / "small.pt", num_classes=5, resolution=96)
    model = load(tmp_path / "small.pt")
    assert model.arch == result.source.arch and model.arch.num_classes == 5
    assert not model.training
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 5)
    assert load_arch(tmp_path / "small.json") == result.source.arch  # the architecture JSON beside it


def test_pytorch_export_of_a_run_keeps_the_trained_weights(run_folder, tmp_path):
    export(str(run_folder["path"]), "pytorch", tmp_path / "w.pt")
    ckpt = load_checkpoint(run_folder["path"] / "checkpoints" / f"trial_{run_folder['winner']}.pt")
    exported = load(tmp_path / "w.pt").state_dict()
    assert all(torch.equal(exported[k], v) for k, v in ckpt.state_dict.items())
    saved = torch.load(tmp_path / "w.pt", weights_only=True)
    assert saved["normalisation"] == ckpt.normalisation == {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}


def test_initialised_weights_are_reproducible(tmp_path):
    export("mobilenet_v3_small", "pytorch", tmp_path / "a.pt")
    export("mobilenet_v3_small", "pytorch", tmp_path / "b.pt")
    a, b = load(tmp_path / "a.pt").state_dict(), load(tmp_path / "b.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_mismatch_is_an_error_not_a_success(tmp_path, monkeypatch):
    monkeypatch.setattr("nas.export.checks.CHECK_ATOL", 0.0)  # nothing can be below 0
    with pytest.raises(NasError, match="check failed"):
        export("mobilenet_v3_small", "pytorch", tmp_path / "m.pt")


def test_load_refuses_a_file_that_is_not_an_export(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(NasError, match="not a readable nas checkpoint.*torch.jit.load"):
        load(bad)
    other = tmp_path / "y.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(NasError, match="not a nas checkpoint; expected a dict with arch and state_dict"):
        load(other)


def test_load_of_missing_file_is_an_error(tmp_path):
    with pytest.raises(NasError, match="no such file"):
        load(tmp_path / "missing.pt")


# ---------------------------------------------------------------- json and string

def test_json_export_is_a_valid_architecture_file(tmp_path):
    export("mobilenet_v3_large", "json", tmp_path / "l.json", width=0.75)
    arch = load_arch(tmp_path / "l.json")
    assert arch == load_baseline("mobilenet_v3_large").with_overrides(width=0.75)


def test_string_export_decodes_to_the_same_blocks(run_folder, tmp_path):
    result = export(str(run_folder["path"]), "string", tmp_path / "b.txt", deploy_arch=True)
    text = (tmp_path / "b.txt").read_text()
    assert text.count("\n") == 1
    assert decode_blocks(text, run_folder["winner_arch"].stem.out) == run_folder["winner_arch"].blocks
    assert result.checks["decodes_to_same_blocks"] is True


# ---------------------------------------------------------------- what gets exported

def test_baseline_exports_initialised_weights_and_says_so():
    s = select_source("mobilenet_v3_small")
    assert s.weights == "initialised" and s.state_dict is None
    assert "not a run folder" in s.note


def test_trial_without_checkpoint_exports_the_deployment_arch(run_folder):
    s = select_source(str(run_folder["path"]), trial=run_folder["no_checkpoint"])
    assert s.weights == "initialised" and s.arch.num_classes == 1000
    assert "no checkpoint" in s.note


def test_shape_options_switch_to_the_deployment_arch(run_folder):
    s = select_source(str(run_folder["path"]), resolution=160, num_classes=3)
    assert s.weights == "initialised"
    assert (s.arch.resolution, s.arch.num_classes) == (160, 3)
    assert s.arch.blocks == run_folder["winner_arch"].blocks
    assert "change the shapes" in s.note


def test_deploy_arch_flag_skips_the_checkpoint(run_folder):
    s = select_source(str(run_folder["path"]), deploy_arch=True)
    assert s.arch == run_folder["winner_arch"] and s.weights == "initialised"


def test_pruned_trial_exports_with_a_note(run_folder):
    s = select_source(str(run_folder["path"]), trial=run_folder["pruned"])
    assert "state PRUNED" in s.note


def test_failed_trial_is_an_error(run_folder):
    with pytest.raises(NasError, match="failed"):
        select_source(str(run_folder["path"]), trial=run_folder["failed"])


def test_unknown_trial_is_an_error(run_folder):
    with pytest.raises(NasError, match="trial 42 is not in"):
        select_source(str(run_folder["path"]), trial=42)


def test_trial_of_an_architecture_is_an_error():
    with pytest.raises(NasError, match="--trial/--best pick a trial of a run folder"):
        select_source("mobilenet_v3_small", trial=1)


def test_missing_run_is_an_error(tmp_path):
    with pytest.raises(NasError, match="no such run folder or architecture"):
        select_source(str(tmp_path / "runs" / "typo"))


def test_folder_that_is_not_a_run_is_an_error(tmp_path):
    with pytest.raises(NasError, match="not a run folder"):
        select_source(str(tmp_path))


# ---------------------------------------------------------------- tflite (optional extra)

@pytest.mark.skipif(HAS_LITERT, reason="litert-torch is installed")
def test_tflite_without_the_extra_says_how_to_install(tmp_path):
    with pytest.raises(NasError, match=r"pip install 'nas\[tflite\]'"):
        export("mobilenet_v3_small", "tflite", tmp_path / "m.tflite")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LITERT, reason="needs pip install 'nas[tflite]'")
def test_tflite_export_runs_in_litert_and_is_timed(run_folder, tmp_path):
    result = export(str(run_folder["path"]), "tflite", tmp_path / "m.tflite")
    assert result.checks["litert_max_abs_diff"] < CHECK_ATOL
    assert result.checks["litert_latency_ms"] > 0


# ---------------------------------------------------------------- CLI

def test_cli_prints_what_it_wrote_and_the_weights(tmp_path):
    code, out = cli("export", "mobilenet_v3_small", "--format", "pytorch", "--out", str(tmp_path / "m.pt"))
    assert code == 0, out
    assert f"wrote {tmp_path / 'm.pt'}" in out
    assert "weights: initialised" in out and "nas.load vs PyTorch max abs difference" in out


def test_cli_unknown_format_exits_2(tmp_path):
    code, out = cli("export", "mobilenet_v3_small", "--format", "coreml", "--out", str(tmp_path / "m"))
    assert code == 2 and "'coreml' is not one of" in out


def test_cli_failed_trial_exits_2_with_one_line(run_folder, tmp_path):
    code, out = cli("export", str(run_folder["path"]), "--trial", str(run_folder["failed"]), "--format", "json",
                    "--out", str(tmp_path / "x.json"))
    assert code == 2
    assert out.count("\n") == 1 and out.startswith("error: trial 5") and "failed" in out


def test_cli_missing_run_exits_2(tmp_path):
    code, out = cli("export", str(tmp_path / "runs" / "nope"), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "no such run folder" in out


def test_cli_trial_and_best_together_exit_2(run_folder, tmp_path):
    code, out = cli("export", str(run_folder["path"]), "--trial", "3", "--best", "--format", "json",
                    "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--trial and --best" in out


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(NasError, match="--format 'coreml' is not allowed; expected one of onnx, torchscript"):
        export("mobilenet_v3_small", "coreml", tmp_path / "m")
