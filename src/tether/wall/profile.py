"""An agent's wall as data: which paths it may write, which it may only read, which it cannot see.

Pure: ``build`` takes paths already resolved (and the protected files already found, ``find_protected``
walks the trees) and returns a ``Profile``; ``bwrap.argv`` turns it into a command line. The rules:

- writable: the agent's workspace (cwd), its scope's folders and local repos, its private ``TMPDIR``
  (under the state dir, the only scratch space: the rest of ``/tmp`` and ``/var/tmp`` is empty and
  read-only inside) and, in its private ``HOME`` (read-only itself), the caches and CLI folders its kind
  declares (``kinds.NEEDS``; their hook settings read-only);
- read-only inside a writable tree: the hook settings (``.claude/``, ``.codex/``), ``.git/hooks``,
  ``.git/config`` and ``.github/workflows``, wherever they exist at the start;
- hidden (an empty read-only folder, or ``/dev/null`` for a file): tether's state dir, the runbook, the
  protected paths (``.env``, ``secrets/``, the runbook's own list) found in the writable trees, and every
  other agent's workspace;
- exposed: host trees the agent must read to work (tether's interpreter for its hooks, the agent CLI's
  install, ``kinds.runtime``) bound read-only at their own paths, each below an empty read-only tmpfs
  over the folder its user could not search (``masked``: ``/root`` for a pyenv Python);
- everything else: the host as it is, read-only (file modes still apply: the agent runs as its own user).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Relative to each writable tree: readable, never writable from inside (they run programs for tether
#: or for git, or hold the hook settings tether wrote).
READ_ONLY = (".claude", ".codex", ".git/hooks", ".git/config", ".github/workflows")
#: Globs (relative to a writable tree) hidden whatever the runbook says (vocabulary's protected paths
#: that are secrets, not settings).
HIDDEN = (".env", ".env.*", "**/secrets/**")
#: Trees the protected-path walk does not enter (regenerable, huge, or handled above).
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", "target"})
WALK_LIMIT = 20_000  # entries looked at per start, over all trees (a bigger tree is walked this far)
SCRATCH = ("/tmp", "/var/tmp")  # empty and read-only inside, except the agent's own trees in them


@dataclass(frozen=True)
class Profile:
    """One agent's wall. Paths are absolute and resolved."""

    agent: str
    uid: int
    gid: int
    user: str
    home: str
    tmpdir: str
    writable: tuple[str, ...]
    read_only: tuple[str, ...] = ()  # existing paths inside writable trees, bound read-only over themselves
    hidden_dirs: tuple[str, ...] = ()  # an empty read-only folder over each
    hidden_files: tuple[str, ...] = ()  # /dev/null over each
    files: tuple[tuple[str, str], ...] = ()  # (source, inside) bound read-only (agent CLI logins)
    exposed: tuple[str, ...] = ()  # host trees bound read-only at their own paths (kinds.runtime)
    masked: tuple[str, ...] = ()  # folders the agent's user cannot search: an empty read-only tmpfs over each
    home_writable: bool = True  # False: HOME is bound read-only, only its kind's folders (in writable) are not
    env: dict[str, str] = field(default_factory=dict)


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _match(rel: str, pattern: str) -> bool:
    """A protected-path glob against a path relative to a tree: ``**/`` matches any depth (also none),
    a trailing ``/**`` matches the folder itself and all in it."""
    pats = {pattern}
    if pattern.startswith("**/"):
        pats.add(pattern[3:])
    for p in list(pats):
        if p.endswith("/**"):
            pats.add(p[:-3])
    name = os.path.basename(rel)
    return any(fnmatch.fnmatchcase(rel, p) or ("/" not in p and fnmatch.fnmatchcase(name, p)) for p in pats)


def find_protected(
    roots: Sequence[str], patterns: Sequence[str], limit: int = WALK_LIMIT
) -> tuple[list[str], list[str]]:
    """The folders and files under ``roots`` that a protected glob names, a folder once (not what is in
    it). Bounded: at most ``limit`` entries in all; ``SKIP_DIRS`` are not entered; links not followed."""
    dirs: list[str] = []
    files: list[str] = []
    seen = 0
    for root in roots:
        stack = [root]
        while stack and seen < limit:
            top = stack.pop()
            try:
                entries = list(os.scandir(top))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                rel = os.path.relpath(entry.path, root)
                is_dir = entry.is_dir(follow_symlinks=False)
                if any(_match(rel, p) for p in patterns):
                    (dirs if is_dir else files).append(entry.path)
                elif is_dir and entry.name not in SKIP_DIRS:
                    stack.append(entry.path)
    return dirs, files


def _existing(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def build(
    *,
    agent: str,
    uid: int,
    gid: int,
    user: str,
    home: str,
    tmpdir: str,
    writable: Sequence[str],
    state_dir: str,
    runbook: str,
    others: Sequence[str] = (),
    protected_dirs: Sequence[str] = (),
    protected_files: Sequence[str] = (),
    read_only: Sequence[str] = (),
    files: Sequence[tuple[str, str]] = (),
    home_writable: Sequence[str] | None = None,
    exposed: Sequence[str] = (),
    masked: Sequence[str] = (),
) -> Profile:
    """The profile from resolved paths. ``others``: the other agents' workspaces (hidden unless one of
    this agent's writable trees is inside it or holds it); ``read_only``: existing paths found by
    ``read_only_in`` (and the kind's read-only settings in HOME); ``home_writable``: the folders in HOME
    its kind writes (None: all of HOME); ``exposed``/``masked``: see ``Profile``."""
    mine = [home] if home_writable is None else [h for h in home_writable if under(h, home)]
    trees = tuple(dict.fromkeys([*writable, tmpdir, *mine]))
    hidden = [state_dir]
    for other in others:
        if not any(under(t, other) or under(other, t) for t in (*trees, home)):
            hidden.append(other)
    hidden += [d for d in protected_dirs if not under(tmpdir, d) and not under(home, d)]
    hidden_files = [runbook, *protected_files]
    return Profile(
        agent=agent,
        uid=uid,
        gid=gid,
        user=user,
        home=home,
        tmpdir=tmpdir,
        writable=trees,
        read_only=tuple(dict.fromkeys(read_only)),
        hidden_dirs=tuple(dict.fromkeys(hidden)),
        hidden_files=tuple(dict.fromkeys(hidden_files)),
        files=tuple(files),
        exposed=tuple(exposed),
        masked=tuple(masked),
        home_writable=home_writable is None,
        env={"HOME": home, "TMPDIR": tmpdir, "USER": user, "LOGNAME": user, "TETHER_WALL": "1"},
    )


def read_only_in(trees: Sequence[str]) -> list[str]:
    """The hook settings and git's program-running files that exist in ``trees`` (not in the agent's
    private HOME/TMPDIR: those are its own)."""
    return _existing(os.path.join(t, rel) for t in trees for rel in READ_ONLY)
