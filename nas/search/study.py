"""The search's record: its Optuna study, opened only when the storage is sound and the study is
this search's.

- Every study carries the settings that define its search (`search_identity`) in the user
  attribute `STUDY_ATTR`; joining a study whose settings differ is refused, so two searches
  sharing one `--storage` never mix their trials.
- A run folder's own `study.db` is checked before Optuna opens it: an empty (0-byte), truncated,
  damaged or foreign file is refused with one line instead of becoming a fresh study, and is
  never written to.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError
from nas.files import not_a_file
from nas.locks import lock_file, locked
from nas.search.journal import journal_path, open_journal
from nas.search.policy import directions
from nas.search.trials_table import number_ranges
from nas.search.config import (DEFAULT_STUDY, SearchConfig, differing_settings, search_identity,
                               with_recipe_defaults)

STUDY_ATTR = "nas_search"  # study user attribute: the search_identity of the search it belongs to
_SQLITE_MAGIC = b"SQLite format 3\x00"
optuna.logging.set_verbosity(optuna.logging.WARNING)
_URL_EXAMPLE = "sqlite:///path/to/study.db, postgresql://user@host/db or journal:/shared/study.journal"
HEARTBEAT_S = 10  # a running trial's heartbeat interval in a storage with one (seconds)
GRACE_S = 30  # a trial whose last heartbeat is older than this is stale: failed and queued again
MAX_RETRIES = 3  # times one trial is queued again after its worker died
CREATE_ATTEMPTS = 5  # tries at opening a new database server's storage that other workers create at once
_DRIVER_EXTRA = {"psycopg": "postgres", "psycopg2": "postgres"}  # missing driver -> `pip install nas[extra]`


def describe_url(url: str) -> str:
    """The storage URL with any password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of an `sqlite:///` URL (None for other databases). NasError for a URL
    that does not parse or an in-memory database (which would keep nothing)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if journal_path(url) is not None:
        return None
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise NasError(f"--storage {url!r} is not a storage URL ({str(e).splitlines()[0]}); "
                       f"expected e.g. {_URL_EXAMPLE}") from None
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise NasError(f"--storage {url!r} is an in-memory database, which keeps nothing after the search; "
                       f"expected e.g. {_URL_EXAMPLE}")
    return Path(parsed.database)


def check_sqlite_file(path: Path, allow_empty: bool = False) -> None:
    """NasError unless `path` is missing (a new database), a whole, readable Optuna SQLite
    database, or (with `allow_empty`) a 0-byte file, which SQLite reads as a new database. The
    file is opened read-only; nothing is written."""
    fix = "restore it from a backup, or start a fresh search with a new --out"
    if not path.exists():
        if not path.parent.is_dir():
            raise NasError(f"{path}: its folder {path.parent} does not exist")
        return
    kind = not_a_file(path)
    if kind is not None:
        raise NasError(f"{path}: is {kind}, not a study database; {fix}")
    size = path.stat().st_size
    if size == 0 and allow_empty:
        return
    if size == 0:
        raise NasError(f"{path}: is empty (0 bytes), not a study; the trials it held are gone; {fix}")
    with path.open("rb") as f:
        header = f.read(100)
    if not header.startswith(_SQLITE_MAGIC):
        raise NasError(f"{path}: is not an SQLite database (damaged or another kind of file); {fix}")
    if len(header) == 100:
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        if pages and size < page_size * pages:
            raise NasError(f"{path}: is truncated ({size:,} of {page_size * pages:,} bytes); {fix}")
    else:
        raise NasError(f"{path}: is truncated ({size} bytes); {fix}")
    try:
        # Read-write where allowed: a writer killed mid-transaction leaves a hot journal that only a
        # writable connection can roll back (as the next Optuna open would); read-only otherwise.
        mode = "rw" if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) else "ro"
        con = sqlite3.connect(f"file:{path.resolve()}?mode={mode}", uri=True)
        try:
            verdict = con.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.Error as e:
        raise NasError(f"{path}: is damaged ({e}); {fix}") from None
    if verdict != "ok":
        raise NasError(f"{path}: is damaged (sqlite quick_check: {verdict}); {fix}")
    if not {"studies", "trials"} <= tables:
        raise NasError(f"{path}: is an SQLite database but not an Optuna study storage; {fix}")


def open_storage(url: str, given: bool = True, allow_empty: bool = False, heartbeat: bool = False,
                 check: bool = True, **rdb_options: Any) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`, checked first: an RDB storage (`check_sqlite_file` for SQLite
    files) or, for `journal:PATH`, a journal file (`nas.search.journal`). NasError, one line,
    for a URL that does not parse, a missing database driver, a server that does not answer or
    a damaged database; `given`: the URL came from --storage (messages say so) rather than
    being the run folder's own study.db; `allow_empty`: see `check_sqlite_file`; `heartbeat`:
    running trials beat every HEARTBEAT_S seconds, and one silent for GRACE_S is failed and
    queued again (`requeue_stale_trial`) by the next worker that starts a trial; `check`: False
    skips the SQLite file check (for a search's workers, once `ensure_study` has checked it).
    `rdb_options` go to `RDBStorage`."""
    beat = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S,
            "heartbeat_stale_trial_callback": requeue_stale_trial} if heartbeat else {}
    if journal_path(url) is not None:
        return open_journal(url, **beat)
    path = sqlite_path(url)
    if path is not None and check:
        try:
            check_sqlite_file(path, allow_empty)
        except NasError as e:
            if given:
                raise NasError(f"--storage {describe_url(url)}: {e}") from None
            raise
    if path is not None:
        rdb_options.setdefault("engine_kwargs", {"connect_args": {"timeout": 60}})
    try:
        return _rdb_storage(url, **beat, **rdb_options)
    except NasError:
        raise
    except ModuleNotFoundError as e:
        extra = _DRIVER_EXTRA.get(e.name or "")
        how = f"pip install 'nas[{extra}]'" if extra else f"pip install {e.name}"
        raise NasError(f"--storage {describe_url(url)}: its database driver {e.name!r} is not installed; "
                       f"install it with {how}") from None
    except Exception as e:  # sqlalchemy's and the drivers' many error types: say which storage
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise NasError(f"--storage {describe_url(url)}: cannot open it ({type(e).__name__}: {reason}); "
                       f"expected a reachable Optuna storage, e.g. {_URL_EXAMPLE}") from None


def _rdb_storage(url: str, **options: Any) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage for `url`. Workers that start at the same instant on a new database
    server each create its tables, and all but one fail on a duplicate (PostgreSQL: a unique
    violation in its catalogue; SQLite files are serialized by `creating`): such a worker tries
    again, and then finds the tables made."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **options)
        except (IntegrityError, OperationalError, ProgrammingError) as e:
            raced = isinstance(e, IntegrityError) or "already exists" in str(e)
            if not raced or attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def fail_and_requeue(study: optuna.Study, trials: list[FrozenTrial]) -> int:
    """Mark `trials` (RUNNING, but their process is gone) failed and queue each again
    (`requeue_stale_trial`). Both engines recover interrupted trials with this. Returns how many."""
    for t in trials:
        study.tell(t.number, state=TrialState.FAIL)
        requeue_stale_trial(study, t)
    return len(trials)


def requeue_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """The heartbeat's stale-trial callback: `trial` (already failed: its worker died) is queued
    again with the same parameters, its baseline name and `retry_of` (the number of the trial
    first interrupted), at most MAX_RETRIES times in a row. Its partial results are not carried
    over, so the retry trains from scratch like the single-machine resume."""
    retries = trial.user_attrs.get("retries", 0)
    if retries >= MAX_RETRIES:
        return
    keep = {k: v for k, v in trial.user_attrs.items() if k == "baseline"}
    study.enqueue_trial(trial.params, user_attrs=keep | {"retry_of": trial.user_attrs.get("retry_of", trial.number),
                                                         "retries": retries + 1},
                        skip_if_exists=False)


def fail_stale_trials(study: optuna.Study) -> int:
    """Fail and queue again (`requeue_stale_trial`) the trials whose worker stopped beating more
    than GRACE_S seconds ago, as Optuna does before each trial. Returns how many."""
    from optuna.storages import fail_stale_trials as optuna_fail_stale

    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna_fail_stale(study)
    return max(0, len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]



@contextmanager
def creating(url: str) -> Iterator[None]:
    """Let one process at a time create (or join) a study in storage `url`, so workers started
    at the same instant on a new storage never race to create its tables or its study: a lock
    file beside an SQLite or journal file (removed again). A database server has no file to
    lock: `open_storage` and `ensure_study` retry there instead."""
    path = journal_path(url) or sqlite_path(url)
    with ExitStack() as stack:
        if path is not None and path.parent.is_dir():
            try:
                stack.enter_context(locked(lock_file(path), remove=True))
            except NasError:
                pass  # a folder this process cannot write to: opening the storage says so
        yield


def ensure_study(config: SearchConfig, vouched: bool, known_trials: set[int] | None = None) -> None:
    """Make sure the search's study exists in its storage and is this search's, before anything
    else is written. Creates it (stamped with `search_identity`) when missing, or joins it when
    another process of the same search created it meanwhile (`creating`); refuses:
    - a study stamped with other settings (another search);
    - an unstamped study with trials (written by an older nas or another program), unless the
      run folder `vouched` for it (its config.yaml names this study: an older run);
    - a missing study when the run folder lists `known_trials` (its record was lost or replaced);
    - a study lacking some of `known_trials`.
    NasError with one line for each."""
    with creating(config.storage_url):
        _ensure_study(config, vouched, known_trials)


def _ensure_study(config: SearchConfig, vouched: bool, known_trials: set[int] | None) -> None:
    url = config.storage_url
    where = f"study {config.study_name!r} in {_where(config)}"
    lost = NasError(f"{where} is missing, but {config.out}/trials.csv lists {len(known_trials or ())} trials: "
                    "the search's record was lost or replaced; restore it, or start a fresh search with a new --out")
    path = sqlite_path(url)
    if known_trials and path is not None and not path.exists():
        raise lost  # before opening, which would create an empty database
    # A 0-byte file where nothing else of a search exists has nothing to lose (e.g. touched by a
    # reader before the search created it); anywhere else it is a lost record.
    fresh = not vouched and not known_trials and not any((Path(config.out) / "checkpoints").glob("trial_*.pt"))
    storage = open_storage(url, given=config.storage is not None, allow_empty=fresh)
    try:
        exists = config.study_name in study_names(storage)
        identity = search_identity(config)
        if not exists:
            if known_trials:
                raise lost
            try:
                study = optuna.create_study(storage=storage, study_name=config.study_name,
                                            directions=directions(config.objective))
            except optuna.exceptions.DuplicatedStudyError:
                pass  # another worker on a database server created it a moment ago: join it
            else:
                study.set_user_attr(STUDY_ATTR, identity)
                return
        study = optuna.load_study(study_name=config.study_name, storage=storage)
        stored = study.user_attrs.get(STUDY_ATTR)
        numbers = {t.number for t in study.get_trials(deepcopy=False)}
        if stored is None:
            if numbers and not vouched:
                raise NasError(f"{where} already holds {len(numbers)} trials of a search that did not record "
                               "its settings; pass --study NAME to start a study of your own")
            study.set_user_attr(STUDY_ATTR, identity)
        elif with_recipe_defaults(stored) != identity:
            diffs = "; ".join(differing_settings(with_recipe_defaults(stored), identity))
            raise NasError(f"{where} belongs to another search ({diffs}); pass --study NAME (or a new --out) "
                           "to start a study of your own")
        missing = sorted((known_trials or set()) - numbers)
        if missing:
            raise NasError(f"{where} lacks trials {number_ranges(missing)} that {config.out}/trials.csv lists: it is not "
                           "this run's record; restore it, or start a fresh search with a new --out")
    finally:
        _dispose(storage)


def load_run_study(config: dict, run_dir: Path) -> optuna.Study | None:
    """A run folder's study for reading (report, export): its config.yaml's storage and study
    name, defaulting to `run_dir/study.db` and `nas`. None when the run folder has no study.db
    and names no other storage; NasError when the storage or the study is damaged or missing."""
    url = config.get("storage") or f"sqlite:///{(run_dir / 'study.db').resolve()}"
    name = config.get("study") or DEFAULT_STUDY
    if not config.get("storage") and not (run_dir / "study.db").exists():
        return None
    storage = open_storage(url, given=bool(config.get("storage")))
    if name not in study_names(storage):
        raise NasError(f"{describe_url(url)} holds no study {name!r}; expected the study of the search "
                       f"that wrote {run_dir}")
    return optuna.load_study(study_name=name, storage=storage)


def _where(config: SearchConfig) -> str:
    return f"{config.out}/study.db" if config.storage is None else describe_url(config.storage)


def _dispose(storage: Any) -> None:
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()

