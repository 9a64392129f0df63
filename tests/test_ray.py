"""The Ray Tune engine: same run folder and same sampled architectures as the Optuna engine,
resume after a kill, ASHA sparing the baselines, one-line errors for a bad cluster address.

One local Ray instance (2 CPUs) serves the whole module; `run_ray` reuses a process's existing
connection, and the killed-run test joins it from a subprocess with --ray-address."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import ray
from ray import tune
from ray.tune.schedulers import TrialScheduler

from nas.recipe import load_recipe, recipe_to_dict
from nas.search.trials_table import TRIAL_COLUMNS
from nas.search import SearchConfig, prepare, run_search
from nas.search.config import load_config
from nas.search.ray_searcher import SparingASHA
from nas.space import DEFAULT_SPACE
from conftest import TINY_RECIPE

pytestmark = pytest.mark.slow  # a local Ray cluster and killed drivers: minutes on CI

BUDGET_MS = 25.0  # tight enough on pixel that some sampled networks are rejected untrained


@pytest.fixture(scope="module")
def ray_address():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return str(path)


def make_config(out: Path, recipe: str, **overrides) -> SearchConfig:
    """A config as `nas search` builds it from its flags."""
    fields = dict(target="pixel", budget_ms=BUDGET_MS, out=str(out), space=str(DEFAULT_SPACE),
                  recipe=recipe_to_dict(load_recipe(recipe, seed=overrides.get("seed", 0))), trials=3)
    return SearchConfig(**(fields | overrides))


def search(config: SearchConfig, resume: bool = False) -> dict:
    return run_search(prepare(config, resume)[0], progress=False)


@pytest.fixture(scope="module")
def ray_run(ray_address, recipe, tmp_path_factory) -> Path:
    """One Ray search: 3 trained trials (the 2 baselines + 1 sampled), ASHA, TPE, seed 0."""
    out = tmp_path_factory.mktemp("runs") / "ray"
    search(make_config(out, recipe, engine="ray", seed=0, scheduler="asha"))
    return out


def trials(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "trials.csv")


def trained(frame: pd.DataFrame) -> int:
    return int(frame["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum())


def test_ray_run_fills_the_same_run_folder_as_optuna(ray_run):
    for name in ("config.yaml", "study.db", "trials.csv", "pareto.csv", "best.json", "summary.md"):
        assert (ray_run / name).is_file(), name
    frame = trials(ray_run)
    assert list(frame.columns) == TRIAL_COLUMNS
    assert trained(frame) == 3
    assert set(frame[frame["state"] == "COMPLETE"]["device"]) == {"cpu"}  # no GPU in this cluster
    assert "engine ray" in (ray_run / "summary.md").read_text()


def test_ray_run_keeps_tune_state_and_checkpoints_in_the_run_folder(ray_run):
    assert (ray_run / "ray" / "tune-1" / "tuner.pkl").is_file()
    best = json.loads((ray_run / "best.json").read_text())["name"]
    frame = trials(ray_run)
    number = int(frame[frame["arch"].map(lambda a: json.loads(a)["name"]) == best]["number"].iloc[0])
    assert (ray_run / "checkpoints" / f"trial_{number}.pt").is_file()


def test_baselines_are_the_first_trials(ray_run):
    frame = trials(ray_run).set_index("number")
    assert list(frame.loc[[0, 1], "baseline"]) == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert frame.loc[[0, 1], "state"].eq("COMPLETE").all()


def test_same_seed_samples_the_same_architectures_as_optuna(ray_run, recipe, tmp_path):
    out = tmp_path / "optuna"
    search(make_config(out, recipe, engine="optuna", seed=0, pruner="median"))
    ray_frame, optuna_frame = trials(ray_run), trials(out)
    assert len(ray_frame) == len(optuna_frame) > 3  # some over-budget proposals were rejected
    assert list(ray_frame["trial_params"]) == list(optuna_frame["trial_params"])
    assert list(ray_frame["latency_ms"]) == list(optuna_frame["latency_ms"])


def test_rerun_with_more_trials_continues_the_study(ray_run, recipe, tmp_path):
    out = tmp_path / "more"
    shutil.copytree(ray_run, out)
    run_search(replace(load_config(out), out=str(out), trials=4), progress=False)  # a resume of the copy
    before, after = trials(ray_run), trials(out)
    assert trained(after) == 4
    assert after["number"].tolist() == list(range(len(after)))
    assert after.iloc[:len(before)]["trial_params"].tolist() == before["trial_params"].tolist()
    assert (after["baseline"].fillna("") != "").sum() == 2  # baselines are not queued again


def test_a_ray_search_promotes_its_best_trials_through_the_rungs(ray_run, tmp_path):
    out = tmp_path / "rungs"
    shutil.copytree(ray_run, out)
    summary = run_search(replace(load_config(out), out=str(out), rungs=1, eta=2, confirm=1, confirm_seeds=1),
                         progress=False)
    frame = trials(out)
    assert list(frame.columns) == TRIAL_COLUMNS
    done = frame[(frame["state"] == "COMPLETE") & (frame["latency_ms"] <= BUDGET_MS)]
    promoted = set(done[done["rung"] == 1]["number"])
    assert len(promoted) >= (len(done) + 1) // 2
    assert {int(r.split(",")[1]) for r in (out / "rungs.csv").read_text().splitlines()[1:]} == promoted
    assert summary["best"]["rung"] == 1 and summary["best"]["trial"] in promoted
    assert json.loads((out / "confirmation.json").read_text())["rung"]["rung"] == 1
    assert (out / "checkpoints" / f"trial_{summary['best']['trial']}.pt").is_file()


def _finished_rows(out: Path) -> pd.DataFrame:
    return trials(out)[lambda f: f["state"].isin(["COMPLETE", "PRUNED", "REJECTED"])].set_index("number")


def _trained_in_study(out: Path) -> int:
    try:
        with sqlite3.connect(out / "study.db") as db:
            return db.execute("SELECT COUNT(*) FROM trial_user_attributes WHERE key = 'status' "
                              "AND value_json IN ('\"COMPLETE\"', '\"PRUNED\"')").fetchone()[0]
    except sqlite3.Error:
        return 0


def _tune_has_unfinished_trials(out: Path) -> bool:
    exp = out / "ray" / "tune-1"
    if not any(exp.glob("experiment_state-*.json")):
        return False
    try:
        return any(t.status not in ("TERMINATED", "ERROR") for t in tune.ExperimentAnalysis(str(exp)).trials)
    except Exception:
        return False


def test_killed_ray_run_resumes_from_its_tune_state_losing_nothing_finished(ray_address, recipe, tmp_path):
    out = tmp_path / "killed"
    driver = subprocess.Popen(
        [sys.executable, "-m", "nas", "search", "--engine", "ray", "--ray-address", ray_address,
         "--target", "pixel", "--budget", f"{BUDGET_MS}ms", "--recipe", recipe, "--trials", "3",
         "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=os.environ | {"OMP_NUM_THREADS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"})  # Tune snapshots every second
    # Wait on events, not a clock: a finished trial stored and Tune's snapshot of unfinished ones,
    # or the driver ending first (then the test fails), however loaded the machine is.
    while not (_trained_in_study(out) >= 1 and (out / "trials.csv").is_file() and _tune_has_unfinished_trials(out)):
        assert driver.poll() is None, "the run ended before it could be killed"
        time.sleep(0.3)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished = _finished_rows(out)
    assert len(finished) >= 1

    search(make_config(out, recipe, engine="ray", trials=3), resume=True)

    frame = trials(out)
    assert trained(frame) >= 3 and not frame["state"].eq("RUNNING").any()
    after = _finished_rows(out)
    for column in ("state", "trial_params", "accuracy_epochs"):
        assert after.loc[finished.index, column].tolist() == finished[column].tolist()
    assert sorted(p.name for p in (out / "ray").glob("tune-*")) == ["tune-1"]  # restored, not restarted


def test_asha_records_but_never_stops_a_baseline():
    asha = SparingASHA(time_attr="epoch", metric="accuracy", mode="max", max_t=4, grace_period=1,
                       reduction_factor=3, stop_last_trials=False)
    good, baseline, poor = (SimpleNamespace(trial_id=name, config=config) for name, config in
                            (("good", {}), ("baseline", {"baseline": "mobilenet_v3_small"}), ("poor", {})))
    for t in (good, baseline, poor):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, good, {"epoch": 1, "accuracy": 0.5}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, baseline, {"epoch": 1, "accuracy": 0.1}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, poor, {"epoch": 1, "accuracy": 0.1}) == TrialScheduler.STOP


def test_unreachable_ray_address_is_one_line_error(tmp_path, recipe):
    p = subprocess.run([sys.executable, "-m", "nas", "search", "--engine", "ray", "--ray-address", "127.0.0.1:1",
                        "--budget", f"{BUDGET_MS}ms", "--recipe", recipe, "--out", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "127.0.0.1:1" in p.stderr and "ray start --head" in p.stderr


# ---------------------------------------------------------------------------------------------
# A two-node cluster (experiments/engines/two_node_local.sh as a test)


def _our_processes(marker: str) -> list[int]:
    """PIDs of the processes whose command line names `marker` (the cluster's own temp folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def _stop_processes(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL whatever is left (the GCS ignores SIGTERM once its raylets are gone)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for _ in range(100):
            if not any(Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid) for pid in pids):
                return
            time.sleep(0.1)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


@pytest.fixture()
def two_node_cluster():
    """A Ray head and a worker node on this machine, one CPU each, on 127.0.0.1, with a token
    of their own (RAY_AUTH_TOKEN; ~/.ray is not touched). Yields (address, env). Teardown
    stops exactly the processes of this cluster, found by its temp folder: `ray stop` would
    also stop every other Ray on the machine (other tests', other users')."""
    import secrets
    import tempfile

    temp = tempfile.mkdtemp(prefix="nas-ray-")  # short: Ray's socket paths must fit in 107 bytes
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    try:
        for args in (["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"],
                     [f"--address={address}"]):
            p = subprocess.run([ray_cli, "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                "--disable-usage-stats"], env=env, capture_output=True, text=True)
            assert p.returncode == 0, p.stdout + p.stderr
        yield address, env
    finally:
        _stop_processes(_our_processes(temp))
        shutil.rmtree(temp, ignore_errors=True)


def test_a_search_on_a_two_node_cluster_runs_trials_on_both_nodes(two_node_cluster, recipe, tmp_path):
    address, env = two_node_cluster
    out = tmp_path / "two-node"
    p = subprocess.run([sys.executable, "-m", "nas", "search", "--engine", "ray", "--ray-address", address,
                        "--workers", "2", "--trials", "4", "--target", "pixel", "--budget", f"{BUDGET_MS}ms",
                        "--recipe", recipe, "--out", str(out), "--no-progress"],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    frame = trials(out)
    assert trained(frame) >= 4 and not frame["state"].isin(["RUNNING", "INTERRUPTED"]).any()
    for name in ("config.yaml", "study.db", "trials.csv", "pareto.csv", "best.json", "summary.md"):
        assert (out / name).is_file(), name
    assert (out / "ray" / "tune-1").is_dir()
    assert {f"trial_{n}.pt" for n in pd.read_csv(out / "pareto.csv")["number"]} <= \
        {c.name for c in (out / "checkpoints").iterdir()}
    con = sqlite3.connect(out / "study.db")
    try:  # the run folder records the Ray node of each trial
        nodes = dict(con.execute("SELECT t.number, json_extract(a.value_json, '$') FROM trials t "
                                 "JOIN trial_user_attributes a ON a.trial_id = t.trial_id WHERE a.key = 'ray_node'"))
    finally:
        con.close()
    assert set(frame["number"]) <= set(nodes)
    assert len(set(nodes.values())) == 2, nodes
