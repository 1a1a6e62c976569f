"""Database clients and the SQL (and redis / mongo) they run: DROP, DELETE, TRUNCATE, GRANT, ..."""

from __future__ import annotations

import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.urls import db_account

_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\\\S+|\.[a-z]+|!")

_READ_FIRST: Final = frozenset(
    {"SELECT", "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "BEGIN", "COMMIT", "ROLLBACK", "END", "START",
     "SET", "USE", "SAVEPOINT", "RELEASE", "LISTEN", "UNLISTEN", "FETCH", "DECLARE", "CLOSE", "PREPARE",
     "DEALLOCATE", "CHECKPOINT", "WAIT", "HELP", "STATUS", "ABORT", "LIST", "GET", "DISCARD", "RESET"}
)
_WRITE_FIRST: Final = frozenset(
    {"INSERT", "UPSERT", "REPLACE", "MERGE", "COPY", "LOAD", "CREATE", "CALL", "EXEC", "EXECUTE", "DO", "LOCK",
     "VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "REFRESH", "COMMENT", "SECURITY", "IMPORT", "ATTACH", "DETACH",
     "RENAME", "OPTIMIZE", "KILL", "SHUTDOWN", "INSTALL", "UNINSTALL", "HANDLER", "NOTIFY", "SELECT_INTO",
     "UNDROP", "PUT", "REMOVE", "UNLOAD", "EXPORT", "BACKUP", "RESTORE", "DBCC", "BULK"}
)
_META_READ: Final = frozenset(
    {"\\d", "\\dt", "\\dn", "\\df", "\\dv", "\\di", "\\ds", "\\du", "\\dx", "\\dp", "\\l", "\\list", "\\c",
     "\\connect", "\\conninfo", "\\x", "\\timing", "\\q", "\\?", "\\h", "\\pset", "\\a", "\\t", "\\echo",
     "\\encoding", "\\set", "\\d+", "\\dt+", "\\l+", "\\dn+", "\\g", "\\gx", "\\watch", "\\sf", "\\sv",
     ".tables", ".schema", ".headers", ".mode", ".dump", ".indexes", ".databases", ".help", ".quit", ".exit",
     ".width", ".timer", ".show", ".nullvalue", ".separator", ".print", ".fullschema", ".dbinfo", ".lint",
     ".stats", ".eqp", ".expert", ".explain", ".changes", ".bail", ".echo", ".header", ".parameter"}
)
_META_EXEC: Final = frozenset(
    {"\\!", ".shell", ".system", "\\i", "\\include", "\\ir", ".read", "\\o", "\\out", ".output", ".once",
     "\\copy", ".import", ".save", ".backup", ".restore", ".open", ".load", "\\w", "\\write", "system",
     "source", "\\.", ".clone", ".excel", ".recover"}
)


def _strip_sql(sql: str) -> str:
    """SQL without comments and string literals (so keywords inside strings don't count)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if (c == "-" and sql.startswith("--", i)) or (c == "#" and (i == 0 or sql[i - 1] in " \n\t;")):
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
            continue
        if c in ("'", '"', "`"):
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:
                        end += 2
                        continue
                    break
                if sql[end] == "\\" and c == "'":
                    end += 1
                end += 1
            out.append(" x " if c == "'" else " ident ")
            i = end + 1
            continue
        if c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                end = sql.find(tag, i + len(tag))
                body = sql[i + len(tag) : end if end >= 0 else n]
                out.append(" " + body + " ")
                i = n if end < 0 else end + len(tag)
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _statements(sql: str) -> list[list[str]]:
    stmts: list[list[str]] = []
    for line_block in _strip_sql(sql).split(";"):
        # psql / sqlite meta-commands are line based.
        chunk: list[str] = []
        for line in line_block.split("\n"):
            s = line.strip()
            if (s.startswith(("\\", ".")) and s[1:2].isalpha()) or s.startswith(("\\!", "\\?")):
                if chunk:
                    stmts.append(chunk)
                    chunk = []
                stmts.append([w if w.startswith(("\\", ".")) else w.upper() for w in _WORD.findall(s)])
                continue
            chunk.extend(w.upper() if not w.startswith(("\\", ".")) else w for w in _WORD.findall(s))
        if chunk:
            stmts.append(chunk)
    return stmts


def sql_effects(scan: Scan, sql: str, tool: str, text: str) -> bool:
    """Add the classes of SQL text; True when it only reads."""
    if not sql.strip():
        scan.add("repo.read", f"{tool} with no SQL", text)
        return True
    dynamic = PH in sql
    read_only = True
    for words in _statements(sql.replace(PH, " x ")):
        if not words:
            continue
        first = words[0]
        wset = set(words)
        lower_first = first.lower()
        if lower_first in _META_EXEC or first in ("SYSTEM", "SOURCE") or first.startswith("\\!"):
            scan.add("unknown", f"{tool} {first.lower()} runs a file, a shell command or writes a file", text)
            read_only = False
        elif first.startswith(("\\", ".")):
            if lower_first not in _META_READ:
                scan.add("unknown", f"{tool} meta-command {first}", text)
                read_only = False
        elif first in ("GRANT", "REVOKE") or (
            first in ("CREATE", "ALTER", "DROP", "RENAME") and wset & {"USER", "ROLE", "LOGIN", "GROUP", "POLICY"}
            and (words[1:2] and words[1] in ("USER", "ROLE", "GROUP", "POLICY", "LOGIN"))
        ):
            if "PASSWORD" in wset or "IDENTIFIED" in wset:
                scan.add("credentials.rotate", f"{tool} changes a database password", text)
            else:
                scan.add("auth.modify", f"{tool} {first} changes database users or privileges", text)
            read_only = False
        elif first in ("DROP", "TRUNCATE", "DELETE", "PURGE") or (first == "ALTER" and "DROP" in wset):
            scan.add("data.delete", f"{tool} {first} deletes data", text)
            read_only = False
        elif first == "UPDATE":
            if "WHERE" in wset:
                scan.add("unknown", f"{tool} UPDATE modifies rows", text)
            else:
                scan.add("data.delete", f"{tool} UPDATE without WHERE overwrites every row", text)
            read_only = False
        elif first == "WITH":
            if wset & {"DELETE", "TRUNCATE"}:
                scan.add("data.delete", f"{tool} WITH ... DELETE deletes data", text)
                read_only = False
            elif wset & {"INSERT", "UPDATE", "MERGE"}:
                scan.add("unknown", f"{tool} WITH ... writes data", text)
                read_only = False
        elif first == "EXPLAIN":
            if "ANALYZE" in wset and wset & {"DELETE", "UPDATE", "INSERT", "DROP", "TRUNCATE"}:
                scan.add("data.delete" if wset & {"DELETE", "DROP", "TRUNCATE"} else "unknown",
                         f"{tool} EXPLAIN ANALYZE executes the statement", text)
                read_only = False
        elif first == "FLUSH":
            scan.add("auth.modify" if "PRIVILEGES" in wset else "unknown", f"{tool} FLUSH", text)
            read_only = False
        elif first == "PRAGMA":
            if "=" in sql or ("(" in sql and "WRITABLE" in wset):
                scan.add("unknown", f"{tool} PRAGMA changes settings", text)
                read_only = False
        elif first == "SELECT":
            if wset & {"OUTFILE", "DUMPFILE"} or ("INTO" in wset and "FROM" in wset and
                                                  words.index("INTO") < words.index("FROM")):
                scan.add("unknown", f"{tool} SELECT INTO writes data", text)
                read_only = False
            elif wset & {"PG_READ_FILE", "PG_READ_BINARY_FILE", "LO_IMPORT", "LO_EXPORT", "LOAD_FILE",
                         "PG_TERMINATE_BACKEND", "DBLINK_EXEC", "XP_CMDSHELL", "SET_CONFIG", "PG_WRITE_FILE"}:
                scan.add("unknown", f"{tool} SELECT calls a function with side effects", text)
                read_only = False
        elif first in _READ_FIRST:
            pass
        elif first in _WRITE_FIRST or first == "ALTER":
            if "PROGRAM" in wset:
                scan.add("unknown", f"{tool} {first} ... PROGRAM runs a shell command", text)
            else:
                scan.add("unknown", f"{tool} {first} changes the database", text)
            read_only = False
        else:
            scan.add("unknown", f"{tool} statement {first}", text)
            read_only = False
    if dynamic and read_only:
        scan.add("unknown", f"{tool} SQL partly known only at run time", text)
        return False
    if read_only:
        scan.add("repo.read", f"{tool} runs a read-only query", text)
    return read_only


def _stdin_sql(scan: Scan, cmd: Cmd, tool: str) -> bool:
    stdin = cmd.stdin
    if stdin is None:
        scan.add("unknown", f"{tool} opens an interactive session", cmd.text)
        return False
    if PH in stdin and not stdin.replace(PH, "").strip():
        scan.add("unknown", f"{tool} runs SQL piped in from another command", cmd.text)
        return False
    return sql_effects(scan, stdin, tool, cmd.text)


def _account(scan: Scan, scheme: str, url: str | None, host: str | None, db: str | None) -> None:
    if url:
        acc = db_account(url)
        if acc:
            scan.resource("account", acc)
            u = scan.parse_url(url)
            if u and u.host:
                scan.host(u.host)
            return
    if host and PH not in host:
        scan.host(host)
    h = host or "localhost"
    d = db or ""
    if PH not in h and PH not in d:
        scan.resource("account", f"db:{scheme}://{h.lower()}/{d}")


def _psql(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "cdfhpUvoLPFRT",
              frozenset({"--command", "--dbname", "--file", "--host", "--port", "--username", "--set",
                         "--variable", "--output", "--log-file", "--pset", "--field-separator",
                         "--record-separator", "--table-attr"}))
    dbname = o.get("-d", "--dbname") or (o.pos[0] if o.pos else None)
    url = dbname if dbname and "://" in dbname else None
    _account(scan, "postgresql", url, o.get("-h", "--host"), None if url else dbname)
    for out in o.all("-o", "--output", "-L", "--log-file"):
        scan.path(out, "write", text)
    if o.has("-l", "--list", "-V", "--version", "--help"):
        scan.add("repo.read", "psql lists databases", text)
        return
    sqls = o.all("-c", "--command")
    files = [f for f in o.all("-f", "--file") if f != "-"]
    for f in files:
        scan.path(f, "read", text)
        scan.add("unknown", f"psql runs SQL from {f}", text)
    for s in sqls:
        sql_effects(scan, s, "psql", text)
    if not sqls and not files:
        _stdin_sql(scan, cmd, "psql")


def _mysql(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    args = [a for a in cmd.args if not (a.startswith("-p") and not a.startswith("--")) and
            not a.startswith("--password")]
    o = parse(args, "ehuPDSB", frozenset({"--execute", "--host", "--user", "--port", "--database", "--socket",
                                           "--defaults-file", "--defaults-extra-file", "--init-command"}))
    db = o.get("-D", "--database") or (o.pos[0] if o.pos else None)
    _account(scan, "mysql", None, o.get("-h", "--host"), db)
    sqls = o.all("-e", "--execute") + o.all("--init-command")
    for s in sqls:
        sql_effects(scan, s, cmd.name, text)
    if not sqls:
        if o.has("-V", "--version", "--help", "-?"):
            scan.add("repo.read", f"{cmd.name} --version", text)
        else:
            _stdin_sql(scan, cmd, cmd.name)


def _sqlite(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    # sqlite3 takes single-dash long options: parse() sees them as clusters, so pick them by hand.
    extra: list[str] = []
    pos: list[str] = []
    args = cmd.args
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-cmd", "--cmd"):
            extra.append(args[i + 1] if i + 1 < len(args) else "")
            i += 2
        elif a in ("-init", "--init", "-separator", "-newline", "-nullvalue", "-vfs", "-mmap", "-pagecache",
                   "-lookaside", "-maxsize", "-heap"):
            if a.lstrip("-") == "init" and i + 1 < len(args):
                scan.path(args[i + 1], "read", text)
                scan.add("unknown", "sqlite3 -init runs a file", text)
            i += 2
        elif a.startswith("-") and len(a) > 1:
            if a.lstrip("-") in ("version", "help"):
                scan.add("repo.read", "sqlite3 --version", text)
                return
            i += 1
        else:
            pos.append(a)
            i += 1
    dbfile = pos[0] if pos else ""
    sql = " ; ".join([*extra, *pos[1:]])
    read_only = sql_effects(scan, sql, "sqlite3", text) if sql.strip() else _stdin_sql(scan, cmd, "sqlite3")
    if dbfile and dbfile != ":memory:":
        p = scan.path(dbfile, "read" if read_only else "write", text)
        if p:
            scan.resource("account", "db:sqlite://" + p)


_REDIS_READ: Final = frozenset(
    {"GET", "MGET", "KEYS", "SCAN", "INFO", "PING", "TTL", "PTTL", "TYPE", "EXISTS", "HGET", "HGETALL", "HMGET",
     "HKEYS", "HVALS", "HLEN", "HEXISTS", "HSCAN", "LRANGE", "LLEN", "LINDEX", "SMEMBERS", "SCARD", "SISMEMBER",
     "SSCAN", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZCARD", "ZSCORE", "ZRANK", "ZSCAN", "XRANGE", "XREVRANGE",
     "XREAD", "XLEN", "XINFO", "MONITOR", "CLIENT", "DBSIZE", "MEMORY", "SLOWLOG", "STRLEN", "GETRANGE",
     "BITCOUNT", "PFCOUNT", "OBJECT", "RANDOMKEY", "TIME", "LASTSAVE", "ROLE", "COMMAND", "ECHO", "SELECT",
     "SUBSCRIBE", "PSUBSCRIBE", "LATENCY", "CLUSTER", "HELLO", "AUTH", "DUMP", "GEOPOS", "GEODIST", "GEORADIUS",
     "GEOSEARCH", "JSON.GET", "FT.SEARCH", "FT.INFO", "TS.RANGE", "TS.GET", "SINTER", "SUNION", "SDIFF",
     "ZCOUNT", "LPOS", "HSTRLEN", "XPENDING", "WAIT"}
)
_REDIS_DELETE: Final = frozenset({"FLUSHALL", "FLUSHDB", "DEL", "UNLINK", "GETDEL", "HDEL", "SREM", "ZREM",
                                  "LREM", "XDEL", "XTRIM", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "LTRIM",
                                  "JSON.DEL", "FT.DROPINDEX", "SWAPDB"})
_REDIS_UNKNOWN: Final = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "FUNCTION", "SCRIPT", "SHUTDOWN", "DEBUG",
                                   "MODULE", "SLAVEOF", "REPLICAOF", "MIGRATE", "FAILOVER", "BGREWRITEAOF",
                                   "SAVE", "BGSAVE", "RESTORE", "SYNC", "PSYNC"})


def redis_effects(scan: Scan, words: list[str], tool: str, text: str) -> None:
    if not words:
        return
    c = words[0].upper()
    sub = words[1].upper() if len(words) > 1 else ""
    if PH in c:
        scan.add("unknown", f"{tool} command only known at run time", text)
    elif c in _REDIS_DELETE:
        scan.add("data.delete", f"{tool} {c} deletes keys", text)
    elif c == "ACL" and sub in ("SETUSER", "DELUSER", "LOAD", "SAVE"):
        scan.add("auth.modify", f"{tool} ACL {sub} changes users", text)
    elif c == "CONFIG" and sub in ("SET", "REWRITE", "RESETSTAT"):
        scan.add("unknown", f"{tool} CONFIG {sub} changes the server", text)
    elif c in ("CONFIG", "ACL") or c in _REDIS_READ:
        scan.add("repo.read", f"{tool} {c} reads", text)
    elif c in _REDIS_UNKNOWN:
        scan.add("unknown", f"{tool} {c} runs code or changes the server", text)
    elif c == "PUBLISH":
        scan.add("unknown", f"{tool} PUBLISH sends a message to subscribers", text)
    else:
        scan.add("unknown", f"{tool} {c} writes data", text)


def _redis(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "hpnasuDrio", frozenset({"--user", "--pass", "--eval", "--tls", "--cacert", "--cert",
                                                  "--key", "--rdb", "--functions-rdb", "--pattern", "--count",
                                                  "--sni", "--pipe-timeout", "--memkeys-samples", "--askpass"}))
    url = o.get("-u")
    host = o.get("-h")
    db = o.get("-n")
    _account(scan, "redis", url, host, db or "0")
    if o.get("--eval"):
        scan.add("unknown", "redis-cli --eval runs a Lua script", text)
        return
    if o.has("--rdb", "--functions-rdb"):
        scan.add("repo.read", "redis-cli --rdb dumps the database", text)
        return
    if o.has("--scan", "--bigkeys", "--memkeys", "--hotkeys", "--stat", "--latency", "--latency-history",
             "--latency-dist", "--version", "-v", "--help"):
        scan.add("repo.read", "redis-cli inspects the server", text)
        return
    if o.pos:
        redis_effects(scan, o.pos, "redis-cli", text)
        return
    stdin = cmd.stdin
    if stdin is None or PH in stdin:
        scan.add("unknown", "redis-cli runs commands from its input", text)
        return
    for line in stdin.splitlines():
        redis_effects(scan, line.split(), "redis-cli", text)
    if not stdin.strip():
        scan.add("repo.read", "redis-cli with empty input", text)


_MONGO_DELETE: Final = re.compile(r"\.(?:drop|dropDatabase|deleteMany|deleteOne|remove|findOneAndDelete|"
                                  r"dropIndexes|dropIndex|dropUser|dropAllUsers|bulkWrite)\s*\(")
_MONGO_READ: Final = re.compile(r"^\s*(?:(?:db|rs|sh)\.[\w.]*(?:find|findOne|count|countDocuments|aggregate|"
                                r"getCollectionNames|getName|stats|status|version|printShardingStatus|isMaster|"
                                r"hello|hostInfo|serverStatus|listCollections|getIndexes|explain|distinct|"
                                r"estimatedDocumentCount|runCommand\(\s*\{\s*ping)\b[^;]*|show \w+|"
                                r"printjson\((?:db|rs)\.\w+\.(?:find|count)[^;]*\)|\s*)\s*;?\s*$")


def _mongo(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "fuph", frozenset({"--eval", "--file", "--host", "--port", "--username", "--password",
                                            "--authenticationDatabase", "--tlsCAFile"}))
    url = next((p for p in o.pos if "://" in p), None)
    _account(scan, "mongodb", url, o.get("--host"), next((p for p in o.pos if "://" not in p and
                                                            not p.endswith(".js")), None))
    js = " ; ".join(o.all("--eval"))
    files = o.all("-f", "--file") + [p for p in o.pos if p.endswith(".js")]
    for f in files:
        scan.path(f, "read", text)
        scan.add("unknown", f"{cmd.name} runs {f}", text)
    if not js and not files:
        js = cmd.stdin if cmd.stdin is not None else PH
    if not js:
        return
    if PH in js and not js.replace(PH, "").strip():
        scan.add("unknown", f"{cmd.name} opens a shell or runs piped code", text)
    elif _MONGO_DELETE.search(js):
        scan.add("data.delete", f"{cmd.name} deletes documents or collections", text)
    elif all(_MONGO_READ.match(stmt) for stmt in js.replace("\n", ";").split(";")):
        scan.add("repo.read", f"{cmd.name} reads", text)
    else:
        scan.add("unknown", f"{cmd.name} runs JavaScript", text)


def _sql_cli(sql_opts: tuple[str, ...], host_opts: tuple[str, ...], db_opts: tuple[str, ...], scheme: str,
             positional_sql: bool = False) -> Handler:
    """A generic SQL client: options carrying SQL, host and database."""
    values = frozenset(o for o in (*sql_opts, *host_opts, *db_opts) if o.startswith("--"))
    shorts = "".join(o[1] for o in (*sql_opts, *host_opts, *db_opts) if len(o) == 2)

    def handle(scan: Scan, cmd: Cmd) -> None:
        text = cmd.text
        o = parse(cmd.args, shorts, values)
        url = next((p for p in o.pos if "://" in p), None)
        _account(scan, scheme, url, o.get(*host_opts) if host_opts else None, o.get(*db_opts) if db_opts else None)
        sqls = o.all(*sql_opts)
        if positional_sql:
            sqls += [p for p in o.pos[1:] if "://" not in p]
            if o.pos and not url and scheme == "duckdb":
                scan.path(o.pos[0], "read", text)
        for s in sqls:
            sql_effects(scan, s, cmd.name, text)
        if not sqls:
            if o.has("--version", "-V", "--help"):
                scan.add("repo.read", f"{cmd.name} --version", text)
            else:
                _stdin_sql(scan, cmd, cmd.name)

    return handle


def _dump(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "hpUdfFnNtTjZuS", frozenset({"--host", "--port", "--username", "--dbname", "--file",
                                                       "--format", "--schema", "--table", "--jobs", "--user"}))
    scheme = "mysql" if cmd.name.startswith("mysql") or cmd.name.startswith("mariadb") else "postgresql"
    db = o.get("-d", "--dbname") or (o.pos[0] if o.pos else None)
    url = db if db and "://" in db else None
    _account(scan, scheme, url, o.get("-h", "--host"), None if url else db)
    for out in o.all("-f", "--file"):
        scan.path(out, "write", text)
    restore = cmd.name in ("pg_restore", "mongorestore")
    if restore:
        if o.has("-c", "--clean", "--drop"):
            scan.add("data.delete", f"{cmd.name} --clean drops objects first", text)
        scan.add("unknown", f"{cmd.name} loads data into a database", text)
    else:
        scan.add("repo.read", f"{cmd.name} dumps a database", text)


def _pg_admin(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    name = cmd.name
    o = parse(cmd.args, "hpU", frozenset({"--host", "--port", "--username", "--maintenance-db"}))
    _account(scan, "postgresql", None, o.get("-h", "--host"), o.pos[0] if o.pos else None)
    if name in ("dropdb",):
        scan.add("data.delete", "dropdb drops a database", text)
    elif name in ("dropuser", "createuser"):
        scan.add("auth.modify", f"{name} changes database users", text)
    elif name == "mysqladmin":
        if "drop" in o.pos:
            scan.add("data.delete", "mysqladmin drop drops a database", text)
        elif o.pos and o.pos[0] in ("status", "version", "ping", "processlist", "variables", "extended-status"):
            scan.add("repo.read", f"mysqladmin {o.pos[0]}", text)
        elif "password" in o.pos:
            scan.add("credentials.rotate", "mysqladmin password", text)
        else:
            scan.add("unknown", f"mysqladmin {' '.join(o.pos[:1])}", text)
    elif name in ("pg_isready",):
        scan.add("repo.read", "pg_isready", text)
    else:
        scan.add("unknown", f"{name} changes a database server", text)


HANDLERS: Final[dict[str, Handler]] = {
    "psql": _psql,
    "pgcli": _psql,
    "mysql": _mysql,
    "mariadb": _mysql,
    "mycli": _mysql,
    "sqlite3": _sqlite,
    "sqlite": _sqlite,
    "litecli": _sqlite,
    "redis-cli": _redis,
    "valkey-cli": _redis,
    "keydb-cli": _redis,
    "mongosh": _mongo,
    "mongo": _mongo,
    "clickhouse-client": _sql_cli(("--query", "-q"), ("--host", "-h"), ("--database", "-d"), "clickhouse"),
    "cqlsh": _sql_cli(("--execute", "-e"), (), ("--keyspace", "-k"), "cassandra", positional_sql=False),
    "duckdb": _sql_cli(("-c",), (), (), "duckdb", positional_sql=True),
    "sqlcmd": _sql_cli(("-Q", "-q"), ("-S",), ("-d",), "mssql"),
    "snowsql": _sql_cli(("-q", "--query"), ("-a", "--accountname"), ("-d", "--dbname"), "snowflake"),
    "usql": _sql_cli(("-c", "--command"), (), (), "sql"),
    "trino": _sql_cli(("--execute",), ("--server",), ("--catalog",), "trino"),
    "influx": _sql_cli(("-execute", "--execute"), ("-host", "--host"), ("-database", "--database"), "influx"),
    "pg_dump": _dump,
    "pg_dumpall": _dump,
    "mysqldump": _dump,
    "mariadb-dump": _dump,
    "mongodump": _dump,
    "mongoexport": _dump,
    "pg_restore": _dump,
    "mongorestore": _dump,
    "dropdb": _pg_admin,
    "createdb": _pg_admin,
    "dropuser": _pg_admin,
    "createuser": _pg_admin,
    "mysqladmin": _pg_admin,
    "pg_ctl": _pg_admin,
    "pg_isready": _pg_admin,
}
