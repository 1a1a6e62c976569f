"""A cgroup per agent run: the one place no descendant can leave, however it forks or ``setsid``s.

``create(agent, instance)`` makes ``tether/<agent>-<instance>`` in a writable hierarchy, preferring cgroup v2
(``cgroup.kill`` kills the whole group atomically; ``cgroup.freeze`` stops forks during a kill) and falling
back to cgroup v1 ``pids`` (membership), joined by a v1 ``freezer`` group when that hierarchy is mounted.
The agent's launcher writes its own PID into every ``cgroup.procs`` before it execs the agent, so the agent
and all it ever starts are members. The keeper itself stays outside, so it can record the exit code.

Linux only. Where no hierarchy is writable (not root and no delegated subtree, macOS) ``create`` returns
None and the kill falls back to the process group, the ``TETHER_INSTANCE`` environment scan and psutil.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tether.process import platform

Version = Literal["v2", "v1"]
Preference = Literal["auto", "v2", "v1", "none"]

BASE = "tether"


def group_name(agent: str, instance: str) -> str:
    """``<agent>-<instance>`` with anything but ``[A-Za-z0-9_.-]`` replaced, so it is one safe path segment."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{agent}-{instance}").lstrip(".")
    return name[:200] or "agent"


@dataclass(frozen=True)
class Hierarchy:
    version: Version
    root: Path  # where ``tether/`` is created (a mount point, or a delegated subtree)
    freezer_root: Path | None = None  # v1 only


def hierarchies() -> list[Hierarchy]:
    """The mounted hierarchies a per-agent group could go in, best first (v2, then v1 pids [+ freezer])."""
    if not platform.IS_LINUX or platform.FALLBACK:
        return []
    try:
        table = platform.mounts()
    except OSError:
        return []
    v2 = [m for m in table if m.fstype == "cgroup2"]
    v1_pids = [m for m in table if m.fstype == "cgroup" and "pids" in m.super_options]
    v1_freezer = [m for m in table if m.fstype == "cgroup" and "freezer" in m.super_options]
    found: list[Hierarchy] = []
    if v2:
        found.append(Hierarchy("v2", Path(v2[0].mount_point)))
    if v1_pids:
        freezer = Path(v1_freezer[0].mount_point) if v1_freezer else None
        found.append(Hierarchy("v1", Path(v1_pids[0].mount_point), freezer))
    return found


@dataclass(frozen=True)
class AgentCgroup:
    """One agent run's cgroup. ``path`` is the v2 group or the v1 ``pids`` group; ``freezer`` the v1 freezer
    group (v2 freezes through ``path``)."""

    version: Version
    path: Path
    freezer: Path | None = None

    @property
    def dirs(self) -> list[Path]:
        return [self.path] + ([self.freezer] if self.freezer is not None else [])

    def exists(self) -> bool:
        return self.path.is_dir()

    def pids(self) -> set[int]:
        """Every process in the group and in any group made inside it (all directories: they should agree)."""
        result: set[int] = set()
        for d in self.dirs:
            for folder in [d, *_subgroups(d)]:
                try:
                    text = (folder / "cgroup.procs").read_text()
                except OSError:
                    continue
                result.update(int(line) for line in text.split() if line.isdigit())
        return result

    def add(self, pid: int) -> None:
        """Move ``pid`` into the group (every directory). Raises OSError when that is not allowed."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(f"{pid}\n")

    # --- freezing ----------------------------------------------------------------------------------------------

    @property
    def can_freeze(self) -> bool:
        if self.version == "v2":
            return (self.path / "cgroup.freeze").exists()
        return self.freezer is not None and (self.freezer / "freezer.state").exists()

    def frozen(self) -> bool:
        try:
            if self.version == "v2":
                return "frozen 1" in (self.path / "cgroup.events").read_text().splitlines()
            if self.freezer is not None:
                return (self.freezer / "freezer.state").read_text().strip() == "FROZEN"
        except OSError:
            pass
        return False

    def freeze(self, timeout: float = 1.0) -> bool:
        """Stop every member (no forks, no exits) until ``thaw``; True once the kernel reports it frozen."""
        return bool(freeze_all([self], timeout))

    def ask_freeze(self) -> bool:
        """Ask the kernel to freeze the group (``freeze_all`` waits for it); False when it cannot."""
        if not self.can_freeze:
            return False
        try:
            if self.version == "v2":
                (self.path / "cgroup.freeze").write_text("1\n")
            elif self.freezer is not None:
                (self.freezer / "freezer.state").write_text("FROZEN\n")
        except OSError:
            return False
        return True

    def thaw(self) -> None:
        with contextlib.suppress(OSError):
            if self.version == "v2":
                (self.path / "cgroup.freeze").write_text("0\n")
            elif self.freezer is not None:
                (self.freezer / "freezer.state").write_text("THAWED\n")

    # --- killing and removal ------------------------------------------------------------------------------------

    @property
    def can_kill(self) -> bool:
        return self.version == "v2" and (self.path / "cgroup.kill").exists()

    def kill(self) -> bool:
        """SIGKILL every member at once (v2 ``cgroup.kill``, Linux >= 5.14); False when not available."""
        if not self.can_kill:
            return False
        try:
            (self.path / "cgroup.kill").write_text("1\n")
        except OSError:
            return False
        return True

    def remove(self, timeout: float = 1.0) -> bool:
        """Remove the group's directories (and groups made inside them) once empty; True when none is left.
        Never removes a populated group."""
        deadline = time.monotonic() + timeout
        while True:
            busy = False
            for d in self.dirs:
                for folder in [*_subgroups(d), d]:  # the innermost first
                    try:
                        os.rmdir(folder)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        if exc.errno != errno.EBUSY:
                            return False
                        busy = True
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    # --- serialisation ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(self.path),
            "freezer": None if self.freezer is None else str(self.freezer),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentCgroup:
        version = data["version"]
        if version not in ("v2", "v1"):
            raise ValueError(f"bad cgroup version {version!r}")
        freezer = data.get("freezer")
        return cls(version, Path(data["path"]), None if freezer is None else Path(freezer))


def _subgroups(folder: Path) -> list[Path]:
    """The groups made inside ``folder`` (an agent running as root may make some), innermost first."""
    found: list[Path] = []
    for top, _dirs, _files in os.walk(folder, topdown=False):
        if top != str(folder):
            found.append(Path(top))
    return found


def freeze_all(groups: list[AgentCgroup], timeout: float = 1.0) -> list[AgentCgroup]:
    """Freeze every group at once (each stops forking and exiting) and wait for the kernel; return those
    frozen. A group that did not report frozen in time is thawed again (never left half-frozen)."""
    asked = [g for g in groups if g.ask_freeze()]
    deadline = time.monotonic() + timeout
    waiting = list(asked)
    while waiting and time.monotonic() < deadline:
        waiting = [g for g in waiting if not g.frozen()]
        if waiting:
            time.sleep(0.005)
    late = [g for g in waiting if not g.frozen()]
    for g in late:
        g.thaw()
    return [g for g in asked if g not in late]


def create(agent: str, instance: str, prefer: Preference = "auto") -> AgentCgroup | None:
    """Make the run's group in the best writable hierarchy; None when there is none (or ``prefer="none"``)."""
    if prefer == "none":
        return None
    name = group_name(agent, instance)
    for h in hierarchies():
        if prefer != "auto" and h.version != prefer:
            continue
        group = _make(h, name)
        if group is not None:
            return group
    return None


def _make(h: Hierarchy, name: str) -> AgentCgroup | None:
    path = h.root / BASE / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path / "cgroup.procs", os.W_OK):
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    freezer: Path | None = None
    if h.version == "v1" and h.freezer_root is not None:
        freezer = h.freezer_root / BASE / name
        try:
            freezer.mkdir(parents=True, exist_ok=True)
        except OSError:
            freezer = None
    return AgentCgroup(h.version, path, freezer)
