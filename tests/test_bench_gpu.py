"""benchmarks/bench_gpu.py keeps working on machines without a GPU: its --quick run on the CPU
goes through every step (throughput, trial twice, a 2-trial search, a small fidelity run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # about a minute and a half of training
def test_bench_gpu_quick_on_the_cpu_writes_every_figure(tmp_path):
    out = tmp_path / "bench"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--quick",
                        "--out", str(out)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-2000:]
    info = json.loads((out / "results.json").read_text())
    assert info["device"] == "cpu" and info["quick"]
    assert {(r["arch"], r["recipe"], r["precision"]) for r in info["throughput"]} == {
        (a, r, x) for a in ("mobilenet_v3_large", "mobilenet_v3_small") for r in ("default", "gpu")
        for x in ("fp32", "bf16")}
    assert all(r["images_per_s"] > 0 for r in info["throughput"])
    assert info["trial"]["accuracy_difference"] == 0  # the CPU is deterministic
    assert info["search"]["trained"] == 2 and info["search"]["devices"] == ["cpu"]
    assert len(info["fidelity"]["accuracies"]) == 3
    assert (out / "README.md").read_text().startswith("# GPU benchmark on cpu")


def test_bench_gpu_on_a_missing_device_is_one_line_and_exit_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--out", str(tmp_path / "b")],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2 and "device 'cuda' is not available" in p.stderr
    assert not (tmp_path / "b").exists()
