"""URL and host knowledge: parsing, credential stripping, repos, databases, webhooks, tether's API."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]", "host.docker.internal"})

#: Hosts (or host suffixes) that deliver a message to people when written to.
_MESSAGE_HOSTS: Final = frozenset(
    {
        "hooks.slack.com",
        "chat.googleapis.com",
        "hooks.zapier.com",
        "api.pushover.net",
        "ntfy.sh",
        "api.twilio.com",
        "api.sendgrid.com",
        "api.mailgun.net",
        "api.postmarkapp.com",
        "api.telegram.org",
        "events.pagerduty.com",
        "api.pagerduty.com",
        "maker.ifttt.com",
        "api.resend.com",
    }
)
_MESSAGE_PATHS: Final = (
    ("discord.com", "/api/webhooks"),
    ("discordapp.com", "/api/webhooks"),
    ("slack.com", "/api/chat."),
    ("slack.com", "/api/files."),
    ("outlook.office.com", "/webhook"),
    ("graph.microsoft.com", "/sendmail"),
    ("gmail.googleapis.com", "/send"),
)
_BILLING_HOSTS: Final = frozenset({"api.stripe.com", "api.paddle.com", "api.braintreegateway.com"})

#: Path segments of tether's decision endpoints.
_TETHER_DECIDE: Final = frozenset(
    {"approve", "deny", "decide", "decision", "decisions", "resume", "lift", "unkill", "token", "tokens"}
)
_TETHER_WRITE: Final = frozenset(
    {"approvals", "kill", "policy", "policies", "runbook", "runbooks", "agents", "runs", "hooks", "pause"}
)

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class Url:
    """A parsed URL with the credentials left out."""

    __slots__ = ("host", "path", "port", "query", "scheme", "user")

    def __init__(self, scheme: str, host: str, port: str, path: str, user: str, query: str = "") -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.user = user
        self.query = query

    @property
    def clean(self) -> str:
        """``scheme://host[:port]/path`` without user, password, query or fragment."""
        port = ":" + self.port if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"


def parse_url(text: str, default_scheme: str = "") -> Url | None:
    """Parse a URL (``default_scheme`` is assumed when it has none and looks like ``host/path``)."""
    s = text.strip()
    if not s or "\x00" in s[:1]:
        return None
    if "://" not in s:
        if not default_scheme:
            return None
        s = default_scheme + "://" + s
    try:
        parts = urlsplit(s)
        host = (parts.hostname or "").lower()
        port = str(parts.port) if parts.port else ""
    except ValueError:
        return None
    if not host and parts.scheme not in ("file", "sqlite", "sqlite3"):
        return None
    return Url(parts.scheme.lower(), host.rstrip("."), port, parts.path, parts.username or "", parts.query)


def looks_like_host(s: str) -> bool:
    """A bare ``host``, ``host:port`` or ``host/path`` (what curl accepts without a scheme)."""
    if not s or s.startswith(("-", "/", ".", "~", "@")) or "\x00" in s:
        return False
    head = s.split("/", 1)[0].split(":", 1)[0]
    if head == "localhost":
        return True
    if "." not in head or head.endswith("."):
        return False
    tld = head.rsplit(".", 1)[-1]
    return tld.isdigit() or (tld.isalpha() and 2 <= len(tld) <= 24 and not s.endswith((".json", ".txt")))


def _ipv4(host: str) -> int | None:
    """``inet_aton`` semantics: ``127.1``, ``0x7f000001`` and ``2130706433`` are all 127.0.0.1."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        nums = [int(p, 16) if p[:2] in ("0x", "0X") else int(p, 8) if len(p) > 1 and p[0] == "0" else int(p)
                for p in parts]
    except ValueError:
        return None
    *head, last = nums
    if any(not 0 <= n <= 255 for n in head) or last < 0 or last >= 256 ** (5 - len(nums)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return (value << (8 * (5 - len(nums)))) + last


def is_local(host: str) -> bool:
    """Loopback or unspecified address, however it is spelled."""
    h = host.strip("[]").lower()
    if h in _LOCAL_HOSTS or h.endswith(".localhost") or h.startswith("::ffff:127.") or h == "::ffff:0.0.0.0":
        return True
    if h and (h[0].isdigit()):
        v = _ipv4(h)
        return v is not None and (v >> 24 == 127 or v == 0)
    return False


def is_message(u: Url) -> bool:
    h = u.host
    if h in _MESSAGE_HOSTS or h.endswith(".webhook.office.com"):
        return True
    p = u.path.lower()
    return any((h == host or h.endswith("." + host)) and p.startswith(path) for host, path in _MESSAGE_PATHS)


def is_billing(u: Url) -> bool:
    return u.host in _BILLING_HOSTS


def tether_control(u: Url, write: bool) -> bool:
    """A call to tether's own API that decides, approves, resumes or lifts something."""
    if not (is_local(u.host) or "tether" in u.host):
        return False
    segs = {s for s in u.path.lower().split("/") if s}
    if u.query:
        q = u.query.lower().replace("&", "=").replace("/", "=")
        segs.update(w for w in q.split("=") if w)
    if not _TETHER_DECIDE.isdisjoint(segs):
        return True
    return write and ("tether" in u.host or "tether" in segs or not _TETHER_WRITE.isdisjoint(segs))


def repo_from_remote(text: str) -> str | None:
    """``github.com/owner/name`` for a forge remote, else the URL without credentials."""
    s = text.strip()
    if not s or "\x00" in s:
        return None
    if "://" not in s:
        # scp-like: [user@]host:owner/name(.git)
        at = s.find("@")
        colon = s.find(":")
        if colon <= 0 or "/" in s[:colon]:
            return None
        host = s[at + 1 : colon].lower() if 0 <= at < colon else s[:colon].lower()
        path = s[colon + 1 :]
    else:
        u = parse_url(s)
        if u is None:
            return None
        host, path = u.host, u.path
        if u.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return u.clean
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if host in ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org") or "/" in path:
        return f"{host}/{path}"
    return f"{host}/{path}" if path else host


def host_of_remote(text: str) -> str | None:
    r = repo_from_remote(text)
    if r is None:
        return None
    if "://" in r:
        u = parse_url(r)
        return u.host if u else None
    return r.split("/", 1)[0]


_DB_SCHEMES: Final = frozenset(
    {
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "mongodb",
        "mongodb+srv",
        "redis",
        "rediss",
        "sqlite",
        "sqlite3",
        "mssql",
        "sqlserver",
        "clickhouse",
        "cockroachdb",
        "snowflake",
        "oracle",
    }
)


_DB_ALIASES: Final = {"postgres": "postgresql", "pg": "postgresql", "mariadb": "mysql", "sqlite3": "sqlite"}


def db_account(text: str) -> str | None:
    """``db:<scheme>://<host>/<db>`` for a database URL (credentials dropped), else None."""
    s = text.strip()
    scheme = s.split("://", 1)[0].lower() if "://" in s else ""
    base = scheme.split("+", 1)[0] if scheme != "mongodb+srv" else scheme
    base = _DB_ALIASES.get(base, base)
    if base not in _DB_SCHEMES and base not in _DB_ALIASES.values():
        return None
    u = parse_url(s)
    if u is None:
        return None
    db = u.path.strip("/")
    if base.startswith("sqlite"):
        return f"db:sqlite://{u.path}"
    return f"db:{base}://{u.host}/{db}"
