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
    ``scratch`` lists the agent's private temporary directories (its TMPDIR, inside the state directory):
    what is below them is the agent's, not tether's.
    ``snapshots`` is the state directory's snapshot store (``<state>/snapshots``): a file the latest snapshot
    of its folder holds as it is now counts as restorable when it is deleted or overwritten; empty: none.
    """

    cwd: str = "/"
    protected: tuple[str, ...] = DEFAULT_PROTECTED_PATHS
    control: tuple[str, ...] = ()
    protected_branches: tuple[str, ...] = ("main", "master", "release/*", "production")
    home: str = ""
    scratch: tuple[str, ...] = ()
    snapshots: str = ""


# Fast constructors for the classifier's hot path. A frozen dataclass's generated ``__init__`` goes
# through ``object.__setattr__`` once per field, which costs about twice as much as setting the slot
# descriptors directly; the instances are the same (frozen, hashable, equal by value).
_new = object.__new__
_A_KLASS = Action.__dict__["klass"].__set__
_A_REASON = Action.__dict__["reason"].__set__
_A_COMMAND = Action.__dict__["command"].__set__
_R_KIND = Resource.__dict__["kind"].__set__
_R_VALUE = Resource.__dict__["value"].__set__
_R_OP = Resource.__dict__["op"].__set__
_R_PROTECTED = Resource.__dict__["protected"].__set__
_C_ACTIONS = Classification.__dict__["actions"].__set__
_C_RESOURCES = Classification.__dict__["resources"].__set__
_C_PARSED = Classification.__dict__["parsed"].__set__


def make_action(klass: str, reason: str, command: str) -> Action:
    a: Action = _new(Action)
    _A_KLASS(a, klass)
    _A_REASON(a, reason)
    _A_COMMAND(a, command)
    return a


def make_resource(kind: str, value: str, op: str, protected: bool) -> Resource:
    r: Resource = _new(Resource)
    _R_KIND(r, kind)
    _R_VALUE(r, value)
    _R_OP(r, op)
    _R_PROTECTED(r, protected)
    return r


def make_classification(actions: tuple[Action, ...], resources: tuple[Resource, ...], parsed: bool) -> Classification:
    c: Classification = _new(Classification)
    _C_ACTIONS(c, actions)
    _C_RESOURCES(c, resources)
    _C_PARSED(c, parsed)
    return c
