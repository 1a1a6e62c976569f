"""Which files in an agent's work tree are tether's own, so "files changed" counts only the agent's work:
anything under the state directory, the runbook, the sidecar ``tether integrate`` keeps beside the settings
it merged into, and a project's ``.claude/settings.json`` or ``.codex/hooks.json`` while it holds tether's
hooks (the file ``tether integrate`` wrote; one whose hooks an agent took out is the agent's change).
Stdlib only, and cheap: a path test, and at most one small JSON read for those two file names."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from tether.integrations.settings import SIDECAR, is_ours

#: (folder name, file name) of the project files ``tether integrate`` writes its hooks into.
HOOK_FILES = frozenset({(".claude", "settings.json"), (".codex", "hooks.json")})
READ_MAX = 1 << 20  # bytes; a bigger "settings" file is no file tether wrote


class Owned:
    """``Owned(roots)(path)``: whether ``path`` is tether's own; ``roots`` are the state directory and the
    runbook (a folder or a file; symlinks resolved)."""

    def __init__(self, roots: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = tuple(os.path.realpath(r) for r in roots)

    def __call__(self, path: str) -> bool:
        real = os.path.realpath(path)
        if any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots):
            return True
        name = os.path.basename(real)
        if name == SIDECAR:
            return True
        return (os.path.basename(os.path.dirname(real)), name) in HOOK_FILES and holds_our_hooks(real)

    def drop(self, paths: Iterable[str]) -> list[str]:
        """``paths`` without tether's own."""
        return [p for p in paths if not self(p)]


def holds_our_hooks(path: str) -> bool:
    """Whether the settings file at ``path`` has at least one of tether's hook entries."""
    try:
        with open(path, "rb") as f:
            raw = f.read(READ_MAX + 1)
        data: Any = json.loads(raw) if len(raw) <= READ_MAX else None
    except (OSError, ValueError):
        return False
    hooks = data.get("hooks") if isinstance(data, dict) else None
    if not isinstance(hooks, dict):
        return False
    return any(
        is_ours(h)
        for groups in hooks.values() if isinstance(groups, list)
        for group in groups if isinstance(group, dict) and isinstance(group.get("hooks"), list)
        for h in group["hooks"]
    )
