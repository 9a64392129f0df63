"""Where trials train: the device knob, its resolution on this machine, worker placement on GPUs,
and the device paths the CPU can run (bf16 autocast, the recorded device)."""

import pytest
import torch
from click.testing import CliRunner

from nas import device as device_module
from nas.cli import main
from nas.errors import NasError
from nas.recipe import load_recipe, make_recipe
from nas.train import train_arch

TINY = dict(train_subset=256, val_size=200, epochs=1, batch_size=64, threads=1)


@pytest.fixture
def two_gpus(monkeypatch):
    """This process sees two CUDA devices (only the counting is faked: nothing trains on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)


@pytest.mark.parametrize("spec", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_well_formed_devices_are_accepted_as_text_on_any_machine(spec):
    assert device_module.check_spec(spec) == spec
    assert make_recipe(device=spec).device == spec  # a GPU machine's recipe loads on a laptop


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "CPU", "", 0, None])
def test_malformed_devices_are_refused_naming_what_is_allowed(spec):
    with pytest.raises(NasError, match="auto, cpu, cuda, cuda:N or mps"):
        device_module.check_spec(spec)


def test_auto_is_the_cpu_on_a_machine_without_accelerators(no_gpu):
    assert device_module.resolve("auto") == torch.device("cpu")
    assert device_module.available() == ["cpu"]


def test_auto_prefers_cuda_then_mps(two_gpus, monkeypatch):
    assert device_module.resolve("auto") == torch.device("cuda:0")
    assert device_module.resolve("cuda") == torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert device_module.resolve("auto") == torch.device("mps")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "mps"])
def test_a_device_this_machine_lacks_is_one_line_naming_what_it_has(no_gpu, spec):
    with pytest.raises(NasError) as e:
        device_module.resolve(spec)
    assert "\n" not in str(e.value)
    assert f"device {spec!r} is not available" in str(e.value) and "this machine has cpu" in str(e.value)


def test_a_gpu_index_past_the_last_gpu_is_refused(two_gpus):
    with pytest.raises(NasError, match="this machine has cuda:0, cuda:1"):
        device_module.resolve("cuda:2")


@pytest.mark.parametrize("per_gpu, expected", [(1, ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
                                               (2, ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]),
                                               (3, ["cuda:0", "cuda:0", "cuda:0", "cuda:1"])])
def test_workers_are_spread_over_the_gpus_k_to_each(two_gpus, per_gpu, expected):
    assert [device_module.worker_device("auto", w, per_gpu) for w in range(4)] == expected
    assert [device_module.worker_device("cuda", w, per_gpu) for w in range(4)] == expected


def test_an_explicit_device_is_every_workers_device(two_gpus):
    assert {device_module.worker_device("cuda:1", w, 1) for w in range(4)} == {"cuda:1"}
    assert {device_module.worker_device("cpu", w, 1) for w in range(4)} == {"cpu"}


def test_workers_without_gpus_all_train_on_the_cpu(no_gpu):
    assert {device_module.worker_device("auto", w, 2) for w in range(4)} == {"cpu"}


def test_ray_asks_for_one_kth_of_a_gpu_per_trial():
    from nas.search.ray_trial import gpu_share

    assert [gpu_share(k) for k in (1, 2, 3, 4)] == [1.0, 0.5, 0.3333, 0.25]


# ---------------------------------------------------------------- training on a device




def test_auto_and_cpu_train_the_same_network_here(v3_small):
    if device_module.available() != ["cpu"]:
        pytest.skip("this machine has an accelerator: auto does not mean the CPU here")
    auto = train_arch(v3_small, load_recipe(**TINY, device="auto"))
    cpu = train_arch(v3_small, load_recipe(**TINY, device="cpu"))
    assert auto.accuracy == cpu.accuracy and auto.device == cpu.device == "cpu"
    assert all(torch.equal(a, b) for a, b in zip(auto.model.state_dict().values(),
                                                 cpu.model.state_dict().values()))


def test_a_trained_model_comes_back_on_the_cpu(v3_small):
    result = train_arch(v3_small, load_recipe(**TINY))
    assert {p.device.type for p in result.model.parameters()} == {"cpu"}


def test_bf16_autocast_trains_and_changes_the_numbers_but_not_the_weights_dtype(v3_small):
    fp32 = train_arch(v3_small, load_recipe(**TINY, precision="fp32"))
    bf16 = train_arch(v3_small, load_recipe(**TINY, precision="bf16"))
    again = train_arch(v3_small, load_recipe(**TINY, precision="bf16"))
    assert 0 <= bf16.accuracy <= 1 and bf16.accuracy == again.accuracy  # deterministic on the CPU
    weights = [p for p in bf16.model.parameters()]
    assert {p.dtype for p in weights} == {torch.float32}
    assert any(not torch.equal(a, b) for a, b in zip(weights, fp32.model.parameters()))


def test_training_on_a_missing_device_is_a_nas_error(v3_small, no_gpu):
    with pytest.raises(NasError, match="device 'cuda' is not available"):
        train_arch(v3_small, load_recipe(**TINY), device="cuda")


# ---------------------------------------------------------------- command line


def _run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nas_train_on_cuda_without_cuda_is_one_line_and_exit_2():
    code, out = _run("train", "mobilenet_v3_small", "--device", "cuda", "--epochs", "1")
    assert code == 2 and out.count("\n") == 1 and "device 'cuda' is not available" in out


def test_nas_train_with_a_malformed_device_is_one_line_and_exit_2():
    code, out = _run("train", "mobilenet_v3_small", "--device", "gpu0")
    assert code == 2 and out.count("\n") == 1 and "expected auto, cpu, cuda, cuda:N or mps" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nas_search_on_cuda_without_cuda_refuses_before_writing_anything(tmp_path):
    out = tmp_path / "run"
    code, text = _run("search", "--budget", "60ms", "--device", "cuda", "--out", str(out), "--trials", "1")
    assert code == 2 and "device 'cuda' is not available" in text and not (out / "config.yaml").exists()


def test_nas_search_refuses_zero_trials_per_gpu(tmp_path):
    code, text = _run("search", "--budget", "60ms", "--trials-per-gpu", "0", "--out", str(tmp_path / "r"))
    assert code == 2 and "--trials-per-gpu" in text
