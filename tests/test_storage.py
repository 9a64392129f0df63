"""Several machines on one study: `--storage postgresql://...` against a real, throwaway
PostgreSQL server and `--storage journal:PATH` (a shared file), each with workers in separate
processes and run folders (one per machine), one of them killed with SIGKILL mid-trial.

Nothing here waits on the clock: each step polls for an event in the study (a trial RUNNING, a
heartbeat gone stale) or a process exit; HANG_GUARD_S only turns a hang into a failure."""

import csv
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from nas.cli import main
from nas.search.progress import trial_status
from nas.search.study import GRACE_S, open_storage
from conftest import TINY_RECIPE

HANG_GUARD_S = 15 * 60
STUDY = "nas-pixel60"  # every machine's --out is <machine>/pixel60, so they share this default study
IN_CI = os.environ.get("CI") == "true"
FINISHED = ("COMPLETE", "PRUNED", "FAIL", "REJECTED")


def unavailable(reason: str):
    """Skip with `reason` on a developer machine; fail in CI, which must test everything."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run installs it)")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# A throwaway PostgreSQL cluster


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's initdb and pg_ctl: on PATH, else Debian's newest
    /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                     if Path(p).parent.name.isdigit() else 0)
    folders = [Path(f) for f in folders if (Path(f) / "initdb").exists() and (Path(f) / "pg_ctl").exists()]
    return folders[-1] if folders else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own (initdb + pg_ctl in a temporary folder, on 127.0.0.1 only,
    trust authentication), stopped and removed afterwards. As root, the server runs as the
    `postgres` user, since PostgreSQL refuses to run as root."""
    bindir = postgres_bin()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401  the driver SQLAlchemy 2.1 uses for postgresql://
    except ImportError:
        unavailable("no PostgreSQL driver: pip install -e '.[postgres]'")
    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))  # not under pytest's tmp: its folders are private to root
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            unavailable("running as root and there is no `postgres` user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                  "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                  "-w", "-t", str(HANG_GUARD_S), "-o",
                                  f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
                                  "-c fsync=off", "start"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Workers and what they leave in the shared study


def start_worker(storage: str, machine: Path, trials: int, recipe: Path) -> subprocess.Popen:
    """`nas search --storage STORAGE --out MACHINE/pixel60` as its own process (a machine of the
    README's several-machines setup), its output in MACHINE/worker.log."""
    machine.mkdir(parents=True, exist_ok=True)
    log = (machine / "worker.log").open("w")
    args = [sys.executable, "-m", "nas", "search", "--budget", "60ms", "--trials", str(trials),
            "--recipe", str(recipe), "--pruner", "none", "--storage", storage, "--out", str(machine / "pixel60"),
            "--no-progress", "--workers", "1"]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def study_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    """The shared study's trials (none before a worker created it)."""
    if storage.startswith("journal:") and not Path(storage.removeprefix("journal:")).exists():
        return []
    backend = open_storage(storage, check=False, heartbeat=True)
    try:
        return optuna.load_study(study_name=STUDY, storage=backend).get_trials()
    except KeyError:
        return []
    finally:
        getattr(getattr(backend, "engine", None), "dispose", lambda: None)()


def stale_numbers(storage: str) -> set[int]:
    """Numbers of the RUNNING trials whose heartbeat is older than the grace period, as every
    worker decides before it starts a trial (Optuna's `BaseHeartbeat._get_stale_trial_ids`)."""
    backend = open_storage(storage, check=False, heartbeat=True)
    try:
        study = optuna.load_study(study_name=STUDY, storage=backend)
        ids = set(backend._get_stale_trial_ids(study._study_id))
        return {t.number for t in study.get_trials(deepcopy=False) if t._trial_id in ids}
    finally:
        getattr(getattr(backend, "engine", None), "dispose", lambda: None)()


def wait_for(what: str, event, workers: dict[str, subprocess.Popen], machines: Path):
    """Poll `event()` until it returns something truthy, which is returned. Fails at once when a
    worker in `workers` exits with an error, and after HANG_GUARD_S (a hang)."""
    start = time.monotonic()
    while time.monotonic() - start < HANG_GUARD_S:
        result = event()
        if result:
            return result
        for name, proc in workers.items():
            if proc.poll() not in (None, 0):
                pytest.fail(f"worker {name} exited with {proc.returncode} while waiting for {what}:\n"
                            f"{logs(machines)}")
        time.sleep(0.5)
    pytest.fail(f"no {what} after {HANG_GUARD_S} s:\n{logs(machines)}")


def logs(machines: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(machines.glob("*/worker.log")))


def finish(proc: subprocess.Popen, name: str, machines: Path) -> None:
    try:
        code = proc.wait(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"worker {name} still running after {HANG_GUARD_S} s:\n{logs(machines)}")
    assert code == 0, f"worker {name} exited with {code}:\n{logs(machines)}"


def record(t: optuna.trial.FrozenTrial) -> tuple:
    """What must not change about a finished trial."""
    a = t.user_attrs
    return (t.number, t.state.name, a.get("status"), a.get("baseline"), t.params, a.get("accuracy_epochs"),
            a.get("arch"))


def kill_one_worker_midtrial_and_join_another(storage: str, machines: Path, recipe: Path) -> None:
    """The scenario both storages pass:
    1. machine a starts the search (4 trials), machine b joins it;
    2. once a trial finished and b is training one, b is killed with SIGKILL;
    3. once the heartbeat of b's trial is stale, machine c joins, asking for 6 trained trials;
    4. the interrupted trial was failed and queued again, ran once, and nothing finished was lost,
       changed or run twice; c's run folder shows the whole study."""
    workers = {"a": start_worker(storage, machines / "a", 4, recipe)}
    try:
        wait_for("trial RUNNING on machine a", lambda: any(t.state.name == "RUNNING" for t in study_trials(storage)),
                 workers, machines)
        workers["b"] = start_worker(storage, machines / "b", 4, recipe)
        b_worker = f"{socket.gethostname()}:{workers['b'].pid}"

        def b_training():
            trials = study_trials(storage)
            mine = [t for t in trials if t.state.name == "RUNNING" and t.user_attrs.get("worker") == b_worker
                    and t.user_attrs.get("status") == "RUNNING"]
            return mine if mine and any(t.state.name == "COMPLETE" for t in trials) else None

        killed = wait_for("trial in training on machine b", b_training, workers, machines)[0].number
        workers["b"].send_signal(signal.SIGKILL)
        assert workers.pop("b").wait() == -signal.SIGKILL
        before = {t.number: record(t) for t in study_trials(storage) if t.state.name in ("COMPLETE", "PRUNED")}
        assert before, "a trial finished before the kill"

        wait_for(f"stale heartbeat of trial {killed} ({GRACE_S} s after its last beat)",
                 lambda: killed in stale_numbers(storage)
                 or next(t for t in study_trials(storage) if t.number == killed).state.name != "RUNNING",
                 workers, machines)
        workers["c"] = start_worker(storage, machines / "c", 6, recipe)
        for name in ("a", "c"):
            finish(workers.pop(name), name, machines)
    finally:
        for proc in workers.values():
            proc.kill()
            proc.wait()

    after = {t.number: t for t in study_trials(storage)}
    for number, was in before.items():  # nothing finished is lost or changed
        assert record(after[number]) == was
    assert after[killed].state.name == "FAIL" and trial_status(after[killed]) == "INTERRUPTED"
    retries = [t for t in after.values() if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", logs(machines)
    assert retries[0].params == after[killed].params
    assert retries[0].user_attrs.get("baseline") == after[killed].user_attrs.get("baseline")
    assert not [t.number for t in after.values() if t.state.name in ("RUNNING", "WAITING")]
    done = [t for t in after.values() if t.state.name == "COMPLETE"]
    keys = [(t.user_attrs.get("baseline"), json.dumps(t.params, sort_keys=True)) for t in done]
    assert len(keys) == len(set(keys)), "a finished trial ran twice"
    epochs = int(next(line for line in TINY_RECIPE.splitlines() if line.startswith("epochs:")).split(":")[1])
    trained = [t for t in done if t.user_attrs.get("status") == "COMPLETE"]
    assert len(trained) >= 6
    assert all(len(t.user_attrs["accuracy_epochs"]) == epochs for t in trained)  # the retry started afresh
    assert {t.user_attrs.get("baseline") for t in trained} >= {"mobilenet_v3_large", "mobilenet_v3_small"}

    # The last machine's run folder shows the whole study; the Pareto trials' weights are on the
    # machines that trained them.
    run = machines / "c" / "pixel60"
    assert {"config.yaml", "trials.csv", "pareto.csv", "best.json", "summary.md"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert {int(r["number"]) for r in rows} == {n for n, t in after.items() if "arch" in t.user_attrs}
    assert [r["state"] for r in rows].count("INTERRUPTED") == 1
    assert all(r["state"] == trial_status(after[int(r["number"])]) for r in rows)
    pareto = [int(r["number"]) for r in csv.DictReader((run / "pareto.csv").open())]
    kept = {p.name for p in machines.glob("*/pixel60/checkpoints/trial_*.pt")}
    assert pareto and {f"trial_{n}.pt" for n in pareto} <= kept
    assert not (run / "study.db").exists()  # the record is the shared storage


@pytest.fixture()
def recipe(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return path


@pytest.mark.slow
def test_postgres_workers_lose_no_trial_when_one_is_killed(postgres_url, tmp_path, recipe):
    kill_one_worker_midtrial_and_join_another(postgres_url, tmp_path / "machines", recipe)


@pytest.mark.slow
def test_journal_workers_lose_no_trial_when_one_is_killed(tmp_path, recipe):
    shared = tmp_path / "nfs"
    shared.mkdir()
    kill_one_worker_midtrial_and_join_another(f"journal:{shared / 'pixel60.journal'}", tmp_path / "machines", recipe)


# ---------------------------------------------------------------------------------------------
# Checked before anything is written


def search(*args):
    result = CliRunner().invoke(main, ["search", "--no-progress", "--workers", "1", "--budget", "60ms", *args])
    return result.exit_code, result.output


def test_a_journal_in_a_missing_folder_is_refused_before_anything_is_written(tmp_path):
    code, text = search("--storage", f"journal:{tmp_path / 'nowhere' / 'x.journal'}", "--out", str(tmp_path / "run"))
    assert code == 2 and "does not exist" in text and text.count("\n") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("content", [b"hello\n", b"SQLite format 3\x00" + bytes(84), b"[1, 2]\n"])
def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "study.journal"
    path.write_bytes(content)
    code, text = search("--storage", f"journal:{path}", "--out", str(tmp_path / "run"))
    assert code == 2 and "is not an Optuna journal" in text and text.count("\n") == 1
    assert path.read_bytes() == content and not (tmp_path / "run").exists()


def test_journal_without_a_path_is_refused(tmp_path):
    code, text = search("--storage", "journal:", "--out", str(tmp_path / "run"))
    assert code == 2 and "names no journal file" in text and not (tmp_path / "run").exists()


def test_a_journal_study_is_created_and_joined_by_a_second_run_folder(tmp_path):
    from nas.search import SearchConfig, prepare
    from nas.recipe import load_recipe, recipe_to_dict
    from nas.space import DEFAULT_SPACE

    url = f"journal:{tmp_path / 'shared.journal'}"

    def config(machine):
        return SearchConfig(target="pixel", budget_ms=60.0, out=str(tmp_path / machine / "pixel60"),
                            space=str(DEFAULT_SPACE), recipe=recipe_to_dict(load_recipe(None)), storage=url)

    first, second = prepare(config("a"), False)[0], prepare(config("b"), False)[0]
    assert first.study_name == second.study_name == STUDY
    studies = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "shared.journal"))).get_all_studies()
    assert [s.study_name for s in studies] == [STUDY]
