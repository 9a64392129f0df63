"""Promises about what nas does to the machine around it under hostile input (issue 31): it never
replaces what is not its own file, checks everything a command needs before writing anything,
answers Ctrl-C with one line, and keeps concurrent processes from racing on a run folder, a study
storage or a latency table.

One test per root cause of the issue, named for the promise; each refusal is one line with exit
code 2 (130 for Ctrl-C) and leaves nothing changed or behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from nas.cli import main
from nas.errors import NasError
from nas.recipe import MAX_SEED
from nas.search import holding_run_folder
from conftest import FIXTURES, TINY_RECIPE_FILE
from test_storage import postgres_url  # noqa: F401  the throwaway PostgreSQL server (slow tests)

TINY = str(TINY_RECIPE_FILE)
REPO = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 10 * 60  # only a hang reaches it: the tests below wait on events


def invoke(*args: str, env: dict | None = None):
    """Run `nas ARGS` in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner(env=env).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_refusal(code: int, stderr: str, *words: str, exit_code: int = 2) -> None:
    assert code == exit_code, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    for w in words:
        assert w in stderr, stderr


def search_cli(out: Path, *extra: str):
    return invoke("search", "--budget", "60ms", "--recipe", TINY, "--out", str(out), "--trials", "1",
                  "--no-progress", "--json", *extra)


# ---------------------------------------------------------------- 1. output paths

def _special(kind: str, path: Path) -> Path:
    """Make a `kind` of file that is not a regular file at `path` (private device nodes, never /dev's)."""
    if kind == "char device":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    elif kind == "block device":
        os.mknod(path, 0o600 | stat.S_IFBLK, os.makedev(7, 200))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    elif kind == "folder":
        path.mkdir()
    elif kind == "link to a char device":
        _special("char device", path.with_name("node"))
        path.symlink_to(path.with_name("node"))
    return path


def _identity(path: Path) -> tuple:
    st = os.lstat(path)
    return st.st_mode, st.st_rdev, st.st_ino


@pytest.mark.parametrize("kind", ["char device", "block device", "fifo", "socket", "folder", "link to a char device"])
@pytest.mark.parametrize("command", [
    ["export", "mobilenet_v3_small", "--format", "json", "--out", "OUT"],
    ["export", "mobilenet_v3_small", "--format", "string", "--out", "OUT"],
    ["export", "mobilenet_v3_small", "--format", "pytorch", "--out", "OUT", "--no-progress"],
    ["train", "mobilenet_v3_small", "--recipe", TINY, "--checkpoint", "OUT", "--no-progress"],
])
def test_an_output_path_that_is_not_a_regular_file_is_refused_and_never_replaced(tmp_path, kind, command):
    if "device" in kind and os.geteuid() != 0:
        pytest.skip("making device nodes needs root")
    out = _special(kind, tmp_path / "out")
    before = _identity(out), sorted(os.listdir(tmp_path))
    code, _, err = invoke(*[str(out) if a == "OUT" else a for a in command])
    one_line_refusal(code, err, str(out), *(["not a regular file"] if kind != "folder" else []))
    assert (_identity(out), sorted(os.listdir(tmp_path))) == before  # the node itself, nothing beside it


def test_the_atomic_write_follows_a_symlink_and_refuses_what_is_not_a_file(tmp_path):
    from nas.files import write_text_atomic

    target = tmp_path / "real.json"
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    write_text_atomic(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "new"
    with pytest.raises(NasError, match="is a FIFO"):
        write_text_atomic(_special("fifo", tmp_path / "fifo"), "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.json", "real.json"]


# ---------------------------------------------------------------- 2. --seed

@pytest.mark.parametrize("seed", [str(2**70), str(MAX_SEED + 1), "-1"])
@pytest.mark.parametrize("command", ["search", "train"])
def test_a_seed_outside_0_to_2_32_is_refused_before_any_work(tmp_path, command, seed):
    out = tmp_path / "run"
    if command == "search":
        code, _, err = search_cli(out, "--seed", seed)
    else:
        code, _, err = invoke("train", "mobilenet_v3_small", "--recipe", TINY, "--seed", seed, "--checkpoint",
                              str(out / "m.pt"))
    one_line_refusal(code, err, seed, str(MAX_SEED))
    assert not out.exists()


# ---------------------------------------------------------------- 3. everything checked before anything is written

@pytest.mark.parametrize("bad", [["--dataset", "mnist"], ["--dataset", "imagefolder:"], ["--data-dir", "/nonexistent"],
                                 ["--dataset", "imagefolder:/nonexistent"], ["--storage", "journal:/nonexistent/j"],
                                 ["--device", "cuda:7"], ["--recipe", "/nonexistent.yaml"]])
def test_a_refused_search_leaves_no_trace_and_the_corrected_command_runs(tmp_path, fake_search, bad):
    out = tmp_path / "runs" / "run"
    code, _, err = search_cli(out, *bad)
    one_line_refusal(code, err)
    assert "Trial" not in err and list(tmp_path.iterdir()) == []
    code, _, err = search_cli(out)
    assert code == 0, err
    assert len(fake_search) == 1 and (out / "config.yaml").is_file()


# ---------------------------------------------------------------- 4. Ctrl-C

class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


def test_ctrl_c_in_a_trial_is_one_line_and_exit_130(tmp_path, monkeypatch):
    import nas.search.optuna_engine as engine

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "run_trial", interrupted)
    optuna_log = _Records()  # Optuna logs to the stderr it found at import, beside its own handler
    logging.getLogger("optuna").addHandler(optuna_log)
    try:
        code, _, err = search_cli(tmp_path / "run")
    finally:
        logging.getLogger("optuna").removeHandler(optuna_log)
    assert code == 130 and err.strip() == "aborted", err
    assert not [r.getMessage() for r in optuna_log.seen if r.levelno >= logging.WARNING]
    trials = optuna.load_study(study_name="nas", storage=f"sqlite:///{tmp_path}/run/study.db").trials
    assert [t.state.name for t in trials][:2] == ["FAIL", "WAITING"]  # the stopped trial, queued again
    assert trials[0].user_attrs["baseline"] == trials[-1].user_attrs["baseline"] == "mobilenet_v3_large"


# Runs `nas` as `python -m nas` does, but the first import of a nas module once torch is loaded
# waits for Ctrl-C: it then lands while the command is still loading, however fast or loaded the
# machine is (the test waits on the "paused" line, not on a clock). SIGINT is blocked before that
# line is printed and waited for with sigwait, so one sent before the wait begins is not lost; it
# is then raised where the import stood.
_PAUSED_WHILE_LOADING = """
import runpy, signal, sys

class PauseAfterTorch:
    paused = False

    def find_spec(self, name, path=None, target=None):
        if not self.paused and "torch" in sys.modules and name.startswith("nas."):
            self.paused = True
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            print("paused before importing " + name, file=sys.stderr, flush=True)
            signal.sigwait({signal.SIGINT})
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            signal.raise_signal(signal.SIGINT)
        return None

sys.meta_path.insert(0, PauseAfterTorch())
sys.argv = ["nas", *sys.argv[1:]]
runpy.run_module("nas", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C once torch is in, while `nas export` still imports the rest of its modules."""
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_WHILE_LOADING, "export", "mobilenet_v3_small",
                             "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    paused = proc.stderr.readline()
    assert paused.startswith("paused before importing nas."), paused + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130 and rest.strip() == "aborted", rest
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------- 5. NAS_HOME

@pytest.mark.parametrize("home", ["missing", "file"])
@pytest.mark.parametrize("command", [["baselines"], ["show", "mobilenet_v3_large"], ["latency", "targets"]])
def test_a_nas_home_that_is_not_a_folder_is_one_line_naming_it(tmp_path, home, command):
    path = tmp_path / "nas"
    if home == "file":
        path.write_text("not a folder")
    code, out, err = invoke(*command, env={"NAS_HOME": str(path)})
    one_line_refusal(code, err, f"NAS_HOME={path}")
    assert out == ""


# ---------------------------------------------------------------- 6. races and locks

_JOINER = """
import sys
from nas.recipe import load_recipe, recipe_to_dict
from nas.search import SearchConfig
from nas.search.study import ensure_study
from nas.space import DEFAULT_SPACE
storage, out, recipe = sys.argv[1:4]
config = SearchConfig(target="pixel", budget_ms=60.0, out=out, space=str(DEFAULT_SPACE),
                      recipe=recipe_to_dict(load_recipe(recipe)), trials=1, storage=storage, study="shared")
print("ready", flush=True)
sys.stdin.readline()
ensure_study(config, vouched=False)
print("joined", flush=True)
"""


def _start_at_once(storage: str, folder: Path, n: int) -> list[tuple[int, str]]:
    """N processes that each create or join the study `shared` in `storage` as `nas search`
    does, released together once all are ready; their (exit code, output)."""
    procs = [subprocess.Popen([sys.executable, "-c", _JOINER, storage, str(folder / f"machine{i}"), TINY],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate()[0]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return [(p.wait(timeout=HANG_GUARD_S), p.communicate()[0]) for p in procs]


@pytest.mark.parametrize("kind", ["sqlite", "journal", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_workers_started_at_once_on_a_new_storage_all_join_one_study(tmp_path, request, kind):
    storage = {"sqlite": f"sqlite:///{tmp_path}/study.db", "journal": f"journal:{tmp_path}/study.journal"}.get(kind)
    if kind == "postgresql":
        import psycopg

        server = request.getfixturevalue("postgres_url")
        with psycopg.connect(server, autocommit=True) as db:
            db.execute("CREATE DATABASE fresh_race")
        storage = server.rsplit("/", 1)[0] + "/fresh_race"
    results = _start_at_once(storage, tmp_path, 4)
    assert all(code == 0 and out.strip() == "joined" for code, out in results), results
    from nas.search.study import open_storage

    assert [s.study_name for s in open_storage(storage).get_all_studies()] == ["shared"]
    assert not list(tmp_path.glob("*.nas-lock"))


def test_a_second_process_on_a_run_folder_or_table_is_refused_with_one_line(tmp_path, fake_search):
    from nas.latency.build import build_table
    from nas.latency.measure import TimingPlan
    from nas.latency.table import building
    from nas.space import load_space

    out = tmp_path / "run"
    with holding_run_folder(out):  # another `nas search` running in it
        code, _, err = search_cli(out)
    one_line_refusal(code, err, f"--out {out}", "another nas search is running")
    assert list(out.iterdir()) == [] and fake_search == []

    table = tmp_path / "t.csv"
    with building(table):  # another `nas latency build --target t`
        with pytest.raises(NasError, match="another nas latency build is building this table"):
            build_table("t", load_space(FIXTURES / "tiny_space.yaml"), runtime="torch", samples=1, calibration=0,
                        plan=TimingPlan(warmup=1, rounds=1, min_samples=2, max_samples=2, budget_s=0.001),
                        path=table, baselines=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ---------------------------------------------------------------- 7. single cases

def test_a_journal_storage_that_is_not_a_regular_file_is_one_line(tmp_path):
    fifo = _special("fifo", tmp_path / "journal")
    code, _, err = search_cli(tmp_path / "run", "--storage", f"journal:{fifo}")
    one_line_refusal(code, err, f"journal:{fifo}", "not a journal file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal"]


@pytest.mark.parametrize("args,named", [
    (["show", ""], "argument ''"), (["space", "show", ""], "argument ''"),
    (["search", "--budget", "60ms", "--out", ""], "--out: the value ''"),
    (["search", "--budget", "60ms", "--storage", ""], "--storage: the value ''"),
    (["export", "mobilenet_v1", "--format", "json", "--out="], "--out: the value ''"),
    (["train", "mobilenet_v1", "--recipe", ""], "--recipe: the value ''"),
])
def test_an_empty_value_is_refused_naming_it_not_read_as_the_current_folder(tmp_path, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke(*args)
    one_line_refusal(code, err, named)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_architecture_from_python_is_named_as_empty():
    from nas.resolve import resolve_arch

    with pytest.raises(NasError, match="architecture '' is empty"):
        resolve_arch("")


@pytest.mark.parametrize("where", ["cache a file", "home a file"])
def test_an_unusable_cache_folder_is_one_warning_line_and_training_goes_on(tmp_path, monkeypatch, capsys, where):
    import numpy as np

    from nas.data import cache

    (tmp_path / "file").write_text("in the way")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    if where == "cache a file":
        monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "file"))
    else:
        monkeypatch.delenv("NAS_CACHE_DIR")
        monkeypatch.setenv("HOME", str(tmp_path / "file"))
    monkeypatch.setattr(cache, "_warned", set())
    for name in ("a.npz", "b.npz"):  # warned once per folder
        arrays, hit = cache.cached(cache.cache_dir() / name, lambda: {"x": np.arange(3)})
        assert not hit and list(arrays["x"]) == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.startswith("warning: data cache unusable") and err.count("\n") == 1, err
    assert (tmp_path / "file").read_text() == "in the way"


# ---------------------------------------------------------------- 8. kill -9 during a latency build

@pytest.mark.slow
def test_a_latency_build_killed_with_sigkill_leaves_no_table_and_the_rerun_finishes_it(tmp_path):
    import shutil

    from nas.latency.table import read_table

    home = tmp_path / "home"
    shutil.copytree(REPO / "search_spaces", home / "search_spaces")
    (home / "latency_tables").mkdir()
    table, partial = home / "latency_tables" / "t.csv", home / "latency_tables" / "t.csv.partial"
    command = [sys.executable, "-m", "nas", "latency", "build", "--target", "t", "--quick", "--runtime", "torch",
               "--space", str(FIXTURES / "tiny_space.yaml"), "--samples", "2", "--calibration", "0"]
    env = {**os.environ, "NAS_HOME": str(home)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    while not (partial.exists() and any(not l.startswith(("#", "key,")) for l in partial.read_text().splitlines())):
        assert proc.poll() is None and time.monotonic() - start < HANG_GUARD_S, "the build ended before a row was timed"
        time.sleep(0.05)
    proc.kill()  # kill -9, mid-build: some rows timed, others not
    proc.wait()
    assert not table.exists()  # nothing reads as a finished table
    kept = set(read_table(partial).rows)
    done = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    finished = read_table(table)
    assert kept <= set(finished.rows) and "op_model" in finished.header
    assert sorted(p.name for p in table.parent.iterdir()) == ["t.csv"]  # no partial file, no lock left
