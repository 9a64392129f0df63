"""The package's import graph, as pyproject.toml's import-linter contracts state it: no module
imports a sibling back (directly or through a chain), and the layers data -> build ->
latency/train -> search -> export/report -> cli import downward only."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def contracts() -> list[dict]:
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs Python 3.11's tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold():
    p = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert re.search(r"Contracts: \d+ kept, 0 broken", p.stdout)


def test_cycles_are_checked_in_every_package_of_nas():
    acyclic = [c for c in contracts() if c["type"] == "acyclic_siblings"]
    assert acyclic and acyclic[0]["ancestors"] == ["nas"]


def test_every_module_of_nas_sits_in_a_layer():
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in re.split(r"[|:]", layer)}
    modules = {f"nas.{p.stem}" for p in (ROOT / "nas").glob("*.py") if not p.stem.startswith("__")}
    packages = {f"nas.{p.parent.name}" for p in (ROOT / "nas").glob("*/__init__.py")}
    assert modules | packages == named


def test_the_layers_run_from_the_cli_down_to_the_data():
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    order = [next(i for i, layer in enumerate(layers) if name in re.split(r"\s*[|:]\s*", layer))
             for name in ("nas.cli", "nas.report", "nas.search", "nas.latency", "nas.builder", "nas.arch")]
    assert order == sorted(order) and len(set(order)) == len(order)
