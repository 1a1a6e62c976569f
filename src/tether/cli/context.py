"""What every command needs: the runbook (loaded on demand), the state directory and the store.

One rule for the state directory: ``--home`` > the runbook's ``host.state_dir`` > ``$TETHER_HOME`` > the
platform default (the daemon follows it too: ``tether up`` hands its ``--home`` on). The runbook is
``-f``/``$TETHER_RUNBOOK``, else ``./tether.yaml``, else the copy the daemon keeps in the state directory,
so recovery commands (kill, resume, status) need only the state directory.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tether.durations import parse_duration
from tether.errors import NotFound, RunbookError, UsageError
from tether.paths import RUNBOOK_NAME, StateDir, default_state_dir

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook
    from tether.runbook.model import Agent
    from tether.store import Store


class Context:
    def __init__(self, runbook: str | None, home: str | None) -> None:
        self.runbook_arg = runbook  # -f, or $TETHER_RUNBOOK
        self.home_arg = home  # --home only: $TETHER_HOME ranks below the runbook
        self._store: Store | None = None

    @property
    def runbook_path(self) -> Path:
        return Path(self.runbook_arg or RUNBOOK_NAME)

    @property
    def has_runbook(self) -> bool:
        """A runbook file was named, or ./tether.yaml is here."""
        return bool(self.runbook_arg) or Path(RUNBOOK_NAME).exists()

    @cached_property
    def loaded(self) -> LoadedRunbook:
        """The runbook, its state directory by the rule above."""
        from tether.runbook import load  # its models: +110 ms to tether --home DIR kill|resume

        if not self.has_runbook:
            if self.home_state.runbook_source() is not None:
                return load_copy(self.home_state)
            raise RunbookError([
                f"{RUNBOOK_NAME}: no such file here, and {self.home_state.root} has no runbook copy (its daemon "
                "keeps one); pass -f RUNBOOK, or --home with the daemon's state directory, or run `tether init`"
            ])
        loaded = load(self.runbook_path)
        if self.home_arg:
            return with_state(loaded, self.home_state)
        warn_disagreement(loaded)
        return loaded

    def agent(self, name: str) -> Agent:
        """The runbook's agent NAME; ``NotFound`` when it has none."""
        spec = self.loaded.runbook.agents.get(name)
        if spec is None:
            raise NotFound(f"no agent named {name!r} in {self.loaded.path}")
        return spec

    @cached_property
    def home_state(self) -> StateDir:
        """The state directory when the runbook does not name it: ``--home``, else ``$TETHER_HOME``, else
        the platform default."""
        return StateDir(Path(self.home_arg).expanduser().absolute() if self.home_arg else default_state_dir())

    @cached_property
    def state(self) -> StateDir:
        if self.home_arg or not self.has_runbook:
            return self.home_state  # no runbook needed (`tether status` stays fast)
        return self.loaded.state

    @property
    def store_url(self) -> str:
        url = os.environ.get("TETHER_STORE")
        if url:
            return url
        if self.has_runbook and not self.home_arg:
            return self.loaded.store_url
        from tether.fleet.seam import store_url  # +2 ms to tether beat, ask, exec, check (no store)

        return store_url(str(self.state.root), str(self.state.db))  # SQLite, or the store a node's fleet.json names

    def store(self, readonly: bool = False) -> Store:
        if self._store is None:
            from tether.store import open_store  # +3 ms to tether beat, ask, exec, check (no store)

            self._store = open_store(self.store_url, readonly=readonly)
        return self._store


def duration(value: str, flag: str) -> float:
    """A duration option's value (10m, 2h, 45s) in seconds; a one-line ``UsageError`` naming FLAG."""
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(f'{flag}: expected a duration like "10m", got {value!r}') from None


def with_state(loaded: LoadedRunbook, state: StateDir) -> LoadedRunbook:
    """``loaded`` kept in ``state`` (``--home``), its SQLite store there too."""
    store = os.environ.get("TETHER_STORE") or loaded.runbook.host.store or f"sqlite:///{state.db}"
    return dataclasses.replace(loaded, state=state, store_url=store)


def load_copy(state: StateDir) -> LoadedRunbook:
    """The runbook the daemon of ``state`` last loaded, from its copy there, with the original's paths."""
    from tether.runbook import load  # as Context.loaded
    from tether.runbook.load import resolve_path  # as Context.loaded

    source = state.runbook_source()
    assert source is not None
    loaded = load(state.runbook_copy)
    host = loaded.runbook.host
    workspaces = resolve_path(source.parent, host.workspace_root) if host.workspace_root else (
        source.parent / "workspaces")
    return dataclasses.replace(with_state(loaded, state), path=source, workspace_root=workspaces)


def warn_disagreement(loaded: LoadedRunbook) -> None:
    """The runbook's ``host.state_dir`` outranks ``$TETHER_HOME``: when both are set and differ, say so."""
    import sys

    env = os.environ.get("TETHER_HOME")
    if not env or not loaded.runbook.host.state_dir:
        return
    if os.path.realpath(os.path.expanduser(env)) != os.path.realpath(loaded.state.root):
        sys.stderr.write(
            f"tether: note: using {loaded.state.root} (host.state_dir in {loaded.path}), not $TETHER_HOME={env}; "
            f"pass --home {env} to use that one\n"
        )
