"""Resumable training of many jobs: every finished job appends one whole CSV row.

    from nas.proxy.runner import run_jobs
    trained = run_jobs(jobs, train_one, "OUT/results.csv", COLUMNS, workers=2)

A job is any picklable object with a `key` (str) that names it within its CSV file; `train_one(job)`
returns its row (a dict over the file's columns, `key` included). Rows are appended in a single
write followed by fsync, so a killed run keeps every row it finished and loses at most the job in
hand; a rerun trains only the jobs whose key has no row. Jobs run in `workers` spawned processes
(a fresh interpreter each, never a fork of a parent with torch threads running).
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from nas.errors import NasError
from nas.files import write_text_atomic
from nas.interrupt import workers_ignore_ctrl_c
from nas.progress import bar


def check_workers(workers: int) -> int:
    """`workers` if it is an integer in [1, CPU count]; NasError otherwise."""
    cpus = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= cpus:
        raise NasError(f"workers: {workers!r} is not allowed; expected an integer in [1, {cpus}] "
                       f"(this machine's CPU count)")
    return workers


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a results CSV (strings as written); [] if there is none. A line cut short (no
    trailing newline, wrong column count) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return [r for r in csv.DictReader(lines) if None not in r and None not in r.values()]


def drop_partial_line(path: Path) -> None:
    """Cut a last line that has no newline (a write cut short) so the next row starts on its own."""
    if path.exists():
        text = path.read_text()
        if text and not text.endswith("\n"):
            write_text_atomic(path, text[:text.rfind("\n") + 1])


def append_row(path: Path, columns: Sequence[str], row: dict) -> None:
    """Append one CSV line in a single write, then fsync: a kill leaves all of it or none. The
    header is written first when the file is new."""
    if not path.exists():
        write_text_atomic(path, ",".join(columns) + "\n")
    buf = io.StringIO()
    csv.DictWriter(buf, columns, lineterminator="\n").writerow(row)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, buf.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def run_jobs(jobs: Sequence[Any], train_one: Callable[[Any], dict], path: str | Path,
             columns: Sequence[str], workers: int = 1, desc: str = "train", progress: bool = True,
             label: Callable[[dict], str] = lambda row: row["key"], skip_done: bool = True) -> int:
    """Train every job of `jobs` whose key has no row (column "key") in the CSV at `path` yet (with
    `skip_done` False: every job, the caller has chosen them), in the order given, on `workers`
    processes, appending each row as it finishes. Returns how many were trained."""
    check_workers(workers)
    path = Path(path)
    drop_partial_line(path)
    done = {r.get("key") for r in read_rows(path)} if skip_done else set()
    todo = [j for j in jobs if j.key not in done]
    with bar(total=len(todo), desc=desc, unit="net", enabled=progress) as trained:
        for row in _each(todo, train_one, workers):
            append_row(path, columns, row)
            trained.set_postfix_str(label(row), refresh=False)
            trained.update(1)
    return len(todo)


def _each(todo: list, train_one: Callable[[Any], dict], workers: int) -> Iterable[dict]:
    """Rows of the trained jobs as they finish."""
    if workers == 1 or len(todo) <= 1:
        for job in todo:
            yield train_one(job)
        return
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"))
    try:
        with workers_ignore_ctrl_c():  # the pool starts its processes at the first submit
            futures = [pool.submit(train_one, job) for job in todo]
        for future in as_completed(futures):
            yield future.result()
    except KeyboardInterrupt:  # the workers ignore it: stop them, their jobs stay untrained
        for p in multiprocessing.active_children():
            p.terminate()
        raise
    finally:  # on an interrupt or error, queued jobs are dropped, not trained unrecorded
        pool.shutdown(wait=False, cancel_futures=True)
