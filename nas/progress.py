"""Progress bars on stderr, all made here so they look and switch off alike.

    for x in bar(items, desc="decoding", unit="img", enabled=progress): ...
    with steps(3, "export onnx", enabled=progress) as step:
        step("building the network"); ...
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

_STEPS_FORMAT = "{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]"


def bar(iterable: Iterable | None = None, *, desc: str, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar over `iterable` (or one to `update` by hand, given `total=`); `enabled=False`
    hides it. Other options (unit, total, leave, unit_scale, file) go to tqdm."""
    return tqdm(iterable, desc=desc, disable=not enabled, **options)


@contextlib.contextmanager
def steps(total: int, desc: str, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A bar of `total` named steps, shown only when `enabled` and stderr is a terminal.
    `step(label)` finishes the previous step and names the next; leaving the block finishes the last."""
    progress = tqdm(total=total, desc=desc, disable=None if enabled else True, leave=False,
                    bar_format=_STEPS_FORMAT)
    started = [False]

    def step(label: str) -> None:
        if started[0]:
            progress.update(1)
        started[0] = True
        progress.set_postfix_str(label)

    try:
        yield step
        progress.update(1)
    finally:
        progress.close()
