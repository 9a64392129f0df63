"""nas/paths.py: one resolver for the data files, and pyproject.toml ships every one of them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nas
import nas.paths as paths
from nas.latency import predict as predict_module

REPO = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")


def _setuptools_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_shipped_file_resolves_and_exists():
    files = paths.shipped_files()
    missing = [str(f) for f in files if not f.is_file()]
    assert not missing
    names = {f.name for f in files}
    assert {"mobilenet_v3.yaml", "mobilenet_v3_large.json", "mobilenet_v3_small.json", "pixel.csv",
            "local-cpu.csv", "proxy_recipe.yaml", "imagenet_top1.yaml"} <= names


def test_a_checkout_reads_and_writes_its_own_folders():
    if os.environ.get("NAS_HOME"):
        pytest.skip("NAS_HOME is set")
    assert paths.ROOT == REPO and paths.WORK == REPO and paths.USER_LATENCY_TABLES is None
    assert paths.PROXY_RECIPE == REPO / "experiments" / "proxy_recipe.yaml"
    assert paths.PACKAGE_DATA == Path(nas.__file__).resolve().parent / "_data"


def test_pyproject_ships_every_shipped_file():
    """Each file the resolver needs lies in a folder pyproject.toml maps into the package and
    matches that package's package-data globs, so the wheel holds it."""
    cfg = _setuptools_config()
    folders = {REPO / folder: pkg for pkg, folder in cfg["package-dir"].items()}
    folders[REPO / "nas"] = "nas"
    unshipped = []
    for f in paths.shipped_files():
        folder = next((d for d in folders if f.is_relative_to(d)), None)
        globs = cfg["package-data"].get(folders.get(folder), [])
        if not any(f in folder.glob(g) for g in globs):
            unshipped.append(str(f))
    assert not unshipped


def test_pyproject_lists_every_subpackage_of_nas():
    listed = set(_setuptools_config()["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "nas").rglob("__init__.py")}
    assert found - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"


def test_nas_home_overrides_the_data_folders(tmp_path):
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")
    (tmp_path / "search_spaces" / "baselines" / "mobilenet_v1.json").unlink()
    env = {**os.environ, "NAS_HOME": str(tmp_path)}
    code = ("import json, nas.paths as p; from nas.baselines import baseline_names; "
            "print(json.dumps([str(p.ROOT), str(p.WORK), str(p.USER_LATENCY_TABLES), baseline_names()]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    root, work, user_tables, names = json.loads(out)
    assert root == work == str(tmp_path) and user_tables == "None"
    assert names == ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


def test_user_tables_are_searched_before_the_shipped_ones(tmp_path, monkeypatch):
    shipped = Path(predict_module.LATENCY_TABLES)
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy(shipped / "pixel.csv", user / "mine.csv")
    shutil.copy(shipped / "pixel.csv", user / "local-cpu.csv")
    monkeypatch.setattr(predict_module, "USER_LATENCY_TABLES", user)
    assert predict_module.known_targets() == sorted(set(predict_module.known_targets(shipped)) | {"mine"})
    assert predict_module.load_target("local-cpu").path == str(user / "local-cpu.csv")
    assert predict_module.load_target("pixel").path == str(shipped / "pixel.csv")
