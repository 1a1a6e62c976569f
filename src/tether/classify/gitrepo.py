"""What a repository's own files say about a push: its remotes' URLs, push settings and current branch.

Read at check time from the repository that holds the command's working directory (``.git/config`` and
``.git/HEAD``, a worktree's ``gitdir:`` file followed), each file cached by path, mtime, size and inode.
Only the repository's own config is read (not ``~/.gitconfig`` nor included files): a remote it does not
name stays unresolved, as before.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Final

_MAX_BYTES: Final = 256 * 1024
_MAX_CACHED: Final = 256
_MAX_DEPTH: Final = 64
_lock: Final = threading.Lock()
_files: dict[str, tuple[tuple[int, int, int], str]] = {}


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository's settings that decide where a push goes (keys lower-cased, subsections as written)."""

    config: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    branch: str = ""  # the current branch ("" when detached or unknown)

    def get(self, section: str, sub: str, key: str) -> str | None:
        vals = self.config.get((section, sub, key))
        return vals[-1] if vals else None

    def all(self, section: str, sub: str, key: str) -> list[str]:
        return self.config.get((section, sub, key), [])

    def remote_urls(self, name: str, push: bool = True) -> list[str] | None:
        """The URLs a push to remote ``name`` goes to (rewritten by url.*.insteadOf); None if not configured."""
        urls = (self.all("remote", name, "pushurl") if push else []) or self.all("remote", name, "url")
        if not urls:
            return None
        return [self.rewrite(u, push) for u in urls]

    def rewrite(self, url: str, push: bool = True) -> str:
        best, base = "", ""
        for (section, sub, key), vals in self.config.items():
            if section != "url" or key not in ("insteadof", "pushinsteadof") or (key == "pushinsteadof" and not push):
                continue
            for v in vals:
                if url.startswith(v) and len(v) > len(best):
                    best, base = v, sub
        return base + url[len(best) :] if best else url

    def push_remote(self) -> str:
        """The remote a bare ``git push`` uses."""
        b = self.branch
        return ((self.get("branch", b, "pushremote") if b else None) or self.get("remote", "", "pushdefault")
                or (self.get("branch", b, "remote") if b else None) or "origin")


def _read(path: str) -> str | None:
    """A small text file, cached by (mtime, size, inode); None when missing or unreadable."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _files.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    if st.st_size > _MAX_BYTES or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(_MAX_BYTES)
    except (OSError, ValueError):
        return None
    with _lock:
        if len(_files) >= _MAX_CACHED:
            _files.clear()
        _files[path] = (key, text)
    return text


def _git_dir(cwd: str) -> str | None:
    d = cwd
    for _ in range(_MAX_DEPTH):
        dot = os.path.join(d, ".git")
        if os.path.isdir(dot):
            return dot
        text = _read(dot)
        if text is not None and text.startswith("gitdir:"):
            g = text[7:].strip()
            return os.path.normpath(os.path.join(d, g))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent
    return None


def find(cwd: str) -> Repo | None:
    """The repository holding ``cwd`` (an absolute path), or None."""
    if not cwd.startswith("/") or "\x00" in cwd:
        return None
    gd = _git_dir(cwd)
    if gd is None:
        return None
    common = _read(os.path.join(gd, "commondir"))
    cd = os.path.normpath(os.path.join(gd, common.strip())) if common else gd
    head = _read(os.path.join(gd, "HEAD")) or ""
    branch = head[16:].strip() if head.startswith("ref: refs/heads/") else ""
    return Repo(parse_config(_read(os.path.join(cd, "config")) or ""), branch)


def parse_config(text: str) -> dict[tuple[str, str, str], list[str]]:
    """git's config syntax, enough for remotes, branches, url rewrites and push settings."""
    out: dict[tuple[str, str, str], list[str]] = {}
    section, sub = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            head = line[1 : line.find("]")] if "]" in line else line[1:]
            name, _, rest = head.partition(" ")
            if rest.strip().startswith('"'):
                section, sub = name.lower(), rest.strip().strip('"').replace('\\"', '"').replace("\\\\", "\\")
            elif "." in name:
                section, _, sub = name.partition(".")
                section, sub = section.lower(), sub.lower()
            else:
                section, sub = name.lower(), ""
            tail = line[line.find("]") + 1 :].strip() if "]" in line else ""
            if not tail or tail[0] in "#;":
                continue
            line = tail
        key, eq, value = line.partition("=")
        out.setdefault((section, sub, key.strip().lower()), []).append(_value(value) if eq else "true")
    return out


def _value(v: str) -> str:
    res: list[str] = []
    quoted = False
    i = 0
    v = v.strip()
    while i < len(v):
        c = v[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and i + 1 < len(v):
            i += 1
            res.append({"n": "\n", "t": "\t"}.get(v[i], v[i]))
        elif c in "#;" and not quoted:
            break
        else:
            res.append(c)
        i += 1
    return "".join(res).strip()
