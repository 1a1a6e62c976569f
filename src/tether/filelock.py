"""One bounded exclusive lock on a file: waited for at most a timeout, then refused (a stopped process holding
it must not hang tether). The spawns of a run folder (``process.keeper``); a task's start, end or rollback of
an agent (``rollback.tasks``). Stdlib only."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def flock_within(path: Path, timeout: float, poll: float, refused: Callable[[], Exception]) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (made 0600 if missing) while the block runs, waited for at most
    ``timeout`` seconds, tried every ``poll``; then ``refused()`` is raised (bounded: a stopped process holding
    it must not hang us). The spawns of a run folder; a task start, end or rollback of an agent."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise refused() from None
                time.sleep(poll)
        yield
    finally:
        os.close(fd)
