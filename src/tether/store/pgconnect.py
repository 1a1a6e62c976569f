"""What a PostgreSQL store URL names, and one line for each way reaching it fails.

URL: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&other-libpq-params]``. ``schema`` is
ours (libpq has no such parameter): the store's tables live in that schema (created if missing) and
every connection runs with ``search_path`` set to it, so several stores can share one database.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tether.errors import StoreError

CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
POOL_TIMEOUT = 15.0  # seconds a read waits for one of the store's connections
POOL_SIZE = 8  # read connections per store, at most
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # lower case: search_path folds unquoted names


class Target:
    """What a ``postgresql://`` URL names: the libpq connection string (without our ``schema``),
    the schema, and a password-free description for messages."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [v for k, v in query if k == "schema"]
        rest = [(k, v) for k, v in query if k != "schema"]
        self.schema = schemas[-1] if schemas else None
        try:
            params = conninfo_to_dict(urlunsplit(parts._replace(query=urlencode(rest))))
        except psycopg.Error as err:
            raise StoreError(f"{_mask(url)}: not a valid PostgreSQL URL ({_first_line(err)})") from None
        self.password = str(params.get("password") or "")
        self.user = str(params.get("user") or os.environ.get("PGUSER") or _login())
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or self.user)
        self.host, self.port = host, port
        self.where = f"{host}:{port}/{self.dbname}" + (f"?schema={self.schema}" if self.schema else "")
        self.url = _mask(url)
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise StoreError(
                f"{self.where}: schema {self.schema!r} is not a plain identifier; "
                "use lower-case letters, digits and underscores (at most 63), not starting with a digit"
            )
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        options = str(params.get("options") or "")
        if self.schema is not None:
            options = f"{options} -csearch_path={self.schema}".strip()
        if options:
            params["options"] = options
        self.params = params

    def conninfo(self, *extra_options: str, **extra: Any) -> str:
        params = dict(self.params, **extra)
        options = " ".join([str(params.get("options") or ""), *extra_options]).strip()
        if options:
            params["options"] = options
        return make_conninfo("", **params)

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if len(self.password) >= 3 else text


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "postgres"


def _mask(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    for prefix in ("connection failed: ",):
        text = text.removeprefix(prefix)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def explain_connect(t: Target, err: BaseException) -> StoreError:
    """One line for a connection that could not be opened: what is wrong and what to do."""
    text = t.scrub(str(err))
    low = text.lower()
    if "connection refused" in low:
        hint = ("connection refused; is PostgreSQL running there and accepting TCP connections? "
                "check the host and port in the store URL (host.store or TETHER_STORE)")
    elif "password authentication failed" in low or "no password supplied" in low or (
        "role" in low and "does not exist" in low
    ) or "authentication failed" in low or "pg_hba.conf" in low:
        hint = (f"authentication failed for user {t.user!r}; check the user and password in the store URL "
                "(or PGPASSWORD / ~/.pgpass) and the server's pg_hba.conf")
    elif "database" in low and "does not exist" in low:
        hint = (f"database {t.dbname!r} does not exist; create it "
                f"(`createdb -h {t.host} -p {t.port} -U {t.user} {t.dbname}`) or fix the store URL")
    elif "resolve host" in low or "translate host name" in low or "name or service not known" in low:
        hint = f"cannot resolve host {t.host!r}; check the host in the store URL"
    elif "timeout expired" in low or "timed out" in low:
        hint = "no answer in time; check the host, the port and any firewall between"
    elif "too many" in low and "connection" in low:
        hint = "the server has no connection slots left; close idle clients or raise max_connections"
    else:
        hint = f"cannot connect: {_first_line(psycopg.OperationalError(text))}"
    return StoreError(f"{t.where}: {hint}")


def explain(t: Target, err: BaseException, writing: bool = True) -> StoreError:
    """One line for a failure on an open connection."""
    state = getattr(err, "sqlstate", None) or ""
    if state == "53100":
        hint = "the database server's disk is full; free space there and try again (nothing was written)"
    elif state == "55P03":
        hint = "another tether process held the write lock too long; is a daemon hung? (`tether status`)"
    elif state in ("42P01", "3F000"):
        hint = "no tether store in this database/schema yet; start the daemon (`tether up`) to create it"
    elif state == "25006":
        hint = "the server is read-only (a standby?); point the store URL at the primary"
    elif state == "53300":
        hint = "the server has no connection slots left; close idle clients or raise max_connections"
    elif state.startswith("08") or state.startswith("57P") or isinstance(err, psycopg.OperationalError):
        hint = (f"lost the connection to PostgreSQL ({t.scrub(_first_line(err))}); "
                + ("the write was not confirmed; " if writing else "")
                + "check the server and try again")
    else:
        hint = t.scrub(_first_line(err))
    return StoreError(f"{t.where}: {hint}")
