"""``tether`` on every agent's PATH, so a command agent runs ``tether beat`` or ``tether exec`` by name.

The folder put first is ``tether/bin`` in the installed package: it holds one ``sh`` script, ``tether``,
that runs ``$TETHER_PYTHON -m tether`` (the daemon's own interpreter). Not the folder of the daemon's
entry point: in a virtualenv that one also holds its ``python3`` and ``pip``, which would shadow the
agent's own. Inside the wall the package and the interpreter are bound in read-only
(``wall.kinds.runtime``), so the same PATH works there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The PATH an agent gets when the daemon has none (a bare service environment).
DEFAULT_PATH = os.defpath


def shim_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "bin"


def on_path(path: str | None) -> dict[str, str]:
    """The agent's ``PATH`` with the shim's folder first (once), and ``TETHER_PYTHON`` for the shim."""
    folder = shim_dir()
    if not os.access(folder / "tether", os.X_OK):  # an installer that dropped the mode: PATH as it was
        return {"PATH": path} if path else {}
    rest = [p for p in (path or DEFAULT_PATH).split(os.pathsep) if p and p != str(folder)]
    return {"PATH": os.pathsep.join([str(folder), *rest]), "TETHER_PYTHON": sys.executable}
