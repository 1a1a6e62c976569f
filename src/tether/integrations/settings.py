"""Merge tether's hooks into an agent CLI's settings without clobbering anyone else's.

Claude Code (``settings.json``, ``managed-settings.json``) and Codex (``hooks.json``) share one shape::

    {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "http", "url": ...}, ...]}, ...]}}

tether's own hook entries are recognised by what they call (a ``/v1/hooks/`` URL of the daemon, or
tether's hook command), so a merge first takes out every entry of ours, then appends the current ones:
running it twice changes nothing, and removing takes out exactly those entries. Top-level keys tether
sets (``allowManagedHooksOnly``) are remembered in a sidecar file beside the settings file, so removing
takes them out only when tether put them there.

Codex's ``requirements.toml`` is TOML (no writer in the stdlib): tether's part is a block between marker
comments, replaced or removed whole, and the result is parsed with ``tomllib`` before it is written.
"""

from __future__ import annotations

import contextlib
import copy
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether import atomic
from tether.errors import UsageError

HOOK_URL_MARK = "/v1/hooks/"
HOOK_COMMAND_MARK = "hook_command"
SIDECAR = ".tether-integration.json"
TOML_BEGIN = "# >>> tether: managed by `tether integrate`; `--remove` takes this block out"
TOML_END = "# <<< tether"


def is_ours(hook: Any) -> bool:
    if not isinstance(hook, dict):
        return False
    if hook.get("type") == "http":
        return HOOK_URL_MARK in str(hook.get("url", ""))
    if hook.get("type") == "command":
        cmd = str(hook.get("command", ""))
        return HOOK_COMMAND_MARK in cmd and "tether" in cmd
    return False


def read_json(path: Path, not_json: str | None = None) -> dict[str, Any]:
    """The settings in ``path``: ``{}`` when it does not exist; a one-line error when it is not a JSON object
    (``not_json``, when given, is the error for text that does not parse)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise UsageError(
            not_json or f"{path} is not valid JSON ({err}); fix it first, tether will not overwrite it"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object; fix it first, tether will not overwrite it")
    return data


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` whole (``tether.atomic``); an existing file keeps its mode."""
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode & 0o7777
    atomic.write_atomic(path, text, mode)


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def strip_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` without tether's hook entries; groups and events left empty by that go too."""
    out = copy.deepcopy(settings)
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                kept.append(group)
                continue
            inner = [h for h in group["hooks"] if not is_ours(h)]
            if len(inner) == len(group["hooks"]):
                kept.append(group)
            elif inner:
                kept.append({**group, "hooks": inner})
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del out["hooks"]
    return out


def merge(settings: dict[str, Any], ours: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``settings`` with tether's hook groups (``ours``, by event) in place of any earlier ones."""
    out = strip_ours(settings)
    hooks = out.get("hooks")
    if hooks is None:
        hooks = out["hooks"] = {}
    if not isinstance(hooks, dict):
        raise UsageError('the settings\' "hooks" is not an object; fix it first, tether will not overwrite it')
    for event, groups in ours.items():
        existing = hooks.get(event)
        if existing is None:
            hooks[event] = copy.deepcopy(groups)
        elif isinstance(existing, list):
            existing.extend(copy.deepcopy(groups))
        else:
            raise UsageError(f'the settings\' "hooks.{event}" is not a list; fix it first')
    return out


@dataclass(frozen=True)
class Change:
    path: Path
    changed: bool
    what: str

    def line(self) -> str:
        return f"{self.path}: {self.what}" if self.changed else f"{self.path}: already {self.what} (unchanged)"


def sidecar(path: Path) -> Path:
    """Where tether remembers what it added to the file at ``path`` (one sidecar a folder, keyed by name)."""
    return path.parent / SIDECAR


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar beside ``path`` (``{}`` when missing or unreadable: then tether remembers nothing)."""
    try:
        data = json.loads(sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_sidecar(path: Path, side: dict[str, Any], mode: int = 0o644) -> None:
    """Keep ``side`` as the sidecar beside ``path``; an empty one is taken away."""
    if side:
        write_atomic(sidecar(path), dump_json(side), mode)
    else:
        sidecar(path).unlink(missing_ok=True)


def install_json(
    path: Path, ours: dict[str, list[dict[str, Any]]], top: dict[str, Any] | None = None, mode: int = 0o644
) -> Change:
    """Merge ``ours`` (and top-level keys ``top``) into the JSON settings at ``path``; write only on change."""
    before = read_json(path)
    after = merge(before, ours)
    added: dict[str, Any] = {}
    for key, value in (top or {}).items():
        if after.get(key) != value:
            after[key] = value
            added[key] = value
    side = read_sidecar(path)
    mine = dict(side.get(path.name, {}).get("added", {}))
    if after == before:
        return Change(path, False, "has tether's hooks")
    write_atomic(path, dump_json(after), mode)
    if added:
        mine.update(added)
        side[path.name] = {"added": mine}
        write_sidecar(path, side)
    return Change(path, True, "tether's hooks installed")


def remove_json(path: Path) -> Change:
    """Take tether's hook entries out of ``path``, and the top-level keys tether set (per the sidecar)."""
    if not path.exists():
        return Change(path, False, "without tether's hooks")
    before = read_json(path)
    after = strip_ours(before)
    side = read_sidecar(path)
    mine = side.pop(path.name, {}).get("added", {})
    for key, value in mine.items():
        if after.get(key) == value:
            del after[key]
    write_sidecar(path, side)
    if after == before:
        return Change(path, False, "without tether's hooks")
    write_atomic(path, dump_json(after))
    return Change(path, True, "tether's hooks removed")


# -- TOML blocks (Codex requirements.toml) ---------------------------------------------------------------


def strip_toml_blocks(text: str) -> str:
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == TOML_BEGIN:
            inside = True
            continue
        if inside and line.rstrip("\n") == TOML_END:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)


def install_toml(path: Path, head: str, tail: str, mode: int = 0o644) -> Change:
    """Put tether's block ``head`` before the first table (top-level keys) and ``tail`` at the end."""
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = ""
    base = strip_toml_blocks(before)
    try:
        current = tomllib.loads(base)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path} is not valid TOML ({err}); fix it first, tether will not overwrite it") from None
    parts = []
    head_keys = tomllib.loads(head) if head.strip() else {}
    head = "".join(f"{line}\n" for line in head.splitlines() if line.split("=")[0].strip() not in current)
    if head.strip() and head_keys:
        parts.append(f"{TOML_BEGIN}\n{head}{TOML_END}\n")
    parts.append(base)
    if parts[-1] and not parts[-1].endswith("\n"):
        parts.append("\n")
    if tail.strip():
        parts.append(f"{TOML_BEGIN}\n{tail.rstrip()}\n{TOML_END}\n")
    after = "".join(parts)
    try:
        tomllib.loads(after)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(
            f"merging tether's hooks into {path} would make it invalid TOML ({err}); not written"
        ) from None
    if after == before:
        return Change(path, False, "has tether's hooks")
    write_atomic(path, after, mode)
    return Change(path, True, "tether's hooks installed")


def remove_toml(path: Path) -> Change:
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Change(path, False, "without tether's hooks")
    after = strip_toml_blocks(before)
    if after == before:
        return Change(path, False, "without tether's hooks")
    if after.strip():
        write_atomic(path, after)
    else:
        path.unlink()
    return Change(path, True, "tether's hooks removed")
