"""What every command needs: the runbook (loaded on demand) and the store (opened on demand)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tether.paths import RUNBOOK_NAME, StateDir, default_state_dir

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook
    from tether.store import Store


class Context:
    def __init__(self, runbook: str | None, home: str | None) -> None:
        self.runbook_arg = runbook
        self.home_arg = home
        self._store: Store | None = None

    @property
    def runbook_path(self) -> Path:
        return Path(self.runbook_arg or RUNBOOK_NAME)

    @cached_property
    def loaded(self) -> LoadedRunbook:
        from tether.runbook import load

        return load(self.runbook_path)

    @cached_property
    def state(self) -> StateDir:
        """``--home``/``$TETHER_HOME``, else the runbook's state_dir, else the platform default."""
        if self.home_arg:
            return StateDir(Path(self.home_arg).expanduser())
        if self.runbook_arg or self.runbook_path.exists():
            return self.loaded.state
        return StateDir(default_state_dir())

    @property
    def store_url(self) -> str:
        url = os.environ.get("TETHER_STORE")
        if url:
            return url
        if not self.home_arg and (self.runbook_arg or self.runbook_path.exists()):
            return self.loaded.store_url
        from tether.fleet.view import store_url  # fleet: a node's state dir names its PostgreSQL store

        return store_url(str(self.state.root)) or f"sqlite:///{self.state.db}"

    def store(self, readonly: bool = False) -> Store:
        if self._store is None:
            from tether.store import open_store

            self._store = open_store(self.store_url, readonly=readonly)
        return self._store
