"""Joining or starting the Ray cluster a search runs on, with Ray's own noise kept off the
terminal and an unreachable address turned into one line."""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Iterator

import optuna
import ray

from nas.errors import NasError


# ---------------------------------------------------------------------------------------------
# Ray itself


def connect(address: str | None) -> bool:
    """Join the cluster at `address` (auto or HOST:PORT) or, for None or "local", start a local
    Ray with one CPU slot per core. Returns True when this call started the connection (and must
    shut it down)."""
    if ray.is_initialized():
        return False
    address = None if address == "local" else address
    if address and address.startswith("ray://"):
        raise NasError(f"--ray-address {address!r} is not allowed: Ray client addresses are not supported; "
                       "run the search on a cluster node with --ray-address auto or HOST:PORT")
    if address and address != "auto":
        check_reachable(address)
    kwargs = {} if address else {"num_cpus": os.cpu_count()}
    try:
        with quiet_ray(), stderr_captured() as captured:
            ray.init(address=address or "local", include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        if "InvalidAuthToken" in "".join(captured):
            reason = ("the cluster uses token authentication: export RAY_AUTH_MODE=token and make its token "
                      "available (~/.ray/auth_token or RAY_AUTH_TOKEN)")
        else:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NasError(f"--ray-address {address!r}: cannot join a Ray cluster ({reason}); start one with "
                       "`ray start --head`, or leave --ray-address out to run Ray on this machine") from None
    return True


@contextmanager
def stderr_captured() -> Iterator[list[str]]:
    """Send this process's stderr (file descriptor 2, where Ray's C++ core logs its connection
    retries) to a temporary file while the block runs; the yielded list then holds its text."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode(errors="replace"))


def check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NasError(f"--ray-address {address!r} is not allowed; expected auto, local or HOST:PORT "
                       "(the address `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise NasError(f"--ray-address {address!r}: nothing answers there ({e.strerror or e}); start the head "
                       "with `ray start --head`, or leave --ray-address out to run Ray on this machine") from None


@contextmanager
def quiet_ray() -> Iterator[None]:
    """Tune's legacy reporter at verbosity 0 prints nothing (the new one always prints a header);
    Ray's and Optuna's warnings are kept off the progress line."""
    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Define-by-run function")
            warnings.filterwarnings("ignore", message="The reported value is ignored")  # a resumed trial's epochs
            yield
    finally:
        ray_logger.setLevel(level)
        if saved is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved
