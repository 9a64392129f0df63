"""Promises about runs under hostile input and faults (issue 14, classes 2 and 4's --workers):
no search is silently mixed with another, restarted, or fed damaged files; every refusal is one
line with exit code 2 and changes nothing; an I/O error loses no result and leaves nothing
half-written.

Most cases refuse before any training, so they run on a run folder that `prepare` made (a
config.yaml and an empty study). Cases about finished trials copy one real tiny search
(`finished_run`: the tiny recipe, one trained trial with its checkpoint).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner

import nas.search
from nas.cli import main
from nas.errors import NasError
from nas.files import write_atomic, write_text_atomic
from nas.recipe import load_recipe, recipe_to_dict
from nas.search.rundir import open_run
from nas.search import SearchConfig, prepare
from nas.search.study import STUDY_ATTR
from nas.space import DEFAULT_SPACE
from conftest import TINY_RECIPE

BUDGET = "60ms"


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return str(path)


def invoke(*args: str):
    """Run `nas ARGS` in-process; returns (exit code, stdout, stderr). A search runs one worker
    unless ARGS say otherwise (the default, auto, starts one per core)."""
    args = (args[0], "--workers", "1", *args[1:]) if args[:1] == ("search",) else args
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def search_cli(out: Path, recipe: str, *extra: str):
    return invoke("search", "--budget", BUDGET, "--recipe", recipe, "--out", str(out), "--trials", "1",
                  "--no-progress", *extra)


def one_line_refusal(code: int, stderr: str, *words: str) -> None:
    assert code == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for w in words:
        assert w in stderr, stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def make_config(out: Path, recipe: str, **overrides) -> SearchConfig:
    fields = dict(target="pixel", budget_ms=60.0, out=str(out), space=str(DEFAULT_SPACE),
                  recipe=recipe_to_dict(load_recipe(recipe, seed=overrides.get("seed", 0))), trials=1)
    return SearchConfig(**(fields | overrides))


@pytest.fixture()
def prepared(tmp_path, tiny) -> Path:
    """A run folder as a fresh `nas search` leaves it before its first trial."""
    out = tmp_path / "run"
    prepare(make_config(out, tiny), resume=False)
    return out


@pytest.fixture()
def fake_search(monkeypatch) -> list[SearchConfig]:
    """Replace the search itself (not its checks) with a stub recording the config it got."""
    ran: list[SearchConfig] = []

    def run_search(config, progress=True):
        ran.append(config)
        return {"stub": True}

    monkeypatch.setattr(nas.search, "run_search", run_search)
    return ran


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny) -> Path:
    """A real tiny search: one trained trial (a baseline) with its checkpoint."""
    out = tmp_path_factory.mktemp("finished") / "run"
    code, stdout, stderr = search_cli(out, tiny)
    assert code == 0, stderr
    return out


@pytest.fixture()
def run_copy(finished_run, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    return out


def study_of(out: Path, name: str = "nas") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out}/study.db")


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---------------------------------------------------------------- shared storage never mixes searches

def test_searches_into_different_folders_on_one_storage_get_different_studies(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    a, _ = prepare(make_config(tmp_path / "a", tiny, storage=storage), resume=False)
    b, _ = prepare(make_config(tmp_path / "b", tiny, storage=storage, budget_ms=50.0), resume=False)
    assert a.study_name != b.study_name
    assert set(optuna.get_all_study_names(storage)) == {a.study_name, b.study_name}


def test_the_study_name_is_saved_so_a_rerun_finds_its_study(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    config, _ = prepare(make_config(tmp_path / "a", tiny, storage=storage), resume=False)
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["study"] == config.study_name == "nas-a"
    again, resumed = prepare(make_config(tmp_path / "a", tiny, storage=storage), resume=False)
    assert resumed and again.study_name == "nas-a"


def test_the_study_records_the_settings_of_its_search(prepared):
    stored = study_of(prepared).user_attrs[STUDY_ATTR]
    assert stored["budget_ms"] == 60.0 and stored["sampler"] == "tpe" and stored["target"] == "pixel"


def test_joining_a_study_of_other_settings_is_refused(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    code, _, err = search_cli(tmp_path / "a", tiny, "--storage", storage, "--study", "shared")
    assert code == 0, err
    code, _, err = search_cli(tmp_path / "b", tiny, "--storage", storage, "--study", "shared", "--budget", "50ms")
    one_line_refusal(code, err, "'shared'", "belongs to another search", "--budget 60ms (this command: 50ms)",
                     "--study NAME")
    assert not (tmp_path / "b" / "config.yaml").exists()
    assert len(study_of_storage(storage, "shared").trials) == 2  # a's trials only: nothing of b's


def study_of_storage(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def test_searches_with_the_same_settings_may_share_a_study(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    prepare(make_config(tmp_path / "machine1" / "run", tiny, storage=storage, study="s"), resume=False)
    config, resumed = prepare(make_config(tmp_path / "machine2" / "run", tiny, storage=storage, study="s"),
                              resume=False)
    assert config.study_name == "s" and not resumed


def test_a_study_of_unknown_settings_with_trials_is_not_joined(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    foreign = optuna.create_study(storage=storage, study_name="theirs")
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(NasError, match="did not record its settings"):
        prepare(make_config(tmp_path / "run", tiny, storage=storage, study="theirs"), resume=False)
    assert not (tmp_path / "run" / "config.yaml").exists()


# ---------------------------------------------------------------- rerunning into a run folder

@pytest.mark.parametrize("flag,value,named", [
    ("--target", "local-cpu", "--target pixel (this command: local-cpu)"),
    ("--budget", "45ms", "--budget 60ms (this command: 45ms)"),
    ("--sampler", "random", "--sampler tpe (this command: random)"),
    ("--objective", "mnas", "--objective constrained (this command: mnas)"),
    ("--pruner", "none", "--pruner median (this command: none)"),
    ("--seed", "7", "--seed 0 (this command: 7)"),
    ("--epochs", "3", "recipe.epochs 2 (this command: 3)"),
    ("--engine", "ray", "--engine optuna (this command: ray)"),
])
def test_a_rerun_with_another_setting_is_refused_naming_it(prepared, tiny, fake_search, flag, value, named):
    before = snapshot(prepared)
    # local-cpu's table is of another machine on most machines: that refusal is not the one tested here
    foreign = ["--allow-foreign-table"] if value == "local-cpu" else []
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", tiny, "--out", str(prepared), flag, value, *foreign)
    one_line_refusal(code, err, named, "--resume", "new --out")
    assert snapshot(prepared) == before and not fake_search


def test_a_rerun_with_another_recipe_file_is_refused_naming_the_knobs(prepared, tmp_path, fake_search):
    other = tmp_path / "other.yaml"
    other.write_text(TINY_RECIPE.replace("train_subset: 256", "train_subset: 512"))
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", str(other), "--out", str(prepared))
    one_line_refusal(code, err, "recipe.train_subset 256 (this command: 512)")


def test_a_rerun_with_another_space_file_is_refused(prepared, tiny, tmp_path, fake_search):
    space = tmp_path / "space.yaml"
    space.write_text(Path(DEFAULT_SPACE).read_text().replace("resolution: [128, 160, 192, 224]",
                                                              "resolution: [128, 160]"))
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", tiny, "--space", str(space), "--out",
                          str(prepared))
    one_line_refusal(code, err, "--space")


def test_rerunning_the_same_command_continues(prepared, tiny, fake_search):
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", tiny, "--out", str(prepared), "--trials", "3",
                          "--json")
    assert code == 0, err
    assert "resuming the search" in err and fake_search[0].trials == 3


def test_a_shorter_command_continues_with_the_saved_settings(tmp_path, tiny, fake_search):
    out = tmp_path / "run"
    prepare(make_config(out, tiny, sampler="random", objective="mnas"), resume=False)
    code, _, err = invoke("search", "--budget", BUDGET, "--out", str(out), "--json")
    assert code == 0, err
    assert (fake_search[0].sampler, fake_search[0].objective) == ("random", "mnas")
    assert fake_search[0].recipe["train_subset"] == 256


def test_resume_keeps_the_saved_settings_and_says_which_it_ignores(prepared, tiny, fake_search):
    code, _, err = invoke("search", "--budget", "45ms", "--recipe", tiny, "--out", str(prepared), "--sampler",
                          "random", "--resume", "--json")
    assert code == 0, err
    assert fake_search[0].budget_ms == 60.0 and fake_search[0].sampler == "tpe"
    assert "--budget 60ms (this command: 45ms)" in err and "--sampler tpe (this command: random)" in err


def test_a_run_from_before_a_recipe_knob_existed_resumes_with_the_knob_as_it_ran(prepared, tiny, fake_search):
    from nas.recipe import ADDED_KNOBS, Recipe
    from nas.search.config import load_config

    newest = "zero_init_residual"  # added after runs were first recorded; they ran without it
    assert getattr(Recipe(), newest) != ADDED_KNOBS[newest]
    cfg = yaml.safe_load((prepared / "config.yaml").read_text())
    del cfg["recipe"][newest]
    (prepared / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    study = study_of(prepared)
    stored = study.user_attrs[STUDY_ATTR]
    stored["recipe"].pop(newest, None)
    study.set_user_attr(STUDY_ATTR, stored)
    assert load_config(prepared).recipe[newest] == ADDED_KNOBS[newest]
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", tiny, "--out", str(prepared), "--json")
    assert code == 2 and f"recipe.{newest} False (this command: True)" in err  # today's recipe differs
    code, _, err = invoke("search", "--budget", BUDGET, "--out", str(prepared), "--resume", "--json")
    assert code == 0, err


def test_a_run_of_an_older_nas_without_recorded_settings_continues(tmp_path, tiny, fake_search):
    from nas.search.config import save_config

    out = tmp_path / "old"
    out.mkdir()
    old = optuna.create_study(storage=f"sqlite:///{out}/study.db", study_name="nas", direction="maximize")
    old.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    save_config(make_config(out, tiny))
    code, _, err = invoke("search", "--budget", BUDGET, "--recipe", tiny, "--out", str(out), "--json")
    assert code == 0, err
    assert study_of(out).user_attrs[STUDY_ATTR]["budget_ms"] == 60.0  # recorded from now on


# ---------------------------------------------------------------- --storage is checked before it is saved

@pytest.mark.parametrize("url", ["nosuchdriver://host/db", "not a url", "sqlite://", "sqlite:////no/such/folder/x.db",
                                 "postgresql://nobody@127.0.0.1:1/db"])
def test_a_broken_storage_url_is_refused_before_anything_is_written(tmp_path, tiny, url):
    out = tmp_path / "run"
    code, _, err = search_cli(out, tiny, "--storage", url)
    one_line_refusal(code, err, "--storage")
    assert not out.exists()


def test_a_storage_password_is_not_printed(tmp_path, tiny):
    code, _, err = search_cli(tmp_path / "run", tiny, "--storage", "postgresql://me:s3cret@127.0.0.1:1/db")
    assert code == 2 and "s3cret" not in err


# ---------------------------------------------------------------- damaged files are refused, not replaced

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    path.write_bytes(os.urandom(max(1, path.stat().st_size)))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_sqlite(path: Path) -> None:
    import sqlite3

    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")


@pytest.mark.parametrize("damage", [_empty, _truncate, _garble, _foreign_sqlite], ids=lambda f: f.__name__[1:])
def test_a_damaged_study_db_is_refused_and_nothing_is_overwritten(run_copy, tiny, damage):
    damage(run_copy / "study.db")
    before = snapshot(run_copy)
    code, _, err = search_cli(run_copy, tiny)
    one_line_refusal(code, err, "study.db", "new --out")
    assert snapshot(run_copy) == before


def test_an_empty_study_db_in_a_folder_without_a_search_is_a_fresh_start(tmp_path, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / "study.db").touch()  # e.g. a reader that opened it before the search created it
    config, resumed = prepare(make_config(out, tiny), resume=False)
    assert not resumed and STUDY_ATTR in study_of(out).user_attrs


def _yaml_list(path: Path) -> None:
    path.write_text("- target\n- pixel\n")


def _wrong_type(path: Path) -> None:
    path.write_text(path.read_text().replace("budget_ms: 60.0", "budget_ms: sixty"))


def _missing_setting(path: Path) -> None:
    path.write_text("\n".join(l for l in path.read_text().splitlines() if not l.startswith("target:")) + "\n")


def _duplicate_key(path: Path) -> None:
    path.write_text(path.read_text() + "sampler: random\n")


@pytest.mark.parametrize("damage", [_empty, _truncate, _garble, _yaml_list, _wrong_type, _missing_setting,
                                    _duplicate_key],
                         ids=lambda f: f.__name__[1:])
def test_a_damaged_config_yaml_is_refused_and_nothing_is_overwritten(run_copy, tiny, damage):
    damage(run_copy / "config.yaml")
    before = snapshot(run_copy)
    code, _, err = search_cli(run_copy, tiny)
    one_line_refusal(code, err, "config.yaml", "new --out")
    assert snapshot(run_copy) == before


def test_a_study_db_of_another_search_is_refused(run_copy, tmp_path, tiny):
    other = tmp_path / "other"
    prepare(make_config(other, tiny, budget_ms=45.0), resume=False)
    shutil.copy(other / "study.db", run_copy / "study.db")
    before = snapshot(run_copy)
    code, _, err = search_cli(run_copy, tiny)
    one_line_refusal(code, err, "belongs to another search", "--budget 45ms (this command: 60ms)")
    assert snapshot(run_copy) == before


def test_a_study_db_lacking_the_listed_trials_is_refused(run_copy, tmp_path, tiny):
    fresh = tmp_path / "fresh"
    prepare(make_config(fresh, tiny), resume=False)  # same settings, no trials
    shutil.copy(fresh / "study.db", run_copy / "study.db")
    before = snapshot(run_copy)
    code, _, err = search_cli(run_copy, tiny)
    one_line_refusal(code, err, "lacks trials", "trials.csv")
    assert snapshot(run_copy) == before


def test_a_missing_study_db_with_listed_trials_is_refused(run_copy, tiny):
    (run_copy / "study.db").unlink()
    before = snapshot(run_copy)
    code, _, err = search_cli(run_copy, tiny)
    one_line_refusal(code, err, "is missing", "trials.csv lists")
    assert snapshot(run_copy) == before


# ---------------------------------------------------------------- report and export read the study

def _edit_csv(out: Path, **changes) -> None:
    frame = pd.read_csv(out / "trials.csv")
    for column, value in changes.items():
        frame.loc[0, column] = value
    frame.to_csv(out / "trials.csv", index=False)


def test_report_takes_states_from_the_study_and_names_an_edited_trials_csv(run_copy):
    true_states = open_run(run_copy).trials["state"].value_counts().to_dict()
    _edit_csv(run_copy, state="BOGUS")
    code, out, err = invoke("report", str(run_copy), "--json", "--no-progress")
    assert code == 0, err
    data = json.loads(out)
    assert data["headline"]["states"] == true_states and "BOGUS" not in data["headline"]["states"]
    assert any("trials.csv disagrees with the study" in n and "'BOGUS'" in n for n in data["notes"])


@pytest.mark.parametrize("damage", [_empty, _truncate, lambda p: p.unlink()], ids=["empty", "truncated", "deleted"])
def test_report_rebuilds_a_damaged_trials_csv_from_the_study(run_copy, damage):
    want = open_run(run_copy)
    damage(run_copy / "trials.csv")
    run = open_run(run_copy)
    assert run.trials["number"].tolist() == want.trials["number"].tolist()
    assert run.best().number == want.best().number
    assert any("trials.csv" in n for n in run.notes)


def test_export_picks_the_winner_of_the_study_not_of_an_edited_trials_csv(run_copy, tmp_path):
    winner = open_run(run_copy).best().number
    _edit_csv(run_copy, state="FAIL")
    code, out, err = invoke("export", str(run_copy), "--format", "json", "--out", str(tmp_path / "w.json"), "--json",
                            "--no-progress")
    assert code == 0, err
    data = json.loads(out)
    assert data["trial"] == winner and any("trials.csv disagrees" in n for n in data["notes"])


def test_a_bogus_state_in_a_run_without_a_study_is_refused(tmp_path):
    from test_report import make_run_folder

    facts = make_run_folder(tmp_path)
    _edit_csv(facts["path"], state="BOGUS")
    code, _, err = invoke("report", str(facts["path"]), "--no-progress")
    one_line_refusal(code, err, "state 'BOGUS'", "COMPLETE")


def test_report_refuses_a_damaged_study_db(run_copy):
    _garble(run_copy / "study.db")
    code, _, err = invoke("report", str(run_copy), "--no-progress")
    one_line_refusal(code, err, "study.db")


def test_report_refuses_a_study_of_another_search(run_copy):
    cfg = yaml.safe_load((run_copy / "config.yaml").read_text())
    (run_copy / "config.yaml").write_text(yaml.safe_dump(cfg | {"budget_ms": 45.0}))
    code, _, err = invoke("report", str(run_copy), "--no-progress")
    one_line_refusal(code, err, "belongs to another search")


# ---------------------------------------------------------------- a checkpoint must be its trial's

def _swap_checkpoint(out: Path, number: int, **changes) -> None:
    path = out / "checkpoints" / f"trial_{number}.pt"
    data = torch.load(path, weights_only=True)
    torch.save(data | changes, path)


def test_a_checkpoint_of_another_trial_number_is_refused(run_copy, tmp_path):
    winner = open_run(run_copy).best().number
    _swap_checkpoint(run_copy, winner, trial=winner + 5)
    code, _, err = invoke("export", str(run_copy), "--format", "pytorch", "--out", str(tmp_path / "w.pt"),
                          "--no-progress")
    one_line_refusal(code, err, f"weights of trial {winner + 5}, not trial {winner}")
    assert not (tmp_path / "w.pt").exists()


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    from test_report import make_run_folder

    facts = make_run_folder(tmp_path)  # checkpoints without a trial number, as older runs wrote them
    ckpts = facts["path"] / "checkpoints"
    shutil.copy(ckpts / f"trial_{facts['winner']}.pt", ckpts / f"trial_{facts['no_checkpoint']}.pt")
    code, _, err = invoke("export", str(facts["path"]), "--trial", str(facts["no_checkpoint"]), "--format", "onnx",
                          "--out", str(tmp_path / "t.onnx"), "--no-progress")
    one_line_refusal(code, err, "another architecture", f"trial {facts['no_checkpoint']}'s")


def test_the_search_records_the_trial_number_in_its_checkpoints(finished_run):
    for path in (finished_run / "checkpoints").glob("trial_*.pt"):
        assert torch.load(path, weights_only=True)["trial"] == int(path.stem.split("_")[1])


# ---------------------------------------------------------------- export does not overwrite what it was not asked to

def test_a_pytorch_export_does_not_replace_another_json_beside_it(tmp_path):
    sidecar = tmp_path / "m.json"
    sidecar.write_text('{"mine": true}\n')
    code, _, err = invoke("export", "mobilenet_v3_small", "--format", "pytorch", "--out", str(tmp_path / "m.pt"),
                          "--no-progress")
    one_line_refusal(code, err, str(sidecar), "--force")
    assert sidecar.read_text() == '{"mine": true}\n' and not (tmp_path / "m.pt").exists()


def test_force_lets_a_pytorch_export_replace_the_json_beside_it(tmp_path):
    (tmp_path / "m.json").write_text('{"mine": true}\n')
    code, _, err = invoke("export", "mobilenet_v3_small", "--format", "pytorch", "--out", str(tmp_path / "m.pt"),
                          "--force", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["name"] == "mobilenet_v3_small"


def test_re_exporting_the_same_network_needs_no_force(tmp_path):
    for _ in range(2):
        code, _, err = invoke("export", "mobilenet_v3_small", "--format", "pytorch", "--out",
                              str(tmp_path / "m.pt"), "--no-progress")
        assert code == 0, err


# ---------------------------------------------------------------- I/O errors: one line, nothing half-written, no result lost

def _partial_then_full(self, data):
    with open(self, "wb") as f:
        f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_atomic_on_a_full_disk_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "trials.csv"
    path.write_text("old\n")
    monkeypatch.setattr(Path, "write_bytes", _partial_then_full)
    with pytest.raises(NasError, match="cannot write .*trials.csv: No space left on device"):
        write_atomic(path, lambda tmp: tmp.write_bytes(b"new contents\n"))
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["trials.csv"]


def test_write_atomic_into_a_path_through_a_file_is_one_error(tmp_path):
    (tmp_path / "checkpoints").write_text("not a folder")
    with pytest.raises(NasError, match="cannot write"):
        write_text_atomic(tmp_path / "checkpoints" / "trial_0.pt", "x")


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_trial_complete(tmp_path, tiny, monkeypatch, capsys):
    from nas.baselines import load_baseline
    from nas.builder import build
    from nas.search.trial import TrialOutcome, keep_checkpoint

    config = make_config(tmp_path / "run", tiny)
    arch = load_baseline("mobilenet_v3_small")
    outcome = TrialOutcome("COMPLETE", arch, 10.0, 1, 1, accuracy=0.5, epochs=[0.5], model=build(arch))
    monkeypatch.setattr(Path, "write_bytes", _partial_then_full)
    kept = keep_checkpoint(outcome, config.trial_settings, 3)
    assert kept.status == "COMPLETE" and kept.accuracy == 0.5
    assert "No space left on device" in kept.checkpoint_error and "checkpoint_error" in kept.attrs()
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []  # no partial file left
    assert capsys.readouterr().err.count("\n") == 1


def test_a_full_disk_while_writing_the_results_is_one_line_and_keeps_the_old_files(run_copy, monkeypatch):
    from nas.search.config import load_config
    from nas.search.results import optuna_records, write_results

    before = snapshot(run_copy)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **kw: disk_full())
    with pytest.raises(NasError, match="No space left on device"):
        write_results(optuna_records(study_of(run_copy)), replace(load_config(run_copy), out=str(run_copy)).run_settings)
    assert snapshot(run_copy) == before


def test_a_checkpoints_path_that_is_a_file_keeps_the_trained_trial(tmp_path, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("in the way")
    code, _, err = search_cli(out, tiny)
    assert code == 0, err
    assert "warning: trial 0 is kept without its checkpoint" in err
    trial = study_of(out).trials[0]
    assert trial.state.name == "COMPLETE" and "checkpoint_error" in trial.user_attrs
    assert (out / "checkpoints").read_text() == "in the way"


def test_an_export_on_a_full_disk_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "write_bytes", _partial_then_full)
    code, _, err = invoke("export", "mobilenet_v3_small", "--format", "pytorch", "--out", str(tmp_path / "m.pt"),
                          "--no-progress")
    one_line_refusal(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt,writer", [("onnx", "torch.onnx.export"), ("torchscript", "torch.jit.save")])
def test_an_onnx_or_torchscript_export_that_fails_mid_write_leaves_nothing(tmp_path, monkeypatch, fmt, writer):
    module, name = writer.rsplit(".", 1)

    def half_then_full(obj, f, *args, **kwargs):
        Path(f if isinstance(f, str) else args[0]).write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import importlib
    target = importlib.import_module(module)
    monkeypatch.setattr(target, name, (lambda model, args, f, **kw: half_then_full(model, f))
                        if fmt == "onnx" else (lambda m, f, **kw: half_then_full(m, f)))
    code, _, err = invoke("export", "mobilenet_v3_small", "--format", fmt, "--out", str(tmp_path / f"m.{fmt}"),
                          "--no-progress")
    one_line_refusal(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_train_prints_its_result_even_when_the_checkpoint_cannot_be_written(tmp_path, tiny):
    (tmp_path / "in_the_way").write_text("a file")
    code, out, err = invoke("train", "mobilenet_v3_small", "--recipe", tiny, "--epochs", "1", "--no-progress",
                            "--json", "--checkpoint", str(tmp_path / "in_the_way" / "m.pt"))
    one_line_refusal(code, err, "cannot write")
    assert "accuracy" in json.loads(out)


def test_report_into_a_folder_it_cannot_write_is_one_line(run_copy, monkeypatch):
    import nas.files

    monkeypatch.setattr(nas.files.os, "replace", lambda *a: (_ for _ in ()).throw(
        OSError(errno.EROFS, os.strerror(errno.EROFS))))
    code, _, err = invoke("report", str(run_copy), "--no-progress")
    one_line_refusal(code, err, "Read-only file system")
    assert not any(p.name.startswith(".") for p in run_copy.iterdir())


# ---------------------------------------------------------------- --workers and --out

def test_workers_past_the_machine_s_cores_are_refused_naming_the_limit(tmp_path, tiny):
    from nas.search.config import available_cores

    out = tmp_path / "run"
    code, _, err = search_cli(out, tiny, "--workers", "1000")
    one_line_refusal(code, err, "--workers 1000", f"expected 1..{available_cores()}")
    assert not out.exists()


def test_workers_of_a_resumed_run_are_checked_too(prepared, tiny):
    code, _, err = search_cli(prepared, tiny, "--workers", "1000")
    one_line_refusal(code, err, "--workers 1000")


def test_an_out_that_is_a_file_is_refused(tmp_path, tiny):
    out = tmp_path / "file"
    out.write_text("mine")
    code, _, err = search_cli(out, tiny)
    one_line_refusal(code, err, "is a file")
    assert out.read_text() == "mine"


def test_an_out_in_a_read_only_folder_is_refused(tmp_path, tiny, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes anywhere: make the check see the mode bits
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and not (
            Path(p) == folder and mode & os.W_OK))
    try:
        code, _, err = search_cli(folder / "run", tiny)
        one_line_refusal(code, err, "not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(stat.S_IRWXU)
