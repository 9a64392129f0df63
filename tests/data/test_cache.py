"""nas.data.cache: where decoded arrays go and how they are written."""

import numpy as np
import pytest

from nas.data import cache


def test_cache_write_that_fails_midway_leaves_no_cache_file(tmp_path, monkeypatch):
    def savez_then_die(f, **arrays):
        f.write(b"PK partial")
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(cache.np, "savez", savez_then_die)
    target = tmp_path / "x.npz"
    with pytest.raises(RuntimeError):
        cache.save_npz_atomic(target, {"a": np.zeros(3)})
    assert not target.exists()


def test_cache_dir_prefers_nas_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("NAS_CACHE_DIR")
    assert cache.cache_dir() == tmp_path / "b" / "nas"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "nas"
