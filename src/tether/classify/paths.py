"""Path knowledge: normalisation, protected globs, control, secret, auth and start-up files.

Everything here works on strings only (no filesystem access, symlinks are not resolved). Paths whose
text is only partly known (a ``PH`` placeholder marks the run-time parts) or that contain glob
characters are checked against every sensitive name the unknown part could stand for.
"""

from __future__ import annotations

import os.path
import re
from typing import Final

from tether.vocabulary import DEFAULT_PROTECTED_PATHS

#: Marks a piece of shell text that is only known at run time (an expansion, a substitution).
PH: Final = "\x00"

_MAGIC: Final = frozenset("*?[")

#: Directory names whose contents belong to the agent's hook configuration (tether.control).
_CONTROL_DIRS: Final = frozenset({".claude", ".codex"})
_CONTROL_FILES: Final = frozenset({".claude.json", ".gitconfig"})

_SECRET_NAMES: Final = frozenset(
    {
        ".env",
        ".envrc",
        ".netrc",
        "_netrc",
        ".pgpass",
        ".my.cnf",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".vault-token",
        ".htpasswd",
        "credentials",
        "credentials.json",
        "credentials.csv",
        ".terraformrc",
        "secrets.yaml",
        "secrets.yml",
        "secrets.json",
        "secrets.toml",
        "secret.yaml",
        "secret.yml",
        "secret.json",
        "shadow",
        "gshadow",
    }
)
_SECRET_SUFFIXES: Final = (
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".kdbx",
    ".tfstate",
    ".tfstate.backup",
    ".secret",
    ".secrets",
)
_SECRET_DIRS: Final = frozenset({"secrets", ".gnupg", ".password-store"})
#: Directories whose contents, taken whole (``tar ~/.ssh``, ``cp -r ~/.aws``), are secrets.
_SECRET_WHOLE: Final = frozenset({".ssh", ".aws", ".azure", ".kube", ".docker", "gcloud", ".gnupg", ".password-store",
                                  "secrets", ".vault-token"})
_SECRET_PAIRS: Final = frozenset(
    {
        (".docker", "config.json"),
        (".kube", "config"),
        ("gh", "hosts.yml"),
        ("private", ""),
    }
)
_ENV_HARMLESS: Final = frozenset({"example", "sample", "template", "dist", "default", "defaults", "schema"})
_KEY_PREFIXES: Final = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")

_AUTH_NAMES: Final = frozenset({"authorized_keys", "authorized_keys2", "codeowners", "sudoers"})
_AUTH_ETC: Final = frozenset({"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/ssh/sshd_config"})
_AUTH_ETC_DIRS: Final = ("/etc/sudoers.d/", "/etc/pam.d/")

_STARTUP_NAMES: Final = frozenset(
    {
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".profile",
        ".zshrc",
        ".zprofile",
        ".zshenv",
        ".zlogin",
        ".inputrc",
        "config.fish",
        "crontab",
    }
)
_STARTUP_PREFIXES: Final = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/cron",
    "/etc/systemd/",
    "/etc/init.d/",
    "/etc/rc.local",
    "/etc/ld.so.preload",
    "/var/spool/cron",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/bin/",
    "/sbin/",
)
_STARTUP_DIRS: Final = frozenset({"launchagents", "launchdaemons", "autostart"})

#: Quick screen: a path none of whose segments is in ``_ANY_NAME`` (and that has no sensitive prefix,
#: suffix or root) is neither control, secret, auth nor a start-up file.
_ANY_NAME: Final = frozenset(
    _CONTROL_DIRS
    | _CONTROL_FILES
    | _SECRET_NAMES
    | _SECRET_DIRS
    | _AUTH_NAMES
    | _STARTUP_NAMES
    | _STARTUP_DIRS
    | _SECRET_WHOLE
    | {".git", ".docker", ".kube", "gh", "ssl", "systemd", "git", ".ssh"}
)
_ANY_PREFIX: Final = (".env.", *_KEY_PREFIXES)
_ANY_ROOT: Final = ("/etc/", "/usr/", "/bin/", "/sbin/", "/var/spool")

#: Names a wildcard or run-time part of a path is tested against.
_SENSITIVE: Final = (
    ".claude",
    ".codex",
    ".git",
    "hooks",
    "config",
    ".claude.json",
    ".gitconfig",
    "settings.json",
    "settings.local.json",
    ".env",
    ".env.local",
    ".envrc",
    "secrets",
    ".ssh",
    "id_rsa",
    "id_ed25519",
    "authorized_keys",
    ".aws",
    "credentials",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".kube",
    ".docker",
    "config.json",
    ".gnupg",
    ".git-credentials",
    "server.key",
    "key.pem",
    ".github",
    "workflows",
    "codeowners",
    ".bashrc",
    ".zshrc",
    ".profile",
    "sudoers",
)


class PathInfo:
    """What a normalised path is: protected, control, secret, auth or a start-up file."""

    __slots__ = ("auth", "control", "path", "protected", "secret", "startup", "tether")

    def __init__(self, path: str) -> None:
        self.path = path
        self.protected = False
        self.control = False
        #: one of tether's own files (the context's control entries: state dir, runbook), read or written
        self.tether = False
        self.secret = False
        self.auth = False
        self.startup = False


def has_magic(s: str) -> bool:
    return "*" in s or "?" in s or "[" in s


def expand_home(raw: str, home: str) -> str:
    if raw.startswith("~"):
        if raw == "~" or raw.startswith("~/"):
            return home + raw[1:]
        head, sep, tail = raw.partition("/")
        return "/home/" + head[1:] + sep + tail
    return raw


def normalize(raw: str, cwd: str, home: str) -> str:
    """Absolute, normalised path for ``raw`` (``~`` expanded, relative to ``cwd``)."""
    p = expand_home(raw, home) if raw[:1] == "~" else raw
    if p[:1] != "/":
        p = (cwd if cwd != "/" else "") + "/" + p
    if "/." in p or "//" in p or (p.endswith("/") and p != "/"):
        p = os.path.normpath(p)
        if p.startswith("//"):
            p = "/" + p.lstrip("/")
    return p


# --------------------------------------------------------------------------------------- categories


def _is_secret(segs: list[str]) -> bool:
    base = segs[-1]
    if base in _SECRET_NAMES or base.endswith(_SECRET_SUFFIXES):
        return True
    if base.startswith(".env."):
        return base[5:] not in _ENV_HARMLESS
    if base.startswith(_KEY_PREFIXES):
        return not base.endswith(".pub")
    n = len(segs)
    for i in range(n - 1):
        s = segs[i]
        if s in _SECRET_DIRS:
            return True
        if (s, segs[i + 1]) in _SECRET_PAIRS:
            return True
        if s == "ssl" and segs[i + 1] == "private":
            return True
    return base in _SECRET_WHOLE


def _is_control(segs: list[str], low: str) -> bool:
    if segs[-1] in _CONTROL_FILES:
        return True
    n = len(segs)
    for i in range(n):
        s = segs[i]
        if s in _CONTROL_DIRS:
            return True
        if s == ".git" and i + 1 < n and segs[i + 1] in ("hooks", "config"):
            return True
    return low.startswith("/etc/claude-code") or low.endswith("/.config/git/config")


def _is_auth(segs: list[str], low: str) -> bool:
    if segs[-1] in _AUTH_NAMES or low in _AUTH_ETC:
        return True
    return low.startswith(_AUTH_ETC_DIRS)


def _is_startup(segs: list[str], low: str) -> bool:
    if segs[-1] in _STARTUP_NAMES or low.startswith(_STARTUP_PREFIXES):
        return True
    if len(segs) > 1 and segs[-2] == ".ssh" and segs[-1] in ("config", "rc", "environment"):
        return True
    return not _STARTUP_DIRS.isdisjoint(segs) or ("systemd" in segs and ".config" in segs)


# ------------------------------------------------------------------------------------------- globs


# ------------------------------------------------------------------------------------------- globs


def _glob_regex(glob: str) -> str:
    """A gitignore-ish glob as a regular expression over a ``/``-separated path (no anchors)."""
    segs: list[str] = []
    for x in glob.split("/"):
        if x and x != "." and not (x == "**" and segs and segs[-1] == "**"):
            while "***" in x:
                x = x.replace("***", "**")
            segs.append(x if x == "**" else x.replace("**", "*"))
    out: list[str] = []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "**":
            # "a/**" also matches "a" itself; "**/b" matches "b" at any depth.
            if last:
                out.append("(?:/.*)?" if out else ".*")
            else:
                out.append(("/" if out and not out[-1].endswith("/)*") else "") + "(?:[^/]*/)*")
            continue
        part: list[str] = []
        j = 0
        while j < len(seg):
            c = seg[j]
            if c == "*":
                part.append("[^/]*")
            elif c == "?":
                part.append("[^/]")
            elif c == "[":
                k = seg.find("]", j + 2)
                if k < 0:
                    part.append("\\[")
                else:
                    body = seg[j + 1 : k]
                    if body.startswith("!"):
                        body = "^" + body[1:]
                    part.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
                    j = k
            else:
                part.append(re.escape(c))
            j += 1
        sep = "" if (not out or out[-1].endswith("/)*")) else "/"
        out.append(sep + "".join(part))
    return "".join(out)


def _split(p: str) -> list[str]:
    return [s for s in p.split("/") if s and s != "."]


class GlobSet:
    """Protected globs compiled to two regular expressions (relative and absolute), once per
    classification, or once at import for the default list."""

    __slots__ = ("abs_prefixes", "abs_rx", "needles", "rel_prefixes", "rel_rx")

    def __init__(self, globs: tuple[str, ...]) -> None:
        rel: list[str] = []
        absolute: list[str] = []
        rel_prefixes: list[tuple[str, ...]] = []
        abs_prefixes: list[tuple[str, ...]] = []
        needles: list[str] | None = []
        for g in globs:
            if not isinstance(g, str) or not g.strip("/").strip():
                continue
            low = g.lower().replace(PH, "")
            # A substring every match must contain: the longest literal run of the glob.
            chunks = [c for c in re.split(r"\*\*|[*?]|\[[^]]*\]|/", low) if c]
            if needles is not None and chunks:
                needles.append(max(chunks, key=len))
            else:
                needles = None
            literal: list[str] = []
            for seg in _split(low):
                if seg == "**" or has_magic(seg):
                    break
                literal.append(seg)
            if low.startswith("/"):
                absolute.append(_glob_regex(low))
                abs_prefixes.append(tuple(literal))
            else:
                rel.append(_glob_regex(low))
                rel_prefixes.append(tuple(literal))
        # A relative glob matches at any depth below cwd: the path given is relative to cwd.
        self.rel_rx = re.compile("(?:.*/)?(?:" + "|".join(f"(?:{r})" for r in rel) + ")") if rel else None
        self.abs_rx = re.compile("/(?:" + "|".join(f"(?:{r})" for r in absolute) + ")") if absolute else None
        self.rel_prefixes = tuple(rel_prefixes)
        self.abs_prefixes = tuple(abs_prefixes)
        #: None when some glob has no literal part (then every path is checked).
        self.needles = tuple(dict.fromkeys(needles)) if needles is not None else None

    def match(self, low: str, cwd_low: str, delete: bool) -> bool:
        """Whether the lower-case absolute path matches a glob (relative globs: below ``cwd``).

        A glob ending in ``/**`` also matches the directory itself; with ``delete`` a path also
        matches when it is an ancestor of a glob's literal prefix (a recursive delete of ``.git``
        deletes ``.git/hooks``).
        """
        needles = self.needles
        if not delete and needles is not None:
            for nd in needles:
                if nd in low:
                    break
            else:
                return False
        rel: str | None = None
        base = cwd_low.rstrip("/")
        if low.startswith(base + "/"):
            rel = low[len(base) + 1 :]
        if self.abs_rx is not None and self.abs_rx.fullmatch(low):
            return True
        if rel and self.rel_rx is not None and self.rel_rx.fullmatch(rel):
            return True
        if delete:
            segs = _split(low)
            n = len(segs)
            cwd_segs = _split(base)
            if self.rel_prefixes and n <= len(cwd_segs) and cwd_segs[:n] == segs:
                return True
            tsegs = tuple(segs)
            for prefix in self.abs_prefixes:
                if len(prefix) >= n and prefix[:n] == tsegs:
                    return True
            if rel:
                trel = tuple(_split(rel))
                for prefix in self.rel_prefixes:
                    if len(prefix) >= len(trel) and prefix[: len(trel)] == trel:
                        return True
        return False


DEFAULT_GLOBS: Final = GlobSet(DEFAULT_PROTECTED_PATHS)


def control_entries(control: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for c in control:
        if isinstance(c, str) and c.strip():
            cl = c.lower().replace(PH, "")
            if "/." in cl or "//" in cl or cl[:1] != "/":
                cl = os.path.normpath(cl)
            cl = cl.rstrip("/")
            if cl not in ("", "."):
                out.append(cl)
    return tuple(out)


def _control_entry(low: str, control: tuple[str, ...], delete: bool) -> bool:
    for cl in control:
        if low == cl or low.startswith(cl + "/"):
            return True
        if delete and (low == "/" or cl.startswith(low.rstrip("/") + "/")):
            return True
    return False


def _bracket(cls: str) -> str:
    """A glob's ``[...]`` as a regex class; one that is not a plain class (``[z-a]``, ``[[:alpha:]]``,
    ``[a&&b]``) stands for any one character, which can only find more sensitive paths, never fewer."""
    if "[" in cls[1:] or any(op in cls for op in ("&&", "~~", "||", "--")):
        return "[^/\\n]"
    try:
        re.compile(cls)
    except re.error:
        return "[^/\\n]"
    return cls


def _bracket_end(pat: str, j: int) -> int:
    """Where the ``[`` at ``j`` closes (a ``]`` first in it is literal, ``[:alpha:]`` is inside), or -1."""
    i = j + 2 if pat[j + 1 : j + 2] in ("!", "^") else j + 1
    i += pat[i : i + 1] == "]"
    while i < len(pat):
        if pat.startswith("[:", i) and (end := pat.find(":]", i + 2)) > 0:
            i = end + 2
        elif pat[i] == "]":
            return i
        else:
            i += 1
    return -1


def _segment_regex(pat: str) -> str:
    out: list[str] = []
    j = 0
    while j < len(pat):
        c = pat[j]
        if c == "*":
            if not out or out[-1] != "[^/\\n]*":
                out.append("[^/\\n]*")
        elif c == "?":
            out.append("[^/\\n]")
        elif c == "[" and (k := _bracket_end(pat, j)) > 0:
            body = pat[j + 1 : k].replace("\\", "\\\\").replace("\n", "")
            out.append(_bracket("[" + ("^" + body[1:] if body.startswith("!") else body) + "]"))
            j = k
        else:
            out.append(re.escape(c))
        j += 1
    return "".join(out)


_SENSITIVE_BLOB: Final = "\n" + "\n".join(_SENSITIVE) + "\n"


def _candidates(low: str, extra: tuple[str, ...]) -> list[str]:
    """Concrete paths a path with wildcards or run-time parts may stand for (capped)."""
    segs = low.split("/")
    out = [low.replace(PH, "x")]
    blob = _SENSITIVE_BLOB + ("\n".join(extra) + "\n" if extra else "")
    for idx, s in enumerate(segs):
        if not (PH in s or "*" in s or "?" in s or "[" in s):
            continue
        pat = s.replace(PH, "*")
        if not pat.replace("*", "").replace("?", "").strip("[]"):
            # A wholly unknown segment could be anything: the caller reports it as unknown instead.
            continue
        wild = PH in s
        rx = re.compile("^(?:" + _segment_regex(pat) + ")$", re.M)
        for name in rx.findall(blob):
            if name.startswith(".") and not pat.startswith(".") and not wild:
                continue
            out.append("/".join([*segs[:idx], name, *segs[idx + 1 :]]).replace(PH, "x"))
        if len(out) > 48:
            break
    return out


def inspect(path: str, op: str, cwd: str, globs: tuple[GlobSet, ...], control: tuple[str, ...],
            extra_names: tuple[str, ...] = ()) -> PathInfo | None:
    """Classify an absolute, normalised path (which may contain wildcards or ``PH``).

    Returns None when the path is nothing special (the common case). ``control`` holds normalised
    lower-case control paths (``control_entries``); ``extra_names`` the names of protected and
    control globs a wildcard may stand for.
    """
    low = path.lower()
    delete = op == "delete"
    fuzzy = PH in low or "*" in low or "?" in low or "[" in low
    variants = _candidates(low, extra_names) if fuzzy else (low,)
    cwd_low = cwd.lower()
    info: PathInfo | None = None
    for v in variants:
        segs = v.split("/")
        if not segs[-1] and len(segs) > 1:
            segs = segs[:-1]
        base = segs[-1]
        control_hit = bool(control) and _control_entry(v, control, delete)
        protected = False
        for g in globs:
            if g.match(v, cwd_low, delete):
                protected = True
                break
        special = (
            not _ANY_NAME.isdisjoint(segs)
            or base.endswith(_SECRET_SUFFIXES)
            or base.startswith(_ANY_PREFIX)
            or v.startswith(_ANY_ROOT)
        )
        if not (control_hit or protected or special):
            continue
        if info is None:
            info = PathInfo(path)
        if control_hit:
            info.control = True
            info.tether = True
        if protected:
            info.protected = True
        if special:
            if _is_control(segs, v) or (delete and base == ".git"):
                info.control = True
            if _is_secret(segs):
                info.secret = True
            if _is_auth(segs, v):
                info.auth = True
            if _is_startup(segs, v):
                info.startup = True
    if info is not None and info.control:
        info.protected = True
    return info


def scratch_of(path: str, scratch: tuple[str, ...]) -> bool:
    """Whether ``path`` is in one of the agent's private temporary directories (below, not the folder itself)."""
    return any(isinstance(t, str) and t and path.startswith(t.rstrip("/") + "/") for t in scratch)


def extra_names(globs: tuple[str, ...], control: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for g in (*globs, *control):
        for s in g.lower().split("/"):
            if s and s != "**" and not has_magic(s) and s not in _SENSITIVE:
                names.append(s)
    return tuple(names)


def is_claude_settings(path: str) -> bool:
    """A file Claude Code reads its settings (hooks included) from."""
    low = path.lower()
    base = low.rsplit("/", 1)[-1]
    if base == ".claude.json" or base == "managed-settings.json":
        return True
    return base.endswith(".json") and ("/.claude/" in low or "claude-code" in low or "settings" in base)
