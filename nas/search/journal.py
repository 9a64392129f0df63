"""`--storage journal:PATH`: an Optuna journal file (one JSON operation per line, appended under a
lock file) as the study storage of several machines that share a filesystem (NFS) but no
database server.

Optuna's `JournalStorage` has no heartbeat, so a trial of a killed worker would stay RUNNING
forever. `HeartbeatJournalStorage` adds one with Optuna's own interface (`BaseHeartbeat`): each
running trial stamps the time (the worker's clock, seconds since the epoch) in a system
attribute every `heartbeat_interval` seconds, and a trial whose stamp is older than
`grace_period` is stale; Optuna then fails it and calls the stale-trial callback, exactly as for
an RDB storage. The machines' clocks must agree to well within the grace period (NTP).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Callable

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError
from nas.files import not_a_file

PREFIX = "journal:"
HEARTBEAT_ATTR = "nas_heartbeat"  # trial system attribute: the worker's last heartbeat, Unix seconds
_EXAMPLE = "journal:/shared/runs/pixel60.journal"

try:  # Optuna >= 4.0
    from optuna.storages.journal import JournalFileBackend, JournalStorage
except ImportError:  # pragma: no cover - Optuna 3.x
    from optuna.storages import JournalFileStorage as JournalFileBackend, JournalStorage


def journal_path(url: str) -> Path | None:
    """The journal file of a `journal:PATH` storage (None for any other URL). NasError for
    `journal:` without a path."""
    if not url.startswith(PREFIX):
        return None
    path = url[len(PREFIX):]
    if path.startswith("//"):  # journal:///abs/path, the URL-style spelling
        path = path[2:]
    if not path.strip():
        raise NasError(f"--storage {url!r} names no journal file; expected e.g. {_EXAMPLE}")
    return Path(path)


def check_journal_file(path: Path) -> None:
    """NasError unless `path` is missing in an existing, writable folder (a new journal), empty,
    or a journal file whose first operation Optuna wrote. Only reads."""
    fix = "restore it from a backup, or pass another journal file"
    kind = not_a_file(path)
    if kind is not None:  # a device such as /dev/null would swallow (or refuse) every operation
        raise NasError(f"{path}: is {kind}, not a journal file; expected e.g. {_EXAMPLE}")
    if not path.exists():
        if not path.parent.is_dir():
            raise NasError(f"{path}: its folder {path.parent} does not exist")
        return
    try:
        with path.open("rb") as f:
            first = f.readline()
    except OSError as e:
        raise NasError(f"{path}: cannot read: {e.strerror}") from None
    if not first:
        return
    try:
        op = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        op = None
    if not isinstance(op, dict) or "op_code" not in op:
        raise NasError(f"{path}: is not an Optuna journal (damaged or another kind of file); {fix}")


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A `JournalStorage` with a heartbeat (see the module docstring). Intervals in seconds."""

    def __init__(self, path: Path, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(JournalFileBackend(str(path)))
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        now = time.time()
        return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if HEARTBEAT_ATTR in t.system_attrs and now - t.system_attrs[HEARTBEAT_ATTR] > grace]

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback


def open_journal(url: str, **heartbeat) -> BaseStorage:
    """The storage of a `journal:PATH` URL, checked first (`check_journal_file`); `heartbeat`:
    `heartbeat_interval`, `grace_period`, `heartbeat_stale_trial_callback` as for RDBStorage.
    NasError, one line, naming the storage for a bad or unreadable file."""
    path = journal_path(url)
    assert path is not None, url
    try:
        check_journal_file(path)
        return HeartbeatJournalStorage(path, **heartbeat)
    except NasError as e:
        raise NasError(f"--storage {url}: {e}") from None
    except Exception as e:  # a damaged line, a lock that cannot be taken, an I/O error
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise NasError(f"--storage {url}: cannot open it ({type(e).__name__}: {reason}); "
                       f"expected an Optuna journal file, e.g. {_EXAMPLE}") from None
