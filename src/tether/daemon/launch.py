"""Starting the daemon in the background (``tether up``, ``tether demo``): a child ``tether up --foreground`` in
a session of its own. Kept apart from ``server.py`` so that the parent imports neither the API nor uvicorn."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tether.errors import TetherError


class AlreadyRunning(TetherError):
    pass


def spawn(
    runbook: Path,
    log: IO[bytes],
    *args: str,
    home: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """``tether -f RUNBOOK [--home HOME] up --foreground ARGS`` in a session of its own, its output to ``log``:
    the daemon as ``tether up`` and ``tether demo`` start it in the background."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether",
            "-f",
            str(runbook),
            *(["--home", str(home)] if home is not None else []),
            "up",
            "--foreground",
            *args,
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
