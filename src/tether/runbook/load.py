"""Read a runbook file and turn every problem into one line: ``file:line: field: message``."""

from __future__ import annotations

import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tether.errors import RunbookError
from tether.paths import RUNBOOK_NAME, StateDir, default_state_dir
from tether.runbook.model import Runbook, did_you_mean

Loc = tuple[Any, ...]
MAX_DEPTH = 64
MAX_BYTES = 1024 * 1024  # a runbook is written by hand; this is hundreds of agents
MAX_NODES = 50_000  # values composed from the text: a few hundred agents
MAX_ALIASED = 20_000  # values reached again through aliases and merge keys (`*a`, `<<: *a`): no alias bombs
MAX_PROBLEMS = 100  # lines reported: more is a wrong file, not a runbook to fix line by line
MAX_DIGITS = 30  # an integer written longer is no count, size or budget (and Python refuses past 4,300 digits)


@dataclass(frozen=True)
class LoadedRunbook:
    """A valid runbook and where it came from, with its paths resolved."""

    path: Path
    runbook: Runbook
    state: StateDir
    store_url: str
    workspace_root: Path
    text: str
    warnings: tuple[str, ...] = ()  # one line each, like the problems: ``file[:line]: ...``

    def agent_cwd(self, name: str) -> Path:
        agent = self.runbook.agents[name]
        return self.resolve(agent.cwd) if agent.cwd else self.workspace_root / name

    def resolve(self, value: str) -> Path:
        return resolve_path(self.path.parent, value)


def resolve_path(base: Path, value: str) -> Path:
    """A runbook path: ``~`` and ``$VARS`` expanded, relative paths taken from the runbook's folder."""
    p = Path(os.path.expandvars(value)).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def load(path: str | os.PathLike[str] | None = None) -> LoadedRunbook:
    """Load and validate a runbook; raise ``RunbookError`` listing every problem found."""
    file = Path(path) if path is not None else Path(RUNBOOK_NAME)
    label = str(path) if path is not None else RUNBOOK_NAME
    try:
        with file.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise RunbookError([f"{label}: no such file; create one with `tether init`"]) from None
    except IsADirectoryError:
        raise RunbookError([f"{label}: is a directory, expected a runbook file"]) from None
    except PermissionError:
        raise RunbookError([f"{label}: permission denied; check the file's owner and mode"]) from None
    if len(raw) > MAX_BYTES:
        what = _size(size) if size > MAX_BYTES else f"more than {_size(MAX_BYTES)}"  # not a regular file
        raise RunbookError(
            [f"{label}: the file is {what}, and a runbook may be at most {_size(MAX_BYTES)}: is this the right file?"]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunbookError([f"{label}:1: the file is not UTF-8 text ({err.reason})"]) from None
    runbook, lines = _validate(text, label)
    return _resolve(file.resolve(), runbook, text, label, lines)


def from_text(text: str, path: Path) -> LoadedRunbook:
    """A runbook that is not a file (``tether explain``'s default), resolved as if it were ``path``."""
    runbook, lines = _validate(text, str(path))
    return _resolve(path, runbook, text, str(path), lines)


def parse(text: str, label: str = RUNBOOK_NAME) -> Runbook:
    """Validate runbook text. Every failure is a ``RunbookError`` whose lines all name a line number."""
    return _validate(text, label)[0]


def _validate(text: str, label: str) -> tuple[Runbook, dict[Loc, int]]:
    if len(text) > MAX_BYTES:
        raise RunbookError(
            [
                f"{label}: the text is {_size(len(text))}, and a runbook may be at most "
                f"{_size(MAX_BYTES)}: is this the right file?"
            ]
        )
    try:
        data, lines = _read_yaml(text, label)
    except RecursionError:
        raise RunbookError([f"{label}:1: the document is nested too deeply"]) from None
    if isinstance(data, dict):  # `x-...` keys hold YAML anchors for reuse, as in compose files
        data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        return Runbook.model_validate({} if data is None else data), lines
    except ValidationError as err:
        problems = [_format(label, e, lines) for e in err.errors(include_url=False)]
        raise RunbookError(_in_order(problems, label)) from None
    except RecursionError:
        raise RunbookError([f"{label}:1: the document is nested too deeply"]) from None


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _in_order(problems: list[str], label: str) -> list[str]:
    """Each problem once, in line order; past ``MAX_PROBLEMS`` a last line says how many more there are."""
    found = sorted(dict.fromkeys(problems), key=_line_of)
    if len(found) <= MAX_PROBLEMS:
        return found
    shown = found[:MAX_PROBLEMS]
    return [
        *shown,
        f"{label}:{_line_of(shown[-1])}: {len(found) - MAX_PROBLEMS:,} more problems not shown; fix these first",
    ]


def _line_of(problem: str) -> int:
    try:
        return int(problem.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


# --- YAML with line numbers -------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, stopping once it has composed ``MAX_NODES`` values (it resolves each one's tag)."""

    composed = 0

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _TooMany
        return super().resolve(kind, value, implicit)


class _TooMany(Exception):
    pass


def _read_yaml(text: str, label: str) -> tuple[Any, dict[Loc, int]]:
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except _TooMany:
        raise RunbookError(
            [f"{label}: more than {MAX_NODES:,} values; a runbook is written by hand: is this the right file?"]
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
        raise RunbookError([f"{label}:{line}: invalid YAML: {what}{indent_hint(text, line, what)}"]) from None
    except yaml.YAMLError as err:
        raise RunbookError([f"{label}:1: invalid YAML: {str(err).splitlines()[0]}"]) from None
    if root is None:  # no document at all: an empty file, only comments
        return None, {(): 1}
    builder = _Builder(label, _Loader)
    data = builder.build(root, (), 0)
    if builder.problems:
        raise RunbookError(_in_order(builder.problems, label))
    return data, builder.lines


def indent_hint(text: str, line: int, problem: str) -> str:
    """How to fix the usual cause of a YAML error at ``line`` (1-based): a tab, or a key indented unlike
    the keys it belongs with. "" when the error is about something else."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    here = lines[line - 1]
    if "\t" in here[: len(here) - len(here.lstrip())] or ("cannot start any token" in problem and "\t" in here):
        return f"; line {line} has a tab: YAML indents with spaces only, replace the tab with spaces"
    if not any(
        p in problem for p in ("expected key", "expected <block end>", "mapping values are not allowed", "expected ':'")
    ):
        return ""
    levels: list[int] = []  # the indentation of each mapping still open above the line
    for above in lines[: line - 1]:
        body = above.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        col = len(above) - len(body)
        while levels and levels[-1] > col:
            levels.pop()
        if not levels or levels[-1] < col:
            levels.append(col)
    col = len(here) - len(here.lstrip(" "))
    for n in range(line - 1, max(0, line - 3), -1):  # `key:value` just above: a plain string, not a key
        glued = re.match(r"\s*(?:- )?([A-Za-z_][\w.-]*):(?=[^\s:/])", lines[n - 1])
        if glued and "://" not in lines[n - 1]:
            return f"; line {n} has `{glued.group(1)}:` with no space after the colon: write `{glued.group(1)}: value`"
    if here.lstrip(" ") and col not in levels:
        shown = [str(c) for c in sorted(set(levels))[-3:]] or ["0"]
        at = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        return (
            f"; line {line} is indented {col} spaces, the keys above it are at {at}: indent each key like "
            "the keys it belongs with (spaces only)"
        )
    return (
        "; check the indentation of this line against the lines above (a key's value goes on its own "
        "line indented deeper, or after `key: ` with a space after the colon)"
    )


class _Builder:
    """Turns a composed YAML node tree into Python data and a map of path -> line.

    An alias is the very node it names, so a node reached a second time comes through an alias (or a merge
    key). Those repeats are counted: past ``MAX_ALIASED`` the build stops, so nested aliases cannot expand
    a small file into billions of values.
    """

    def __init__(self, label: str, loader_cls: Any) -> None:
        self.label = label
        self.lines: dict[Loc, int] = {(): 1}
        self.problems: list[str] = []
        self._constructor = loader_cls("")
        self._seen: set[int] = set()
        self._repeats = 0
        self._through: tuple[Loc, int] | None = None  # the field and line where the alias being expanded is used

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise RecursionError
        if id(node) not in self._seen:
            self._seen.add(id(node))
        elif self._again(loc, _nearest_line(loc, self.lines)):
            try:
                return self._build(node, loc, depth)
            finally:
                self._through = None
        return self._build(node, loc, depth)

    def _again(self, loc: Loc, line: int) -> bool:
        """Count a node reached once more, at ``loc``; True when it opens an alias's expansion."""
        self._repeats += 1
        if self._repeats > MAX_ALIASED:
            at, line = self._through or (loc, line)
            raise RunbookError(
                [
                    f"{self.label}:{line}: {_path(at)}: aliases expand to more than {MAX_ALIASED:,} "
                    "values; write the values out instead of nesting aliases"
                ]
            )
        if self._through is None:
            self._through = (loc, line)
            return True
        return False

    def _build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            self._mapping(node, loc, depth, out, explicit=set())
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, loc)

    def _scalar(self, node: yaml.Node, loc: Loc) -> Any:
        text = str(node.value)
        if node.tag == "tag:yaml.org,2002:int" and len(text) > MAX_DIGITS:
            return self._problem(node, loc, f"a number of {len(text.lstrip('+-')):,} digits is out of range")
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            return self._problem(node, loc, str(err).replace("\n", " "))
        except Exception:  # a tagged scalar that is not what its tag says (`!!int x`, `!!timestamp 2024-13-45`)
            return self._problem(node, loc, f"{_brief(text)} is not a valid {node.tag.rsplit(':', 1)[-1]}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            return self._problem(node, loc, "the number is out of range")
        return value

    def _problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.label}:{node.start_mark.line + 1}: {_path(loc)}: {message}")

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int, out: dict[Any, Any], explicit: set[Any]) -> None:
        merges: list[tuple[int, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merges.append((key_node.start_mark.line + 1, value_node))
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(f"{self.label}:{line}: {_path(loc)}: keys must be plain names")
                continue
            key = self.build(key_node, loc, depth + 1)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.problems.append(f"{self.label}:{line}: {_path(loc)}: keys must be plain names")
                continue
            if key in explicit:
                self.problems.append(f"{self.label}:{line}: {_path((*loc, key))}: duplicate key")
                continue
            explicit.add(key)
            self.lines[(*loc, key)] = line
            out[key] = self.build(value_node, (*loc, key), depth + 1)
        for line, merge in merges:  # `<<: *defaults` — explicit keys win, as YAML says
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    line = src.start_mark.line + 1
                    self.problems.append(f"{self.label}:{line}: {_path(loc)}: `<<` must merge a mapping")
                    continue
                extra: dict[Any, Any] = {}
                opened = id(src) in self._seen and self._again(loc, line)
                self._seen.add(id(src))
                try:
                    self._mapping(src, loc, depth + 1, extra, explicit=set())
                finally:
                    if opened:
                        self._through = None
                for k, v in extra.items():
                    if k not in explicit:
                        explicit.add(k)
                        out[k] = v


# --- pydantic errors as lines -----------------------------------------------------------------


def _path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format(label: str, err: Any, lines: dict[Loc, int]) -> str:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "agent_name":
        loc = ("agents", ctx.get("name"))
    line = _nearest_line(loc, lines)
    if kind in ("action_class", "never_allow") and (*loc, ctx.get("key")) in lines:
        line = lines[(*loc, ctx.get("key"))]  # the line of the offending key, not of the mapping
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        msg = f"unknown key {str(loc[-1])!r}{did_you_mean(str(loc[-1]), known)}"
    elif kind == "missing":
        msg = "required, but missing"
    elif kind == "literal_error":
        msg = f"expected one of {ctx.get('expected', '')}, got {_brief(err['input'])}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"expected a mapping of keys, got {_brief(err['input'])}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        msg = f"{_lower(err['msg'])}, got {_brief(err['input'])}"
    else:
        msg = _lower(err["msg"]).removeprefix("value error, ")
    if len(msg) > 300:  # a key or value pasted by mistake: one readable line all the same
        msg = msg[:297] + "..."
    # model-level checks (after validators) report on the model itself
    return f"{label}:{line}: {_path(loc)}: {msg}"


def _lower(msg: str) -> str:
    return msg[:1].lower() + msg[1:]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _known_keys(loc: Loc) -> list[str]:
    """The field names valid at ``loc`` (for did-you-mean)."""
    model: Any = Runbook
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = _unwrap(field.annotation)
        elif typing.get_origin(model) is dict:
            model = _unwrap(typing.get_args(model)[1])
        elif typing.get_origin(model) is tuple:
            model = _unwrap(typing.get_args(model)[0])
        else:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


# --- paths ------------------------------------------------------------------------------------


# Directories tether must never take as its state dir: the daemon makes it 0700 and fills it with its files.
SYSTEM_DIRS = frozenset(
    map(
        Path,
        (
            "/",
            "/bin",
            "/boot",
            "/dev",
            "/etc",
            "/home",
            "/lib",
            "/lib32",
            "/lib64",
            "/media",
            "/mnt",
            "/opt",
            "/proc",
            "/root",
            "/run",
            "/sbin",
            "/srv",
            "/sys",
            "/tmp",
            "/usr",
            "/var",
            "/snap",
            "/run/user",
            "/usr/bin",
            "/usr/lib",
            "/usr/local",
            "/usr/sbin",
            "/usr/share",
            "/var/cache",
            "/var/lib",
            "/var/log",
            "/var/run",
            "/var/spool",
            "/var/tmp",
            "/Applications",
            "/Library",
            "/System",
            "/Users",
            "/Volumes",
            "/private",
            "/private/etc",
            "/private/tmp",
            "/private/var",
        ),
    )
)
HOME_DIRS = ("", ".cache", ".config", ".local", ".local/share", ".local/state", ".ssh")


def _resolve(file: Path, runbook: Runbook, text: str, label: str, lines: dict[Loc, int]) -> LoadedRunbook:
    def resolve(value: str) -> Path:
        return resolve_path(file.parent, value)

    host = runbook.host
    state = resolve(host.state_dir) if host.state_dir else default_state_dir()
    if host.state_dir and _system_dir(state):
        line = _nearest_line(("host", "state_dir"), lines)
        plain = os.path.normpath(state)
        said = _brief(host.state_dir) + ("" if host.state_dir == plain else f" (that is {plain})")
        raise RunbookError(
            [
                f"{label}:{line}: host.state_dir: {said} is a system or home directory; the daemon "
                "would make it private (0700) and fill it: name a directory of tether's own, like "
                "/var/lib/tether, or leave state_dir out for the default"
            ]
        )
    store = os.environ.get("TETHER_STORE") or host.store or f"sqlite:///{state / 'tether.db'}"
    workspaces = resolve(host.workspace_root) if host.workspace_root else file.parent / "workspaces"
    warnings = (
        ()
        if len(lines) > 1
        else (  # not one key: an empty file, only comments, `null`, `{}`
            f"{label}: the runbook is empty: no agents, no host settings; `tether init` writes a commented example",
        )
    )
    return LoadedRunbook(file, runbook, StateDir(state), store, workspaces, text, warnings)


def _system_dir(path: Path) -> bool:
    """``path`` (or where its links lead) is ``/``, a system directory, a home directory, or one of its dot dirs."""
    home = Path(os.path.expanduser("~"))
    for p in {Path(os.path.normpath(path)), path.resolve()}:
        if p in SYSTEM_DIRS or p.parent == Path("/home") or any(p == home / d for d in HOME_DIRS):
            return True
    return False


def line_of(loaded: LoadedRunbook, *loc: str) -> int:
    """The line where ``loc`` (a key path like ``("host", "listen")``) is written, or its nearest parent's."""
    try:
        _, lines = _read_yaml(loaded.text, str(loaded.path))
    except RunbookError:
        return 1
    for end in range(len(loc), -1, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return 1
