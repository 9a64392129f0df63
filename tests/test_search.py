import dataclasses
import json
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from nas.arch import load_arch
from nas.cli import main
from nas.errors import NasError
from nas.search.config import parse_budget, parse_duration
from nas.search.trials_table import TRIAL_COLUMNS
from conftest import TINY_RECIPE
from conftest import search_cli as search




def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize("text,ms", [("60ms", 60.0), ("60", 60.0), ("0.06s", 60.0), ("15.8ms", 15.8)])
def test_budget_parses_milliseconds_plain_numbers_and_seconds(text, ms):
    assert parse_budget(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["fast", "-5ms", "0", "60 min"])
def test_bad_budget_is_refused(text):
    with pytest.raises(NasError, match="budget"):
        parse_budget(text)


def test_duration_parses_minutes_and_hours():
    assert (parse_duration("45m"), parse_duration("1h"), parse_duration("90")) == (2700, 3600, 90)


def test_the_cli_defaults_are_the_configs():
    from nas.cli_search import search
    from nas.search.config import SearchConfig

    defaults = {p.name: p.default for p in search.params}
    for name in ("trials", "seed", "sampler", "objective", "pruner", "score", "engine", "scheduler",
                 "trials_per_gpu"):
        assert defaults[name] == getattr(SearchConfig, name), name
    assert defaults["workers"] == "auto"  # the command keeps the machine busy; a SearchConfig says how many


def test_auto_workers_are_the_cores_divided_by_the_recipes_threads(monkeypatch):
    from nas.search import config as search_config

    monkeypatch.setattr(search_config, "available_cores", lambda: 2)
    assert [search_config.auto_workers({"threads": t, "device": "cpu"}) for t in (1, 2, 3)] == [2, 1, 1]
    monkeypatch.setattr(search_config, "available_cores", lambda: 16)
    assert search_config.auto_workers({"threads": 4, "device": "cpu"}) == 4


def test_auto_workers_become_a_count_before_the_config_is_saved(monkeypatch, tmp_path):
    from nas.search import config as search_config

    monkeypatch.setattr(search_config, "available_cores", lambda: 3)
    config = search_config.SearchConfig(target="pixel", budget_ms=60, out=str(tmp_path), space="s.yaml",
                                        recipe={"threads": 1, "device": "cpu"}, workers=search_config.parse_workers("auto"))
    assert search_config.resolve_workers(config).workers == 3
    assert search_config.resolve_workers(dataclasses.replace(config, workers=2)).workers == 2


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5"])
def test_a_bad_worker_count_is_refused_naming_auto(text):
    from nas.search.config import parse_workers

    with pytest.raises(NasError, match="expected auto or an integer >= 1"):
        parse_workers(text)


def test_nas_help_does_not_import_the_engines():
    import subprocess
    import sys

    code = "import sys, nas.cli; nas.cli.main(['search', '--help'], standalone_mode=False); " \
           "print(sorted(m for m in ('optuna', 'ray', 'nas.search.study') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_bad_choice_is_one_line_listing_the_allowed_values(tmp_path):
    p = cli("search", "--budget", "60ms", "--sampler", "cmaes", "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "'tpe', 'nsga2', 'random'" in p.stderr and p.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


def test_bad_budget_exits_2_before_any_work(tmp_path):
    p = cli("search", "--budget", "soon", "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "budget 'soon'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_target_exits_2_listing_known_targets(tmp_path):
    p = cli("search", "--target", "iphone", "--budget", "60ms", "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "pixel" in p.stderr and p.stderr.count("\n") == 1


def test_budget_below_the_fastest_architecture_prints_the_minimum(tmp_path):
    p = cli("search", "--budget", "0.1ms", "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "fastest architecture of the space" in p.stderr
    assert not (tmp_path / "run").exists()


def test_resume_of_a_folder_without_a_search_is_refused(tmp_path):
    p = cli("search", "--budget", "60ms", "--resume", "--out", str(tmp_path / "nothing"))
    assert p.returncode == 2 and "no search to resume" in p.stderr


def test_search_leaves_a_complete_run_folder(tmp_path, tiny_recipe):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["search", "--no-progress", "--workers", "1", "--budget", "40ms", "--trials", "4", "--recipe",
                                       tiny_recipe, "--out", str(out), "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stderr says what the trials are ranked by
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns) == TRIAL_COLUMNS
    # the baselines run first, with the same recipe
    assert list(trials["baseline"].fillna("")[:2]) == ["mobilenet_v3_large", "mobilenet_v3_small"]
    trained = trials[trials["state"].isin(["COMPLETE", "PRUNED", "FAIL"])]
    assert len(trained) == 4
    assert (trained["device"] == "cpu").all() if not torch.cuda.is_available() else trained["device"].notna().all()
    rejected = trials[trials["state"] == "REJECTED"]
    assert (rejected["latency_ms"] > 40).all() and rejected["accuracy"].isna().all()
    assert (trials[trials["state"] == "COMPLETE"]["latency_ms"] <= 40).all()
    best = load_arch(out / "best.json")
    assert summary["best"]["latency_ms"] <= 40 and summary["best"]["name"] == best.name
    # the winner is confirmed: the finalists retrained at 2 more seeds, the best mean named
    confirmation = json.loads((out / "confirmation.json").read_text())
    assert summary["confirmation"]["winner"] == confirmation["winner"] == summary["best"]["trial"]
    assert all(f["seeds"] == 3 for f in confirmation["finalists"])
    assert "## Confirmation" in (out / "summary.md").read_text()
    assert {"config.yaml", "study.db", "pareto.csv", "summary.md"} <= {p.name for p in out.iterdir()}
    assert "mobilenet_v3_small" in (out / "summary.md").read_text()
    pareto = pd.read_csv(out / "pareto.csv")
    assert set(pareto["number"]) <= set(trials[trials["state"] == "COMPLETE"]["number"])
    assert {f"trial_{n}.pt" for n in pareto["number"]} <= {p.name for p in (out / "checkpoints").iterdir()}
    from nas.checkpoint import load_checkpoint
    kept = load_checkpoint(out / "checkpoints" / f"trial_{int(pareto['number'].iloc[0])}.pt")
    assert kept.normalisation is not None and len(kept.normalisation["mean"]) == 3


def test_pareto_objective_with_nsga2_runs(tmp_path, tiny_recipe):
    out = tmp_path / "run"
    code, text = search("--budget", "60ms", "--trials", "3", "--recipe", tiny_recipe, "--out", str(out),
                        "--objective", "pareto", "--sampler", "nsga2")
    assert code == 0, text
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{out}/study.db")
    assert len(study.directions) == 2


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on(tmp_path):
    recipe = tmp_path / "hot.yaml"
    recipe.write_text(TINY_RECIPE + "lr: 1.0e+12\nwarmup: 0\n")
    out = tmp_path / "run"
    code, text = search("--budget", "60ms", "--trials", "2", "--recipe", str(recipe), "--out", str(out))
    assert code == 0, text
    trials = pd.read_csv(out / "trials.csv")
    assert (trials["state"] == "FAIL").sum() == 2


def _states(out):
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{out}/study.db")
    return [(t.number, t.state.name, t.user_attrs.get("status"), t.params) for t in study.trials]


@pytest.mark.slow  # subprocesses and a kill: minutes on CI
def test_a_killed_search_resumes_without_losing_or_repeating_a_trial(tmp_path):
    recipe = tmp_path / "slow.yaml"
    recipe.write_text(TINY_RECIPE.replace("epochs: 2", "epochs: 5").replace("256", "768"))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "nas", "search", "--budget", "60ms", "--trials", "4", "--recipe",
            str(recipe), "--out", str(out), "--no-progress", "--pruner", "none", "--workers", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill once a trial finished and the next one is training
            time.sleep(0.5)
            if (out / "trials.csv").exists():  # written once the study exists
                states = _states(out)
                done = [s for s in states if s[1] == "COMPLETE"]
                if done and any(s[2] == "RUNNING" for s in states):
                    break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = _states(out)
    finished = [s for s in before if s[1] == "COMPLETE"]
    interrupted = [s for s in before if s[1] == "RUNNING"]
    assert finished and interrupted
    p = cli("search", "--budget", "60ms", "--trials", "4", "--out", str(out), "--no-progress", "--workers", "1")
    assert p.returncode == 0, p.stderr
    after = _states(out)
    for s in finished:  # nothing finished is lost or changed
        assert s in after
    trials = pd.read_csv(out / "trials.csv")
    assert (trials["state"] == "INTERRUPTED").sum() == len(interrupted)
    assert trials["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum() == 4
    # the interrupted trial ran again (the baselines carry no params, so compare by baseline name)
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{out}/study.db")
    retried = [t for t in study.trials if "retry_of" in t.user_attrs]
    assert [t.user_attrs["retry_of"] for t in retried] == [s[0] for s in interrupted]
    assert all(t.state.name == "COMPLETE" for t in retried)


@pytest.mark.slow  # subprocesses and a kill: minutes on CI
def test_two_workers_share_one_storage(tmp_path, tiny_recipe):
    out = tmp_path / "run"
    p = cli("search", "--budget", "60ms", "--trials", "4", "--recipe", tiny_recipe, "--out", str(out),
            "--workers", "2", "--no-progress")
    assert p.returncode == 0, p.stderr
    trials = pd.read_csv(out / "trials.csv")
    assert trials["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum() >= 4
    assert trials["number"].is_unique


def test_results_never_remove_the_checkpoint_of_a_trial_still_running(tmp_path):
    """Two workers: one trial's results are written while another has saved its checkpoint but is
    not yet recorded as complete. Its checkpoint stays; a finished trial off the front goes."""
    from nas.arch import dumps_arch
    from nas.baselines import load_baseline
    from nas.recipe import load_recipe, recipe_to_dict
    from nas.search.config import SearchConfig
    from nas.search.results import TrialRecord, write_results

    arch = load_baseline("mobilenet_v3_small")

    def record(number, status, accuracy, latency):
        attrs = {"status": status, "arch": dumps_arch(arch), "block_string": "", "params": 1, "madds": 1,
                 "latency_ms": latency, "accuracy_epochs": [accuracy] if accuracy is not None else []}
        return TrialRecord(number, status, attrs, {})

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    for n in (0, 1, 2):
        (out / "checkpoints" / f"trial_{n}.pt").write_bytes(b"x")
    config = SearchConfig(target="pixel", budget_ms=60.0, out=str(out), space="unused",
                          recipe=recipe_to_dict(load_recipe()), baselines=(), confirm=0)
    # 0 dominates 1 (more accurate and faster); 2 is running, its checkpoint already on disk
    records = [record(0, "COMPLETE", 0.5, 10.0), record(1, "COMPLETE", 0.4, 20.0), record(2, "RUNNING", None, 15.0)]
    write_results(records, dataclasses.replace(config, confirm=2).run_settings)
    # a finalist confirmation may still name (the 2 best in budget) keeps its checkpoint, off the front or not
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["trial_0.pt", "trial_1.pt", "trial_2.pt"]
    write_results(records, config.run_settings)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["trial_0.pt", "trial_2.pt"]


def _study_with(trials: list[dict]):
    study = optuna.create_study(direction="maximize")
    for attrs in trials:
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=0.0,
                                                  user_attrs={"status": "COMPLETE", **attrs}))
    return study


def test_progress_names_and_shows_the_score_the_search_ranks_by(capsys):
    from nas.search.progress import SearchProgress, status_counts

    study = _study_with([{"latency_ms": 50.0, "accuracy_epochs": [0.30, 0.348], "imagenet_estimate": 75.6},
                         {"latency_ms": 40.0, "accuracy_epochs": [0.36, 0.40], "imagenet_estimate": 74.1}])
    progress = SearchProgress(trials=10, budget_ms=60.0, score="imagenet-estimate", every=1)
    progress.close(study)
    err = capsys.readouterr().err
    assert "best ImageNet top-1 estimate 75.6%" in err and "0.348" not in err and "0.400" not in err

    proxy = _study_with([{"latency_ms": 50.0, "accuracy_epochs": [0.30, 0.348]}])
    SearchProgress(trials=10, budget_ms=60.0, score="proxy", every=1).update(proxy, status_counts(proxy))
    assert "best proxy accuracy 0.348" in capsys.readouterr().err


def test_progress_to_a_file_is_a_line_every_few_trials_without_carriage_returns(capsys):
    from nas.search.progress import SearchProgress, status_counts

    progress = SearchProgress(trials=6, budget_ms=60.0, score="proxy", every=2)
    study = _study_with([])
    for n in range(6):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=0.0, user_attrs={
            "status": "COMPLETE", "latency_ms": 50.0, "accuracy_epochs": [0.1 * n]}))
        progress.update(study, status_counts(study))
    progress.close(study)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    assert [line.split()[1] for line in lines] == ["1/6", "3/6", "5/6", "6/6"]
    assert lines[-1].startswith("search: 6/6 trials trained, done 6, pruned 0, failed 0, rejected 0, best proxy accuracy 0.500")


def test_no_more_workers_start_than_trials_are_left(tmp_path, tiny_recipe):
    """`--trials 1` with two workers trains one trial: each worker process would start one."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["search", "--no-progress", "--workers", "2", "--budget", "60ms", "--trials", "1",
                                       "--confirm", "0", "--recipe", tiny_recipe, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out / "trials.csv")["state"]) == ["COMPLETE"]


def _summary(ranked_by: str, resolution: int, resolution_aware: bool = True) -> dict:
    best = {"trial": 3, "name": "t3", "accuracy": 0.36, "imagenet_estimate": None, "latency_ms": 46.5,
            "params": 2_968_320, "madds": 150_000_000, "resolution": resolution, "block_string": "ir_r1_k3_s1_e1_c16"}
    return {"out": "runs/x", "target": "pixel", "budget_ms": 60.0, "objective": "constraint", "sampler": "tpe",
            "engine": "optuna", "ranked_by": ranked_by, "trials": 1, "counts": {"COMPLETE": 1},
            "resolution_aware": resolution_aware, "best": best, "baselines": {}}


def test_the_summary_cautions_against_a_low_rho_winner_ranked_by_proxy_accuracy():
    from nas.search.results import summary_markdown

    assert "Caution: the winner is a rho-192 network" in summary_markdown(_summary("accuracy", 192))
    assert "Caution" not in summary_markdown(_summary("accuracy", 224))
    assert "Caution" not in summary_markdown(_summary("accuracy", 192, resolution_aware=False))
    assert "Caution" not in summary_markdown(_summary("imagenet_estimate", 192) | {
        "best": _summary("accuracy", 192)["best"] | {"imagenet_estimate": 75.0}})


# ---------------------------------------------------------------- which rho a search compares networks at

@pytest.mark.parametrize("text,value", [("auto", "auto"), ("all", None), ("224", (224,)), ("224,160", (160, 224)),
                                        (" 192, 224 ", (192, 224))])
def test_resolution_parses_auto_all_and_rho_lists(text, value):
    from nas.search.config import parse_resolution

    assert parse_resolution(text) == value


@pytest.mark.parametrize("text", ["", "high", "224,", "-224", "0"])
def test_a_bad_resolution_is_refused_naming_what_is_allowed(text):
    from nas.search.config import parse_resolution

    with pytest.raises(NasError, match="expected auto, all, or rho values"):
        parse_resolution(text)


def _config(tmp_path, **kw):
    from nas.search.config import SearchConfig

    return SearchConfig(target="pixel", budget_ms=60.0, out=str(tmp_path / "run"),
                        space="search_spaces/mobilenet_v3.yaml", recipe={}, **kw)


@pytest.mark.parametrize("score,resolution", [("proxy", (224,)), ("imagenet-estimate", None)])
def test_auto_resolution_is_the_largest_rho_when_ranked_by_proxy_accuracy_and_every_rho_by_the_estimate(
        tmp_path, score, resolution):
    from nas.search.policy import resolve_resolution

    config = resolve_resolution(_config(tmp_path, score=score))
    assert config.resolution == resolution
    assert config.search_space().resolution == (resolution or (128, 160, 192, 224))
    # what the user names is kept
    assert resolve_resolution(_config(tmp_path, score=score, resolution=(160, 192))).resolution == (160, 192)
    assert resolve_resolution(_config(tmp_path, score=score, resolution=None)).resolution is None


def test_a_resolution_the_space_does_not_have_exits_2_naming_its_choices(tmp_path):
    p = cli("search", "--budget", "60ms", "--resolution", "200", "--out", str(tmp_path / "run"))
    assert p.returncode == 2 and "--resolution 200 is not a rho of the space" in p.stderr
    assert "128, 160, 192, 224" in p.stderr and p.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_resolution_is_stored_and_a_run_folder_without_one_searched_every_rho(tmp_path):
    from nas.search.config import load_config, save_config

    (tmp_path / "run").mkdir()
    save_config(_config(tmp_path, score="proxy", resolution=(224,)))
    assert load_config(tmp_path / "run").resolution == (224,)
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert "resolution:\n- 224\n" in text
    (tmp_path / "run" / "config.yaml").write_text(text.replace("resolution:\n- 224\n", ""))
    assert load_config(tmp_path / "run").resolution is None  # saved before --resolution: every rho


def test_a_rerun_with_another_resolution_is_refused_naming_both(tmp_path):
    from nas.search.config import differing_settings, search_identity

    saved = search_identity(_config(tmp_path, score="proxy", resolution=(224,)), rerun=True)
    new = search_identity(_config(tmp_path, score="proxy", resolution=None), rerun=True)
    assert differing_settings(saved, new) == ["--resolution 224 (this command: all)"]


def test_a_search_samples_only_the_resolutions_it_was_given(tmp_path, tiny_recipe):
    out = tmp_path / "run"
    code, text = search("--budget", "40ms", "--trials", "4", "--recipe", tiny_recipe, "--out", str(out),
                        "--resolution", "160", "--confirm", "0", "--seed", "1")
    assert code == 0, text
    trials = pd.read_csv(out / "trials.csv")
    sampled = trials[trials["baseline"].isna()]
    assert len(sampled) >= 2
    assert {json.loads(a)["resolution"] for a in sampled["arch"]} == {160}
    from nas.search.config import load_config
    assert load_config(out).resolution == (160,)
    assert "Searched at rho 160 only" in (out / "summary.md").read_text()


def test_the_summary_names_the_rho_a_search_was_narrowed_to():
    from nas.search.results import summary_markdown

    assert "Searched at rho 224 only" in summary_markdown(_summary("accuracy", 224) | {"resolutions": [224]})
    assert "Searched at rho" not in summary_markdown(_summary("accuracy", 224) | {"resolutions": None})


def test_a_proxy_ranked_winner_without_rungs_points_at_the_rungs_with_the_command_that_adds_them():
    from nas.search.results import summary_markdown

    text = summary_markdown(_summary("accuracy", 224))
    assert "Ranked by proxy accuracy without rungs" in text
    assert "`nas search --budget 60ms --out runs/x --rungs 2 --confirm-seeds 1 --resume`" in text
    rung_winner = _summary("accuracy", 224)["best"] | {"rung": 2, "rung_accuracy": 0.6, "rung_score": 0.6}
    assert "without rungs" not in summary_markdown(_summary("accuracy", 224) | {"best": rung_winner})
    assert "without rungs" not in summary_markdown(_summary("imagenet_estimate", 224) | {
        "best": _summary("accuracy", 224)["best"] | {"imagenet_estimate": 75.0}})
