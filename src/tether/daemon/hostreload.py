"""What ``tether reload`` may change in the runbook's ``host:`` section while the daemon runs.

Applied at once: notification routes (read on each delivery), probes and their interval, the disk
threshold (the host watch is woken), the export sinks and the dead-man's switch (restarted on the new
settings; the export cursor is in the store, so nothing is sent twice or skipped), the log rotation size.
Needs a restart: the node's name, the state directory, the store, the listen address and TLS. A reload
that changes one of those is rejected as a whole, with a line naming each, and the old runbook stays."""

from __future__ import annotations

from tether.errors import RunbookError
from tether.runbook import LoadedRunbook
from tether.runbook.load import line_of

RESTART_ONLY = ("name", "state_dir", "store", "listen", "tls")


def check(old: LoadedRunbook, new: LoadedRunbook) -> list[str]:
    """The ``host`` fields that changed (the reload applies them); ``RunbookError`` if one can only change
    on a restart."""
    a, b = old.runbook.host, new.runbook.host
    fields = [f for f in type(a).model_fields if getattr(a, f) != getattr(b, f)]
    fixed = [f for f in fields if f in RESTART_ONLY]
    if new.state.root != old.state.root and "state_dir" not in fixed:
        fixed.append("state_dir")  # the same text, resolved elsewhere
    if new.store_url != old.store_url and "store" not in fixed:
        fixed.append("store")
    if fixed:
        raise RunbookError([
            f"{new.path}:{line_of(new, 'host', f)}: host.{f}: cannot change while the daemon runs; "
            f"restart it to apply (`tether down && tether up`) or put the old value back"
            for f in fixed
        ])
    return fields
