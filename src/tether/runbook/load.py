"""Read a runbook file and turn every problem into one line: ``file:line: field: message``."""

from __future__ import annotations

import os
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


@dataclass(frozen=True)
class LoadedRunbook:
    """A valid runbook and where it came from, with its paths resolved."""

    path: Path
    runbook: Runbook
    state: StateDir
    store_url: str
    workspace_root: Path
    text: str

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
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError([f"{label}: no such file; create one with `tether init`"]) from None
    except IsADirectoryError:
        raise RunbookError([f"{label}: is a directory, expected a runbook file"]) from None
    except PermissionError:
        raise RunbookError([f"{label}: permission denied; check the file's owner and mode"]) from None
    except UnicodeDecodeError as err:
        raise RunbookError([f"{label}:1: the file is not UTF-8 text ({err.reason})"]) from None
    runbook = parse(text, label)
    return _resolve(file.resolve(), runbook, text)


def parse(text: str, label: str = RUNBOOK_NAME) -> Runbook:
    """Validate runbook text. Every failure is a ``RunbookError`` whose lines all name a line number."""
    try:
        data, lines = _read_yaml(text, label)
    except RecursionError:
        raise RunbookError([f"{label}:1: the document is nested too deeply"]) from None
    if isinstance(data, dict):  # `x-...` keys hold YAML anchors for reuse, as in compose files
        data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        return Runbook.model_validate(data)
    except ValidationError as err:
        problems = [_format(label, e, lines) for e in err.errors(include_url=False)]
        raise RunbookError(sorted(set(problems), key=lambda p: _line_of(p))) from None
    except RecursionError:
        raise RunbookError([f"{label}:1: the document is nested too deeply"]) from None


def _line_of(problem: str) -> int:
    try:
        return int(problem.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


# --- YAML with line numbers -------------------------------------------------------------------


def _read_yaml(text: str, label: str) -> tuple[Any, dict[Loc, int]]:
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
        raise RunbookError([f"{label}:{line}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as err:
        raise RunbookError([f"{label}:1: invalid YAML: {str(err).splitlines()[0]}"]) from None
    if root is None:
        return {}, {(): 1}
    builder = _Builder(label, loader_cls)
    data = builder.build(root, (), 0)
    if builder.problems:
        raise RunbookError(sorted(dict.fromkeys(builder.problems), key=_line_of))
    return data, builder.lines


class _Builder:
    """Turns a composed YAML node tree into Python data and a map of path -> line."""

    def __init__(self, label: str, loader_cls: Any) -> None:
        self.label = label
        self.lines: dict[Loc, int] = {(): 1}
        self.problems: list[str] = []
        self._constructor = loader_cls("")

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise RecursionError
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            self._mapping(node, loc, depth, out, explicit=set())
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            self.problems.append(f"{self.label}:{node.start_mark.line + 1}: {_path(loc)}: {err}".replace("\n", " "))
            return None

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int, out: dict[Any, Any], explicit: set[Any]) -> None:
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merges.append(value_node)
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
        for merge in merges:  # `<<: *defaults` — explicit keys win, as YAML says
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    line = src.start_mark.line + 1
                    self.problems.append(f"{self.label}:{line}: {_path(loc)}: `<<` must merge a mapping")
                    continue
                extra: dict[Any, Any] = {}
                self._mapping(src, loc, depth + 1, extra, explicit=set())
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
        msg = f"expected one of {ctx.get('expected', '')}, got {err['input']!r}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"expected a mapping of keys, got {_brief(err['input'])}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        msg = f"{_lower(err['msg'])}, got {_brief(err['input'])}"
    else:
        msg = _lower(err["msg"]).removeprefix("value error, ")
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


def _resolve(file: Path, runbook: Runbook, text: str) -> LoadedRunbook:
    def resolve(value: str) -> Path:
        return resolve_path(file.parent, value)

    host = runbook.host
    state = resolve(host.state_dir) if host.state_dir else default_state_dir()
    store = os.environ.get("TETHER_STORE") or host.store or f"sqlite:///{state / 'tether.db'}"
    workspaces = resolve(host.workspace_root) if host.workspace_root else file.parent / "workspaces"
    return LoadedRunbook(file, runbook, StateDir(state), store, workspaces, text)


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
