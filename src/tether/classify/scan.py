"""The accumulator one classification fills in: actions, resources, the working directory.

Per-tool handlers receive a ``Scan`` and a ``Cmd`` and only ever add to the scan. Recursion into
nested shell text (``bash -c``, ``eval``, ``ssh host CMD``) and into nested argv (``sudo``,
``xargs``, ``find -exec``) goes through the two callbacks the entry point installs, which keeps the
handler modules free of import cycles.
"""

from __future__ import annotations

import os.path
from collections.abc import Callable
from typing import Final

from tether.classify.model import Classification, Context, make_action, make_classification, make_resource
from tether.classify.paths import (
    DEFAULT_GLOBS,
    PH,
    GlobSet,
    control_entries,
    extra_names,
    has_magic,
    inspect,
    normalize,
    scratch_of,
)
from tether.classify.programs import relocate
from tether.classify.urls import Url, parse_url
from tether.vocabulary import DEFAULT_PROTECTED_PATHS

MAX_DEPTH: Final = 8


class Cmd:
    """One simple command: its argv (``PH`` marks run-time text), source text and known stdin."""

    __slots__ = ("args", "argv", "env", "name", "stdin", "tail", "text")

    def __init__(
        self,
        argv: list[str],
        text: str,
        stdin: str | None = None,
        env: list[tuple[str, str]] | None = None,
        tail: bool = False,
    ) -> None:
        self.argv = argv
        self.text = text
        #: None: the terminal or nothing known; a string (maybe holding PH): what is piped in.
        self.stdin = stdin
        self.env = env if env is not None else []
        #: True when more arguments are appended at run time (``xargs``, ``find -exec ... +``).
        self.tail = tail
        if argv:
            w = argv[0]
            self.name = w if w.islower() and w.isalpha() and w[:2] != "py" else command_name(w)
        else:
            self.name = ""
        #: The arguments after the command name (do not mutate: handlers share it).
        self.args = argv[1:]

    def sub(self, argv: list[str], tail: bool | None = None) -> Cmd:
        """A nested command (``sudo X``): same text, stdin and environment."""
        return Cmd(argv, self.text, self.stdin, self.env, self.tail if tail is None else tail)


def command_name(word: str) -> str:
    """The tool a command word names: ``/usr/bin/python3.11`` -> ``python``, ``RM`` -> ``rm``."""
    base = (word.rsplit("/", 1)[-1] if "/" in word else word).lower()
    if base[-4:] == ".exe":
        base = base[:-4]
    if base[:2] == "py" or base[:3] == "pip":
        for prefix in ("python", "pip", "pypy"):
            if base.startswith(prefix) and base[len(prefix) :].replace(".", "").isdigit():
                return prefix
    return base


ShellFn = Callable[["Scan", str, str], None]
ArgvFn = Callable[["Scan", Cmd], None]
#: A per-tool handler: adds what ``Cmd`` does to ``Scan``.
Handler = Callable[["Scan", Cmd], None]


class Scan:
    """Mutable state of one classification."""

    __slots__ = ("_acts", "_control", "_extra", "_globs", "_home", "_res", "argv_fn", "ctx", "cwd", "depth",
                 "links", "parsed", "shell_fn")

    def __init__(self, ctx: Context, shell_fn: ShellFn, argv_fn: ArgvFn, cwd: str | None = None) -> None:
        self.ctx = ctx
        base = cwd if cwd is not None else ctx.cwd
        if not isinstance(base, str) or not base.startswith("/") or PH in base:
            base = normalize(str(base or "").replace(PH, ""), "/", "/")
        self.cwd = base
        self._home = ctx.home
        self._acts: dict[tuple[str, str, str], None] = {}
        self._res: dict[tuple[str, str, str, bool], None] = {}
        self.parsed = True
        self.depth = 0
        self.shell_fn = shell_fn
        self.argv_fn = argv_fn
        self._globs: tuple[GlobSet, ...] | None = None
        self._control: tuple[str, ...] | None = None
        self._extra: tuple[str, ...] | None = None
        #: Links, copies and moves made earlier in the command: path -> (what it is, writes go through).
        self.links: dict[str, tuple[str, bool]] | None = None

    # ------------------------------------------------------------------------------ accumulation

    def add(self, klass: str, reason: str, command: str = "") -> None:
        self._acts[(klass, reason, command)] = None

    def fail(self, reason: str, command: str = "") -> None:
        """The input could not be fully parsed: ``unknown`` and ``parsed=False``."""
        self.parsed = False
        self._acts[("unknown", reason, command)] = None

    def resource(self, kind: str, value: str, op: str = "", protected: bool = False) -> None:
        if value and PH not in value:
            self._res[(kind, value, op, protected)] = None

    def writes(self) -> bool:
        """Whether anything recorded so far may write: a written path, an edit or an unknown."""
        if any(r[2] in ("write", "delete") for r in self._res):
            return True
        return any(k[0] in ("pr.draft", "unknown", "tether.control") for k in self._acts)

    def wrote(self, path: str, ops: tuple[str, ...] = ("write", "delete")) -> bool:
        """Whether the command so far writes or deletes ``path`` (absolute, normalised)."""
        return any(r[1] == path and r[2] in ops for r in self._res)

    def finish(self) -> Classification:
        acts = self._acts
        if not acts:
            acts = {("repo.read", "no side effects", ""): None}
        elif not self.parsed and not any(k[0] == "unknown" for k in acts):
            acts[("unknown", "could not be fully parsed", "")] = None
        res = self._res
        return make_classification(
            tuple([make_action(k, r, c) for k, r, c in acts]),
            tuple([make_resource(k, v, o, p) for k, v, o, p in res]) if res else (),
            self.parsed,
        )

    # ----------------------------------------------------------------------------------- helpers

    @property
    def home(self) -> str:
        if not self._home:
            self._home = os.path.expanduser("~") or "/root"
        return self._home

    def path(
        self, raw: str, op: str, command: str = "", kind: str = "path", contents: bool = True, tree: bool = False
    ) -> str | None:
        """Record a path resource and its intrinsic classes; returns the normalised path.

        ``op`` is ``read``, ``write``, ``delete`` or ``exec``; ``contents=False`` marks a read that
        only lists or stats (``ls ~/.ssh`` reads no secret); ``tree=True`` marks a write of files with
        unknown names into the directory ``raw`` (``tar -x``, ``unzip``, ``rsync dir/ .``). The
        caller adds the base class (``repo.read`` for reads, ``pr.draft`` for edits, ``data.delete``
        for recursive deletes).
        """
        if not raw:
            return None
        p = normalize(raw, self.cwd, self.home if raw.startswith("~") else "")
        if self.links or p[:6] == "/proc/":
            p = relocate(self, p)
        globs = self._globs
        if globs is None:
            globs = self._globs = self._glob_sets()
            self._control = control_entries(tuple(self.ctx.control)) if self.ctx.control else ()
        extra: tuple[str, ...] = ()
        if PH in p or has_magic(p):
            extra = self._extra = self._extra or extra_names(tuple(self.ctx.protected), tuple(self.ctx.control))
        control = self._control or ()
        if control and self.ctx.scratch and scratch_of(p, self.ctx.scratch):
            control = ()  # the agent's own TMPDIR, inside the state dir: its scratch space
        info = inspect(p, op, self.cwd, globs, control, extra)
        dynamic = PH in p
        if info is None and not tree:
            if not dynamic:
                self._res[(kind, p, op, False)] = None
            elif op == "write":
                self.add("unknown", "writes a path only known at run time", command)
            return None if dynamic else p
        protected = info.protected if info is not None else False
        if tree and op == "write" and not (info is not None and info.control):
            inside = inspect(p, "delete", self.cwd, globs, self._control or (), extra)
            if inside is not None and (inside.control or inside.protected):
                protected = True
                self.add("unknown", f"writes files it cannot name into {p.replace(PH, '$…')}, which holds "
                         "protected files", command)
        if not dynamic:
            self._res[(kind, p, op, protected)] = None
        if info is None:
            if dynamic and op == "write":
                self.add("unknown", "writes a path only known at run time", command)
            return None if dynamic else p
        writes = op in ("write", "delete")
        shown = p.replace(PH, "$…")
        if writes:
            if info.control:
                self.add("tether.control", f"{op}s {shown} (agent or tether control file)", command)
            if info.secret:
                self.add("secrets.modify", f"{op}s secret file {shown}", command)
            if info.auth:
                self.add("auth.modify", f"{op}s access-control file {shown}", command)
            if info.startup:
                self.add("unknown", f"{op}s a start-up or system file {shown}", command)
            if dynamic and op == "write":
                self.add("unknown", "writes a path only known at run time", command)
        elif info.tether and contents:
            self.add("tether.control", f"{op}s {shown}, one of tether's own files (state, tokens, runbook)", command)
        elif info.secret and contents:
            self.add("secrets.modify", f"reads secret file {shown}", command)
        return None if dynamic else p

    def _glob_sets(self) -> tuple[GlobSet, ...]:
        """The context's protected globs: the precompiled defaults plus whatever the runbook adds."""
        prot = self.ctx.protected
        if prot is DEFAULT_PROTECTED_PATHS or prot == DEFAULT_PROTECTED_PATHS:
            return (DEFAULT_GLOBS,)
        prot = tuple(g for g in prot if isinstance(g, str))
        if set(DEFAULT_PROTECTED_PATHS) <= set(prot):
            extra = tuple(g for g in prot if g not in DEFAULT_PROTECTED_PATHS)
            return (DEFAULT_GLOBS, GlobSet(extra))
        return (GlobSet(prot),)

    def url(self, u: Url, command: str = "") -> None:
        self.resource("host", u.host)
        self.resource("url", u.clean)

    def host(self, host: str) -> None:
        h = host.strip().lower().strip("[]")
        if h and PH not in h:
            self.resource("host", h)

    def parse_url(self, text: str, default_scheme: str = "") -> Url | None:
        return parse_url(text, default_scheme)

    # --------------------------------------------------------------------------------- recursion

    def shell(self, text: str, command: str) -> None:
        """Classify nested shell text (``bash -c``, ``eval``, a heredoc fed to ``sh``)."""
        if PH in text:
            self.add("unknown", "runs shell text only known at run time", command)
            return
        if self.depth >= MAX_DEPTH:
            self.add("unknown", "shell nested too deeply", command)
            return
        self.depth += 1
        cwd = self.cwd
        try:
            self.shell_fn(self, text, command)
        finally:
            self.depth -= 1
            self.cwd = cwd

    def run(self, cmd: Cmd) -> None:
        """Classify a nested argv (``sudo X``, ``xargs X``, ``find -exec X``)."""
        if not cmd.argv:
            return
        if self.depth >= MAX_DEPTH:
            self.add("unknown", "command nested too deeply", cmd.text)
            return
        self.depth += 1
        try:
            self.argv_fn(self, cmd)
        finally:
            self.depth -= 1
