"""The LiteRT runtime (`--runtime tflite`): ops converted by litert-torch and timed in the LiteRT
interpreter. Where the optional packages are missing (CI), a build asks for them in one line."""

import importlib.util

import pytest

from nas.baselines import load_baseline
from nas.errors import NasError
from nas.latency import measure

HAVE_LITERT = all(importlib.util.find_spec(m) for m in measure.LITERT_PACKAGES)
needs_litert = pytest.mark.skipif(not HAVE_LITERT, reason="pip install 'nas[tflite]' to run the LiteRT runtime")


def test_without_the_packages_the_runtime_asks_for_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(NasError) as e:
        measure.runtime_version("tflite")
    assert "pip install 'nas[tflite]'" in str(e.value) and "\n" not in str(e.value)


def test_tflite_is_a_runtime_a_table_can_be_built_with():
    assert "tflite" in measure.RUNTIMES
    assert measure.check_runtime("tflite") == "tflite"


@needs_litert
def test_an_op_runs_in_the_litert_interpreter_and_matches_torch():
    import numpy as np
    import torch

    from nas.builder import build_layer

    layer = load_baseline("mobilenet_v3_small").with_overrides(width=0.35, resolution=96).layers()[3]
    run = measure.layer_runner(layer, "tflite", 1)
    interpreter = run()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    torch.manual_seed(0)
    with torch.inference_mode():
        want = build_layer(layer).eval()(measure.example_input(layer)).numpy()
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-3
    assert measure.runtime_version("tflite").startswith("ai-edge-litert ")
