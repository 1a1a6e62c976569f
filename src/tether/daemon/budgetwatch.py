"""Budgets, watched on a thread of their own: an agent whose daily budget is spent is paused like a kill
(reason ``budget: ...``, by ``tether budgets``: every check refused, its processes stopped, the owner told
through a ``budget`` incident); one burning far above its usual pace gets a ``budget.burn`` incident
before the budget is gone. Only a human lifts the pause (``tether budget reset`` or a raised budget and
``tether resume``): the watch never resumes an agent itself."""

from __future__ import annotations

import threading
import time
from typing import Any

from tether import budgets

EVERY = 2.0  # seconds between looks: one small read per agent with a budget
BY = "tether budgets"


class BudgetWatch:
    def __init__(self, daemon: Any, every: float = EVERY) -> None:
        self.daemon = daemon
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-budgets", daemon=True)
        self.paused: list[str] = []  # agents this watch paused (for tests and the log)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once(time.time())
            except Exception as err:  # a failing store says so elsewhere; watching must never take the daemon down
                print(f"tether: budgets: {err!r}", flush=True)
            self._stop.wait(self.every)

    def check_once(self, now: float) -> None:
        d = self.daemon
        for name in d.local_agents():
            spec = d.loaded.runbook.agents.get(name)
            if spec is None or (spec.budgets.tokens_per_day is None and spec.budgets.usd_per_day is None):
                continue
            history = budgets.history(d.store, name, now)
            day = budgets.day_of(now)
            base = budgets.last_reset(d.store, name, day)
            got = history.get(day, budgets.Spend())
            spend = budgets.Spend(max(0, got.tokens - base.tokens), max(0.0, got.usd - base.usd))
            why = budgets.over(spec.budgets, spend)
            if why is not None:
                if d.state.kill_engaged(name) is None:
                    self._pause(name, why)
                continue
            burn = budgets.burning(spec.budgets, history, spend, now)
            if burn is not None:
                budgets.incident(d.store, name, "budget.burn", f"{name}: spending fast: {burn}")

    def _pause(self, name: str, why: str) -> None:
        d = self.daemon
        budgets.incident(d.store, name, "budget", f"{name}: budget spent: {why}; paused until a human raises "
                         f"or resets it (`tether budget reset {name}`)")
        d.kill(name, f"{budgets.REASON}: {why}", by=BY)
        self.paused.append(name)
        print(f"tether: budgets: {name} paused: {why}", flush=True)
