"""Ctrl-C and worker processes. A terminal sends Ctrl-C to every process of the command, so each
worker would print its own traceback; workers started inside `workers_ignore_ctrl_c` ignore it
(the ignored signal is inherited by spawned processes, even while they import), and the main
process, which reports it in one line, stops them.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Processes started in this block ignore Ctrl-C (SIGINT); this process does again after it.
    Only the main thread can change signal handling: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
