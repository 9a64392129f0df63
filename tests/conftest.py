"""What every test shares: one thread per process, a private data cache, the tiny recipe."""

import os
import signal
from pathlib import Path

import pytest

# One thread per process: CI has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A shell without job control starts background commands with Ctrl-C ignored, and an ignored
# signal stays ignored in every process they start: the tests that press Ctrl-C on a `nas`
# subprocess would then test nothing (it never arrives). Ctrl-C is delivered as on a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_RECIPE_FILE = FIXTURES / "tiny_recipe.yaml"
# The smallest recipe that still trains: search and engine tests run many trials with it.
TINY_RECIPE = TINY_RECIPE_FILE.read_text()


@pytest.fixture(autouse=True)
def short_pace_start(monkeypatch) -> None:
    """A new latency table sets its pace reference from a few readings, not 3 seconds of them."""
    import nas.latency.measure

    monkeypatch.setattr(nas.latency.measure, "PACE_START_S", 0.05)


@pytest.fixture(autouse=True)
def denormals_restored():
    """Timing code flushes denormals to zero on the calling thread (torch runners, and onnxruntime's
    set_denormal_as_zero on one thread); later tests (hypothesis's float strategies) need them back."""
    yield
    import torch

    torch.set_flush_denormal(False)


@pytest.fixture(scope="session", autouse=True)
def nas_cache(tmp_path_factory) -> Path:
    """$NAS_CACHE_DIR for the whole session: a temporary folder, so no test writes to the user's
    ~/.cache/nas, and the shipped CIFAR-10 is decoded at most once per session. Subprocesses
    inherit it."""
    folder = tmp_path_factory.mktemp("nas-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def cifar(nas_cache):
    """The shipped CIFAR-10, decoded into the session cache on first use (whatever cache folder
    the test itself sets)."""
    from nas.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_CACHE_DIR", str(nas_cache))
        return load_dataset("cifar10", progress=False)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache folder for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("NAS_CACHE_DIR", str(folder))
    return folder


def assert_one_line(exc: pytest.ExceptionInfo, *parts: str) -> None:
    """The error message is one line and names every part."""
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.fixture(scope="session")
def v3_small():
    """MobileNetV3-Small as published (an immutable Arch, shared by every test)."""
    from nas.baselines import load_baseline

    return load_baseline("mobilenet_v3_small")


@pytest.fixture()
def tiny_recipe(tmp_path) -> str:
    """A recipe file of TINY_RECIPE, for commands that take --recipe."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return str(path)


@pytest.fixture()
def fake_search(monkeypatch) -> list:
    """Replace the search itself (not its checks) with a stub recording the SearchConfig it got."""
    import nas.search

    ran = []
    monkeypatch.setattr(nas.search, "run_search", lambda config, progress=True: ran.append(config) or {"stub": True})
    return ran


def search_cli(*args) -> tuple[int, str]:
    """`nas search ARGS` in-process with one worker and no progress bar: (exit code, output + stderr)."""
    from click.testing import CliRunner

    from nas.cli import main

    result = CliRunner().invoke(main, ["search", "--no-progress", "--workers", "1", *args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")
