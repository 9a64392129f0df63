"""The built wheel, installed into a fresh venv (no editable install in sight), runs from any folder."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TINY_RECIPE

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("build")


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv holding only the wheel built from this checkout (and its dependencies): its bin
    folder, its site-packages nas folder, and the environment to run it in."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(REPO)],
                   check=True, capture_output=True)
    wheel, = (tmp / "dist").glob("nas-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_DATA_HOME"] = str(tmp / "xdg")
    code = "import nas, pathlib; print(pathlib.Path(nas.__file__).resolve().parent)"
    package = Path(subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, cwd=tmp,
                                  capture_output=True, text=True, check=True).stdout.strip())
    return {"bin": venv / "bin", "package": package, "env": env, "tmp": tmp}


def _nas(installed, cwd, *args):
    result = subprocess.run([str(installed["bin"] / "nas"), *args], cwd=cwd, env=installed["env"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_the_wheel_imports_nas_from_its_own_site_packages(installed):
    assert installed["package"].parent.name == "site-packages"
    assert not installed["package"].is_relative_to(REPO)


@pytest.mark.slow
def test_the_installed_wheel_lists_baselines_and_targets_from_any_folder(installed, tmp_path):
    names = [r["name"] for r in json.loads(_nas(installed, tmp_path, "baselines", "--json"))]
    assert names == ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]
    targets = {r["name"] for r in json.loads(_nas(installed, tmp_path, "latency", "targets", "--json"))}
    assert {"pixel", "local-cpu"} <= targets


@pytest.mark.slow
def test_the_installed_wheel_searches_and_reports_without_writing_into_site_packages(installed, tmp_path):
    before = _files_under(installed["package"])
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE)
    _nas(installed, tmp_path, "search", "--target", "pixel", "--budget", "60ms", "--trials", "1",
         "--recipe", "tiny.yaml", "--out", "run")
    _nas(installed, tmp_path, "report", "run")
    run = tmp_path / "run"
    assert {"config.yaml", "trials.csv", "best.json", "summary.md", "report.md"} <= {p.name for p in run.iterdir()}
    assert yaml.safe_load((run / "config.yaml").read_text())["target"] == "pixel"
    trials = list(csv.DictReader(open(run / "trials.csv")))
    assert [t["state"] for t in trials] == ["COMPLETE"] and float(trials[0]["latency_ms"]) <= 60
    assert _files_under(installed["package"]) == before
