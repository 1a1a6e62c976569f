"""Path knowledge: normalisation, protected globs, control, secret, auth and start-up files.

Everything here works on strings only (no filesystem access, symlinks are not resolved). Paths whose
text is only partly known (a ``PH`` placeholder marks the run-time parts) or that contain glob
characters are checked against every sensitive name the unknown part could stand for.
"""

from __future__ import annotations

import os.path
from fnmatch import fnmatchcase
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

    __slots__ = ("auth", "control", "path", "protected", "secret", "startup")

    def __init__(self, path: str) -> None:
        self.path = path
        self.protected = False
        self.control = False
        self.secret = False
        self.auth = False
        self.startup = False


def has_magic(s: str) -> bool:
    return not _MAGIC.isdisjoint(s)


def expand_home(raw: str, home: str) -> str:
    if raw.startswith("~"):
        if raw == "~" or raw.startswith("~/"):
            return home + raw[1:]
        head, sep, tail = raw.partition("/")
        return "/home/" + head[1:] + sep + tail
    return raw


def normalize(raw: str, cwd: str, home: str) -> str:
    """Absolute, normalised path for ``raw`` (``~`` expanded, relative to ``cwd``)."""
    p = expand_home(raw, home)
    if not p.startswith("/"):
        p = cwd.rstrip("/") + "/" + p
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


def _seg_match(pat: str, seg: str) -> bool:
    """One glob segment against one path segment (either may hold wildcards)."""
    if pat == seg:
        return True
    if has_magic(pat):
        return fnmatchcase(seg, pat)
    if has_magic(seg) or PH in seg:
        if pat.startswith(".") and not seg.startswith(".") and PH not in seg:
            return False
        return fnmatchcase(pat, seg.replace(PH, "*"))
    return False


def _glob_match(pat: tuple[str, ...], i: int, segs: list[str], j: int) -> bool:
    np, ns = len(pat), len(segs)
    while i < np:
        p = pat[i]
        if p == "**":
            if i + 1 == np:
                return True
            return any(_glob_match(pat, i + 1, segs, k) for k in range(j, ns + 1))
        if j >= ns or not _seg_match(p, segs[j]):
            return False
        i += 1
        j += 1
    return j == ns


def _split(p: str) -> list[str]:
    return [s for s in p.split("/") if s and s != "."]


def _is_ancestor(anc: list[str] | tuple[str, ...], segs: list[str] | tuple[str, ...]) -> bool:
    n = len(anc)
    return n <= len(segs) and (n == 0 or segs[n - 1] == anc[-1]) and list(segs[:n]) == list(anc)


class _Glob:
    __slots__ = ("absolute", "magic_prefixes", "prefix", "required", "segs")

    def __init__(self, glob: str) -> None:
        g = glob.lower()
        self.absolute = g.startswith("/")
        segs = _split(g)
        if not self.absolute and segs and segs[0] != "**":
            segs = ["**", *segs]
        self.segs: tuple[str, ...] = tuple(segs)
        self.required = frozenset(s for s in segs if s != "**" and not has_magic(s))
        prefixes: list[str] = []
        for s in segs:
            if s != "**" and has_magic(s):
                lit = s[: min((s.find(c) for c in "*?[" if c in s), default=len(s))]
                if lit:
                    prefixes.append(lit)
        self.magic_prefixes = tuple(prefixes)
        lit_prefix: list[str] = []
        for s in _split(g):
            if s == "**" or has_magic(s):
                break
            lit_prefix.append(s)
        self.prefix = tuple(lit_prefix)


class GlobSet:
    """Protected globs, split once per classification (or once at import for the defaults)."""

    __slots__ = ("always", "globs", "trigger_names", "trigger_prefixes")

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.globs = tuple(_Glob(g) for g in globs if g and g.strip("/"))
        names: set[str] = set()
        prefixes: list[str] = []
        always = False
        for g in self.globs:
            if g.required:
                names.update(g.required)
            elif g.magic_prefixes:
                prefixes.extend(g.magic_prefixes)
            else:
                always = True
        #: A path can only match when one of its segments is a trigger name or starts with a prefix.
        self.trigger_names = frozenset(names)
        self.trigger_prefixes = tuple(prefixes)
        self.always = always

    def candidate(self, segs: list[str]) -> bool:
        if self.always or not self.trigger_names.isdisjoint(segs):
            return True
        prefixes = self.trigger_prefixes
        return bool(prefixes) and any(s.startswith(prefixes) for s in segs)

    def match(self, segs: list[str], cwd_segs: list[str], delete: bool) -> bool:
        """Whether the (lower-case, split, absolute) path matches one of the globs.

        A relative glob matches at any depth below ``cwd``; a glob ending in ``/**`` also matches the
        directory itself; with ``delete`` a path also matches when it is an ancestor of a glob's
        literal prefix (a recursive delete of ``.git`` deletes ``.git/hooks``).
        """
        under = _is_ancestor(cwd_segs, segs)
        rel = segs[len(cwd_segs) :] if under else []
        if delete and self._deletes_inside(segs, cwd_segs, under, rel):
            return True
        if not self.candidate(segs):
            return False
        segset = set(segs)
        for g in self.globs:
            if not g.required <= segset:
                continue
            if g.magic_prefixes and not all(any(s.startswith(p) for s in segs) for p in g.magic_prefixes):
                continue
            if g.absolute:
                if _glob_match(g.segs, 0, segs, 0):
                    return True
            elif rel and _glob_match(g.segs, 0, rel, 0):
                return True
        return False

    def _deletes_inside(self, segs: list[str], cwd_segs: list[str], under: bool, rel: list[str]) -> bool:
        """A recursive delete of ``segs`` removes something a glob's literal prefix names."""
        n = len(segs)
        if n <= len(cwd_segs) and cwd_segs[:n] == segs and any(not g.absolute for g in self.globs):
            return True
        tsegs = tuple(segs)
        trel = tuple(rel)
        for g in self.globs:
            if g.absolute:
                if len(g.prefix) >= n and g.prefix[:n] == tsegs:
                    return True
            elif under and trel and len(g.prefix) >= len(trel) and g.prefix[: len(trel)] == trel:
                return True
        return False


DEFAULT_GLOBS: Final = GlobSet(DEFAULT_PROTECTED_PATHS)


def control_entries(control: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for c in control:
        if c and c.strip():
            cl = os.path.normpath(c.lower()).rstrip("/")
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


def _candidates(low: str, extra: tuple[str, ...]) -> list[str]:
    """Concrete paths a path with wildcards or run-time parts may stand for (capped)."""
    segs = low.split("/")
    out = [low.replace(PH, "x")]
    names = _SENSITIVE + extra
    for idx, s in enumerate(segs):
        if not (has_magic(s) or PH in s):
            continue
        if not s.replace(PH, "").strip("*?[]"):
            # A wholly unknown segment could be anything: the caller reports it as unknown instead.
            continue
        pat = s.replace(PH, "*")
        for name in names:
            if name.startswith(".") and not pat.startswith(".") and PH not in s:
                continue
            if fnmatchcase(name, pat):
                out.append("/".join([*segs[:idx], name, *segs[idx + 1 :]]).replace(PH, "x"))
        if len(out) > 48:
            break
    return out


def inspect(path: str, op: str, cwd: str, globs: GlobSet, control: tuple[str, ...],
            extra_names: tuple[str, ...] = ()) -> PathInfo:
    """Classify an absolute, normalised path (which may contain wildcards or ``PH``).

    ``control`` holds normalised lower-case control paths (``control_entries``); ``extra_names``
    the names of protected and control globs a wildcard may stand for.
    """
    info = PathInfo(path)
    low = path.lower()
    delete = op == "delete"
    fuzzy = PH in low or has_magic(low)
    variants = _candidates(low, extra_names) if fuzzy else [low]
    cwd_segs: list[str] | None = None
    for v in variants:
        segs = v.split("/")
        if not segs[-1] and len(segs) > 1:
            segs = segs[:-1]
        if control and _control_entry(v, control, delete):
            info.control = True
        base = segs[-1]
        if (
            not _ANY_NAME.isdisjoint(segs)
            or base.endswith(_SECRET_SUFFIXES)
            or base.startswith(_ANY_PREFIX)
            or v.startswith(_ANY_ROOT)
        ):
            if _is_control(segs, v) or (delete and base == ".git"):
                info.control = True
            if _is_secret(segs):
                info.secret = True
            if _is_auth(segs, v):
                info.auth = True
            if _is_startup(segs, v):
                info.startup = True
        if globs.globs and (delete or globs.candidate(segs)):
            if cwd_segs is None:
                cwd_segs = _split(cwd.lower())
            if globs.match([x for x in segs if x and x != "."], cwd_segs, delete):
                info.protected = True
    if info.control:
        info.protected = True
    return info


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
