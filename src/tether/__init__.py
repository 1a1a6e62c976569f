"""tether: the runbook runtime for AI agents.

The public Python API for agents is ``tether.Agent`` (see ``tether.sdk``); it is imported on first
use, so ``import tether`` stays free for the CLI.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing `typing` costs ~10 ms; `tether --help` must not pay for it
    from typing import Any

    # what a type checker sees of `tether.Agent` and the rest (at run time: `__getattr__`, on first use)
    from tether.sdk import Agent, Decision, Denied, Task, TetherError, TetherUnavailable

__version__ = "0.1.0"
__all__ = ["Agent", "Decision", "Denied", "Task", "TetherError", "TetherUnavailable", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Agent", "Decision", "Denied", "Task", "TetherError", "TetherUnavailable"):
        from tether import sdk  # urllib: +19 ms to every tether command, which never needs it

        return getattr(sdk, name)
    raise AttributeError(f"module 'tether' has no attribute {name!r}")
