"""The classifier's result types and its input context (plain frozen dataclasses, stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass

from tether.vocabulary import DEFAULT_PROTECTED_PATHS

__all__ = ["Action", "Classification", "Context", "Resource"]


@dataclass(frozen=True, slots=True)
class Resource:
    """Something an action touches.

    ``kind`` is one of ``path``, ``host``, ``url``, ``repo``, ``account``, ``branch``, ``script``.
    Paths are absolute and normalised (symlinks are not resolved), hosts lower-case, accounts
    ``aws:<profile>``, ``kube:<context>``, ``gcloud:<project>``, ``az:<subscription>``,
    ``mcp:<server>`` or ``db:<scheme>://<host>/<db>`` (never a password).
    """

    kind: str
    value: str
    op: str = ""
    protected: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """One action class found in the input, with a short human reason."""

    klass: str
    reason: str
    command: str = ""


@dataclass(frozen=True, slots=True)
class Classification:
    """The intrinsic classes and resources of a command or tool call."""

    actions: tuple[Action, ...]
    resources: tuple[Resource, ...]
    parsed: bool

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(a.klass for a in self.actions)


@dataclass(frozen=True, slots=True)
class Context:
    """Where a command runs and what is protected there.

    ``protected`` globs are gitignore-ish: ``**`` spans any depth, a relative glob matches at any
    depth below ``cwd``, an absolute glob matches absolute paths. ``control`` lists absolute files
    or directories (the runbook, the state directory) whose modification is ``tether.control``.
    ``home`` is used for ``~`` and ``$HOME``; empty means the current user's home directory.
    """

    cwd: str = "/"
    protected: tuple[str, ...] = DEFAULT_PROTECTED_PATHS
    control: tuple[str, ...] = ()
    protected_branches: tuple[str, ...] = ("main", "master", "release/*", "production")
    home: str = ""
