"""Network tools: curl, wget, httpie, ssh, scp, rsync, nc, DNS lookups, and mail or chat senders.

Every URL or host touched becomes a ``host`` (and ``url``) resource. ``network.egress`` is only
emitted for obvious outbound transfer: uploads, writes to unknown hosts, remote shells, tunnels.
"""

from __future__ import annotations

from typing import Final

from tether.classify.argv import Opts, parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.urls import (
    READ_METHODS,
    Url,
    is_billing,
    is_local,
    is_message,
    looks_like_host,
    tether_control,
)
from tether.classify.vcs.github import github_api_class

_CURL_SHORT: Final = "AbcCdDeEFHKmoPQrTuUwxXyYzt"
_CURL_LONG: Final = frozenset(
    {
        "--data", "--data-raw", "--data-binary", "--data-urlencode", "--data-ascii", "--json", "--form",
        "--form-string", "--upload-file", "--request", "--header", "--url", "--output", "--user", "--user-agent",
        "--cookie", "--cookie-jar", "--config", "--proxy", "--max-time", "--connect-timeout", "--retry",
        "--write-out", "--cert", "--key", "--cacert", "--capath", "--referer", "--range", "--unix-socket",
        "--abstract-unix-socket", "--resolve", "--connect-to", "--interface", "--dns-servers", "--oauth2-bearer",
        "--aws-sigv4", "--variable", "--output-dir", "--dump-header", "--trace", "--trace-ascii", "--stderr",
        "--etag-save", "--etag-compare", "--hsts", "--alt-svc", "--netrc-file", "--proxy-user", "--limit-rate",
        "--max-filesize", "--retry-delay", "--retry-max-time", "--speed-limit", "--speed-time",
        "--keepalive-time", "--create-file-mode", "--mail-from", "--mail-rcpt", "--mail-auth", "--ftp-method",
        "--quote", "--local-port", "--telnet-option", "--time-cond", "--proxy-header", "--request-target",
        "--parallel-max", "--rate", "--ciphers", "--tls-max", "--pass", "--pubkey", "--hostpubmd5",
        "--hostpubsha256", "--key-type", "--cert-type", "--engine", "--expect100-timeout", "--preproxy",
        "--socks5", "--socks5-hostname", "--socks4", "--socks4a", "--noproxy", "--login-options", "--sasl-authzid",
        "--ftp-account", "--ftp-alternative-to-user", "--krb", "--delegation", "--service-name", "--crlfile",
        "--pinnedpubkey", "--proto", "--proto-redir", "--proto-default", "--max-redirs", "--happy-eyeballs-timeout-ms",
        "--doh-url", "--ip-tos", "--vlan-priority", "--url-query",
    }
)
_DATA_OPTS: Final = ("-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--data-ascii", "--json")
_FORM_OPTS: Final = ("-F", "--form", "--form-string")


def _url_effect(scan: Scan, u: Url, method: str, text: str, tool: str, uploads: bool, body: str = "") -> None:
    """Classes of one HTTP(S) request."""
    scan.url(u, text)
    write = method not in READ_METHODS
    if tether_control(u, write):
        scan.add("tether.control", f"{tool} calls tether's own API ({u.path or '/'})", text)
        return
    if is_message(u) and (write or "send" in u.path.lower()):
        scan.add("message.external", f"{tool} posts to a messaging webhook ({u.host})", text)
        return
    if not write:
        scan.add("repo.read", f"{tool} {method} {u.host}", text)
        return
    if is_billing(u):
        scan.add("billing.modify", f"{tool} {method} to a billing API ({u.host})", text)
    elif u.host == "api.github.com":
        github_api_class(scan, method, u.path, body, text)
    elif is_local(u.host):
        if method == "DELETE":
            scan.add("unknown", f"{tool} DELETE on a local service", text)
        else:
            scan.add("tests.run", f"{tool} {method} to a local service", text)
        return
    else:
        scan.add("network.egress", f"{tool} sends data to {u.host} ({method})", text)
    if uploads:
        scan.add("network.egress", f"{tool} uploads a local file to {u.host}", text)


def url_effects(scan: Scan, raw: str, method: str, tool: str, text: str) -> None:
    """Classes and resources of one request to ``raw`` (any scheme)."""
    m = (method or "GET").upper()
    if PH in raw:
        scan.add("unknown", f"{tool} to a URL only known at run time", text)
        return
    u = scan.parse_url(raw, "https" if looks_like_host(raw) else "")
    if u is None:
        low = raw.strip().lower()
        if low.startswith("mailto:"):
            scan.add("message.external", f"{tool} opens a mail to send", text)
        elif low.startswith(("data:", "about:")):
            scan.add("repo.read", f"{tool} of an inline URL", text)
        else:
            scan.fail(f"{tool}: not a URL", text)
        return
    if u.scheme == "file":
        scan.path(u.path, "read" if m in READ_METHODS else "write", text)
        scan.add("repo.read" if m in READ_METHODS else "pr.draft", f"{tool} of a local file", text)
    elif u.scheme in ("http", "https", "ws", "wss"):
        _url_effect(scan, u, m, text, tool, False)
    elif u.scheme in ("ssh", "git", "git+ssh", "sftp", "ftp", "ftps", "scp", "rsync", "s3", "gs"):
        scan.url(u, text)
        scan.add("repo.read" if m in READ_METHODS else "network.egress", f"{tool} {u.scheme}://{u.host}", text)
    elif u.scheme in ("smtp", "smtps", "mailto"):
        scan.url(u, text)
        scan.add("message.external", f"{tool} sends mail", text)
    else:
        scan.url(u, text)
        scan.add("unknown", f"{tool} with scheme {u.scheme}", text)


def _data_files(scan: Scan, o: Opts, text: str) -> bool:
    """Record files sent as request bodies; True when any was."""
    sent = False
    for v in o.all(*_DATA_OPTS):
        at = v.find("@")
        if v.startswith("@") or (at > 0 and "=" not in v[:at] and o.get("--data-urlencode") == v):
            name = v[at + 1 :]
            if name and name != "-":
                scan.path(name, "read", text)
            sent = True
    for v in o.all(*_FORM_OPTS):
        _, _, val = v.partition("=")
        if val.startswith(("@", "<")):
            name = val[1:].split(";", 1)[0]
            if name and name != "-":
                scan.path(name, "read", text)
            sent = True
    for v in o.all("-T", "--upload-file"):
        if v != "-" and v != ".":
            scan.path(v, "read", text)
        sent = True
    return sent


def _curl(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, _CURL_SHORT, _CURL_LONG)
    if o.has("-K", "--config"):
        for f in o.all("-K", "--config"):
            scan.path(f, "read", text)
        scan.add("unknown", "curl --config reads options from a file", text)
    sock = o.get("--unix-socket", "--abstract-unix-socket")
    if sock is not None:
        scan.path(sock, "read", text)
        if "tether" in sock.lower() or PH in sock:
            scan.add("tether.control", "curl talks to tether's socket", text)
    method = (o.get("-X", "--request") or "").upper()
    has_data = bool(o.all(*_DATA_OPTS) or o.all(*_FORM_OPTS))
    if not method:
        if o.has("-T", "--upload-file"):
            method = "PUT"
        elif has_data and not o.has("-G", "--get"):
            method = "POST"
        elif o.has("-I", "--head"):
            method = "HEAD"
        else:
            method = "GET"
    uploads = _data_files(scan, o, text)
    if cmd.stdin is not None and any(v in ("@-", "-") for v in o.all(*_DATA_OPTS, "-T", "--upload-file")):
        uploads = True
    body = " ".join(o.all(*_DATA_OPTS))
    for out in o.all("-o", "--output", "-D", "--dump-header", "-c", "--cookie-jar", "--trace", "--trace-ascii",
                     "--etag-save", "--stderr"):
        if out not in ("-", "/dev/null", "/dev/stdout", "/dev/stderr"):
            scan.path(out, "write", text)
            scan.add("pr.draft", "curl writes a file", text)
    urls = [*o.all("--url"), *o.pos]
    if o.has("-O", "--remote-name", "--remote-name-all"):
        outdir = o.get("--output-dir") or "."
        for raw in urls:
            name = raw.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if name and PH not in name and "." in name:
                scan.path(outdir.rstrip("/") + "/" + name, "write", text)
        scan.add("pr.draft", "curl -O writes a file", text)
    if o.all("--mail-rcpt"):
        scan.add("message.external", "curl sends mail", text)
    if not urls:
        scan.add("unknown" if not o.has("--version", "-V", "--help", "-h") else "repo.read", "curl without a URL",
                 text)
        return
    for raw in urls:
        if PH in raw.split("//", 1)[-1].split("/", 1)[0] or raw.startswith(PH):
            scan.add("unknown", "curl to a host only known at run time", text)
            if method not in READ_METHODS or uploads:
                scan.add("network.egress", "curl sends data to a host only known at run time", text)
            continue
        u = scan.parse_url(raw, "http" if looks_like_host(raw) else "")
        if u is None:
            continue
        if u.scheme == "file":
            scan.path(u.path, "read", text)
            scan.add("repo.read", "curl reads a local file", text)
            continue
        if u.scheme in ("smtp", "smtps"):
            scan.url(u, text)
            scan.add("message.external", "curl sends mail", text)
            continue
        _url_effect(scan, u, method, text, "curl", uploads, body)


def _wget(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "OoPiaeUTtwQlADRIXB",
              frozenset({"--output-document", "--output-file", "--directory-prefix", "--input-file", "--append-output",
                         "--execute", "--user-agent", "--timeout", "--tries", "--wait", "--quota", "--level",
                         "--accept", "--reject", "--post-data", "--post-file", "--method", "--body-data",
                         "--body-file", "--header", "--user", "--password", "--http-user", "--http-password",
                         "--load-cookies", "--save-cookies", "--base", "--domains", "--exclude-domains",
                         "--include-directories", "--exclude-directories", "--config", "--referer", "--bind-address"}))
    method = (o.get("--method") or ("POST" if o.has("--post-data", "--post-file", "--body-data", "--body-file")
                                    else "GET")).upper()
    uploads = False
    for f in o.all("--post-file", "--body-file"):
        scan.path(f, "read", text)
        uploads = True
    for f in o.all("-i", "--input-file"):
        scan.path(f, "read", text)
        scan.add("unknown", "wget fetches URLs listed in a file", text)
    if o.has("--config", "-e", "--execute"):
        scan.add("unknown", "wget runs wgetrc commands", text)
    out = o.get("-O", "--output-document")
    if out and out != "-":
        scan.path(out, "write", text)
    elif out is None and method in READ_METHODS and not o.has("--spider"):
        prefix = o.get("-P", "--directory-prefix") or "."
        scan.path(prefix, "write", text)
        scan.add("pr.draft", "wget saves the download", text)
    for f in o.all("-o", "--output-file", "-a", "--append-output", "--save-cookies"):
        scan.path(f, "write", text)
    if not o.pos and not o.has("-i", "--input-file"):
        scan.add("repo.read" if o.has("--version", "-V", "--help") else "unknown", "wget without a URL", text)
    for raw in o.pos:
        if PH in raw[:12] or raw.startswith(PH):
            scan.add("unknown", "wget from a host only known at run time", text)
            continue
        u = scan.parse_url(raw, "http")
        if u is not None:
            _url_effect(scan, u, method, text, "wget", uploads, " ".join(o.all("--post-data", "--body-data")))


_HTTP_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _httpie(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "aAopv",
              frozenset({"--auth", "--auth-type", "--output", "--pretty", "--style", "--print", "--verify", "--cert",
                         "--cert-key", "--timeout", "--session", "--session-read-only", "--proxy", "--format-options",
                         "--max-redirects", "--boundary", "--raw"}))
    pos = list(o.pos)
    method = ""
    if pos and pos[0].upper() in _HTTP_METHODS:
        method = pos.pop(0).upper()
    if not pos:
        scan.add("unknown", f"{cmd.name} without a URL", text)
        return
    raw, items = pos[0], pos[1:]
    uploads = False
    has_data = o.has("--raw") or bool(o.get("--raw"))
    for it in items:
        if "==" in it or (":" in it and "=" not in it.split(":", 1)[0] and not it.split(":", 1)[1].startswith("=")):
            continue
        if "=@" in it or ":=@" in it or ("@" in it and "=" not in it):
            name = it.split("@", 1)[1]
            if name:
                scan.path(name, "read", text)
            uploads = True
        has_data = True
    if not method:
        method = "POST" if has_data else "GET"
    for f in o.all("-o", "--output"):
        scan.path(f, "write", text)
    if raw.startswith(":"):
        raw = "localhost" + raw
    if PH in raw:
        scan.add("unknown", f"{cmd.name} to a host only known at run time", text)
        return
    scheme = "https" if cmd.name in ("https", "xhs") else "http"
    u = scan.parse_url(raw, scheme)
    if u is not None:
        _url_effect(scan, u, method, text, cmd.name, uploads, " ".join(items))


def _aria2(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "dioxsj", frozenset({"--dir", "--input-file", "--out"}))
    for raw in o.pos:
        u = scan.parse_url(raw, "http")
        if u:
            _url_effect(scan, u, "GET", cmd.text, cmd.name, False)
    scan.path(o.get("-d", "--dir") or ".", "write", cmd.text)


# ------------------------------------------------------------------------------------------ ssh

_SSH_VALUES: Final = "BbcDEeFIiJLlmOoPpQRSWw"


def _split_host(spec: str) -> str:
    h = spec.rsplit("@", 1)[-1]
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.split(":", 1)[0]


def _ssh(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    # ssh takes options after the destination too: options, destination, options, command.
    first = parse(cmd.args, _SSH_VALUES, frozenset(), stop_at_positional=True)
    o = first
    if len(first.pos) > 1:
        again = parse(first.pos[1:], _SSH_VALUES, frozenset(), stop_at_positional=True)
        for name, value in again.opts:
            o.add(name, value)
        o.pos = [first.pos[0], *again.pos]
    for opt in o.all("-o"):
        key = opt.split("=", 1)[0].split(" ", 1)[0].lower()
        if key in ("proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand", "match"):
            scan.add("unknown", f"ssh -o {key} runs a local command", text)
    if o.has("-F"):
        scan.add("unknown", "ssh -F uses another config file", text)
    if o.has("-L", "-R", "-D", "-w", "-W"):
        scan.add("network.egress", "ssh opens a tunnel", text)
    for j in o.all("-J"):
        scan.host(_split_host(j))
    if not o.pos:
        scan.add("repo.read" if o.has("-V", "-G", "-Q") else "unknown", "ssh without a host", text)
        return
    dest = o.pos[0]
    if dest.startswith("ssh://"):
        u = scan.parse_url(dest)
        host = u.host if u else ""
    else:
        host = _split_host(dest)
    scan.host(host)
    remote = o.pos[1:]
    if o.has("-N") and not remote:
        scan.add("network.egress", f"ssh to {host}", text)
        return
    scan.add("network.egress", f"ssh runs commands on {host}", text)
    if not remote:
        scan.add("unknown", f"ssh opens an interactive shell on {host}", text)
        return
    cwd = scan.cwd
    scan.cwd = PH
    try:
        scan.shell(" ".join(remote), text)
    finally:
        scan.cwd = cwd


def _remote_spec(arg: str) -> str | None:
    """The host of ``[user@]host:path`` or ``scp://`` / ``rsync://`` specs."""
    if "://" in arg:
        rest = arg.split("://", 1)[1]
        return _split_host(rest.split("/", 1)[0])
    if ":" in arg and not arg.startswith(("/", ".", "~")) and "/" not in arg.split(":", 1)[0]:
        return _split_host(arg.split(":", 1)[0] + ":")
    return None


def _copy_ends(scan: Scan, pos: list[str], text: str, src_op: str = "read", tree: bool = False) -> bool:
    """Record the ends of a copy (``scp``, ``rsync``): remote ones as hosts, local ones as paths (the last of two
    or more is the destination, written: as a tree with ``tree``); True when one end is remote."""
    remote = False
    for k, p in enumerate(pos):
        host = _remote_spec(p)
        if host:
            remote = True
            scan.host(host)
        else:
            last = k == len(pos) - 1 and len(pos) > 1
            scan.path(p, "write" if last else src_op, text, tree=tree and last)
    return remote


def _scp(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "cFiJlopPSDX", frozenset())
    if o.has("-S") or any(v.lower().startswith("proxycommand") for v in o.all("-o")):
        scan.add("unknown", f"{cmd.name} runs a local program", text)
    if _copy_ends(scan, o.pos, text):
        scan.add("network.egress", f"{cmd.name} copies files to or from another host", text)
    else:
        scan.add("pr.draft", f"{cmd.name} copies local files", text)


def _rsync(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "eBfTMm", frozenset({"--rsh", "--rsync-path", "--exclude", "--include", "--exclude-from",
                                              "--include-from", "--files-from", "--filter", "--log-file",
                                              "--partial-dir", "--temp-dir", "--backup-dir", "--suffix", "--chmod",
                                              "--chown", "--password-file", "--port", "--bwlimit", "--timeout",
                                              "--compare-dest", "--link-dest", "--copy-dest", "--out-format",
                                              "--max-size", "--min-size", "--info", "--debug", "--usermap",
                                              "--groupmap", "--sockopts", "--iconv", "--checksum-choice",
                                              "--compress-choice", "--stop-after", "--stop-at", "--mkpath"}))
    if o.has("--rsync-path"):
        scan.add("unknown", "rsync --rsync-path runs a remote command", text)
    rsh = o.get("-e", "--rsh")
    if rsh and not rsh.split()[0].endswith("ssh"):
        scan.add("unknown", "rsync -e runs another transport", text)
    remote = _copy_ends(scan, o.pos, text, "delete" if o.has("--remove-source-files") else "read", tree=True)
    if any(n.startswith("--delete") for n in o.names()) or o.has("--remove-source-files"):
        scan.add("data.delete", "rsync --delete removes files at the destination", text)
    if remote:
        scan.add("network.egress", "rsync copies files to or from another host", text)
    else:
        scan.add("pr.draft", "rsync copies local files", text)


def _nc(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "eciIOpPqsTVwWxXM", frozenset({"--exec", "--sh-exec", "--lua-exec", "--proxy",
                                                       "--source", "--wait"}))
    if o.has("-e", "-c", "--exec", "--sh-exec", "--lua-exec"):
        scan.add("unknown", f"{cmd.name} -e runs a program on a socket", text)
    if o.has("-l", "--listen"):
        scan.add("unknown", f"{cmd.name} -l opens a listening socket", text)
    host = o.pos[0] if o.pos else ""
    if host and not host.isdigit():
        scan.host(host)
    if o.has("-z"):
        scan.add("repo.read", f"{cmd.name} -z checks a port", text)
    elif host and not is_local(host.lower()) and not o.has("-l", "--listen"):
        scan.add("network.egress", f"{cmd.name} sends data to {host}", text)
    elif host:
        scan.add("unknown", f"{cmd.name} sends raw data to a local service", text)


def _socat(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    addrs = [a for a in cmd.args if not a.startswith("-") or a == "-"]
    for a in addrs:
        kind, _, rest = a.partition(":")
        k = kind.upper()
        if k in ("EXEC", "SYSTEM") or k.endswith("-LISTEN") or k in ("TCP-L", "UDP-L"):
            scan.add("unknown", f"socat {k} runs a program or listens", text)
        elif k in ("FILE", "OPEN", "CREATE", "CREAT", "GOPEN") and rest:
            path = rest.split(",", 1)[0]
            scan.path(path, "write" if a is addrs[-1] and len(addrs) > 1 else "read", text)
        elif k.startswith(("TCP", "UDP", "OPENSSL", "SSL", "SCTP", "SOCKS", "PROXY", "DCCP")):
            host = rest.split(":", 1)[0].split(",", 1)[0]
            scan.host(host)
            if not is_local(host.lower()):
                scan.add("network.egress", f"socat connects to {host}", text)
    scan.add("repo.read", "socat relays data", text)


def _remote_session(scan: Scan, cmd: Cmd) -> None:
    hosts = [a for a in cmd.args if not a.startswith("-") and not a.isdigit()]
    for h in hosts[:1]:
        u = scan.parse_url(h) if "://" in h else None
        scan.host(u.host if u else _split_host(h))
    scan.add("network.egress", f"{cmd.name} opens a session to another host", cmd.text)


def _lookup(scan: Scan, cmd: Cmd) -> None:
    for a in cmd.args:
        if a.startswith("@"):
            scan.host(a[1:])
        elif not a.startswith(("-", "+")) and ("." in a or a == "localhost") and not a.replace(".", "").isdigit():
            scan.host(a.rstrip("."))
        elif a.replace(".", "").isdigit() and a.count(".") == 3:
            scan.host(a)
    scan.add("repo.read", f"{cmd.name} looks a host up", cmd.text)


def _openssl(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    verb = args[0] if args else ""
    # openssl uses single-dash long options; pick the interesting ones by hand.
    def val(name: str) -> str | None:
        for k, a in enumerate(args):
            if a == name and k + 1 < len(args):
                return args[k + 1]
        return None

    connect = val("-connect")
    if connect:
        scan.host(connect.rsplit(":", 1)[0])
    for name in ("-in", "-inkey", "-key"):
        v = val(name)
        if v:
            scan.path(v, "read", text)
    for name in ("-out", "-keyout"):
        v = val(name)
        if v:
            scan.path(v, "write", text)
    if (verb in ("genrsa", "genpkey", "gendsa", "ecparam") and (verb != "ecparam" or "-genkey" in args)) or (
        verb == "req" and ("-newkey" in args or ("-new" in args and "-key" not in args))
    ):
        scan.add("credentials.rotate", f"openssl {verb} generates a key", text)
    elif verb in ("enc", "rsautl", "pkeyutl", "smime", "cms") and ("-d" in args or "-decrypt" in args):
        scan.add("secrets.modify", f"openssl {verb} decrypts", text)
    elif verb == "pkcs12" and ("-nodes" in args or "-noenc" in args or "-export" not in args):
        scan.add("secrets.modify", "openssl pkcs12 extracts keys", text)
    elif verb in ("s_client", "x509", "verify", "dgst", "version", "ciphers", "list", "asn1parse", "crl", "rand",
                  "req", "rsa", "ec", "pkey", "sha256", "sha1", "md5", "base64", "enc", "speed", "help", "errstr",
                  "prime", "storeutl", "ocsp", "sess_id", "x509v3", "crl2pkcs7", "pkcs7", "s_time", "passwd"):
        scan.add("repo.read", f"openssl {verb}", text)
    else:
        scan.add("unknown", f"openssl {verb}", text)


# ----------------------------------------------------------------------------------- messaging


def _mail(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "saAcbrfFqS", frozenset({"--server", "--to", "--from", "--attach", "--body", "--header",
                                                  "--subject", "--attach-body", "--port", "--auth-user",
                                                  "--auth-password", "--data", "--host"}))
    for f in o.all("-a", "-A", "--attach"):
        if not f.startswith("@"):
            scan.path(f, "read", text)
    server = o.get("--server", "--host")
    if server:
        scan.host(server.split(":", 1)[0])
    scan.add("message.external", f"{cmd.name} sends mail", text)


def _chat(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    first = next((a for a in args if not a.startswith("-")), "")
    if cmd.name == "ntfy" and first in ("subscribe", "sub", "serve", "user", "access", "token", "webpush"):
        scan.add("repo.read" if first in ("subscribe", "sub") else "unknown", f"ntfy {first}", text)
        return
    for a in args:
        if "://" in a:
            u = scan.parse_url(a)
            if u and u.host:
                scan.host(u.host)
    scan.add("message.external", f"{cmd.name} sends a message", text)


HANDLERS: Final[dict[str, Handler]] = {
    "curl": _curl,
    "wget": _wget,
    "wget2": _wget,
    "http": _httpie,
    "https": _httpie,
    "xh": _httpie,
    "xhs": _httpie,
    "aria2c": _aria2,
    "axel": _aria2,
    "ssh": _ssh,
    "autossh": _ssh,
    "mosh": _ssh,
    "scp": _scp,
    "rsync": _rsync,
    "nc": _nc,
    "ncat": _nc,
    "netcat": _nc,
    "socat": _socat,
    "telnet": _remote_session,
    "sftp": _remote_session,
    "ftp": _remote_session,
    "lftp": _remote_session,
    "tftp": _remote_session,
    "smbclient": _remote_session,
    "ping": _lookup,
    "ping6": _lookup,
    "dig": _lookup,
    "nslookup": _lookup,
    "host": _lookup,
    "traceroute": _lookup,
    "tracepath": _lookup,
    "mtr": _lookup,
    "drill": _lookup,
    "openssl": _openssl,
    **{n: _mail for n in ("mail", "mailx", "sendmail", "mutt", "neomutt", "msmtp", "swaks", "s-nail", "ssmtp",
                          "mpack", "esmtp", "bsd-mailx", "heirloom-mailx")},
    **{n: _chat for n in ("slack", "slack-cli", "slackcat", "slack-notify", "telegram-send", "apprise", "ntfy",
                          "twilio", "pushover", "signal-cli", "matrix-commander", "discord.sh", "zulip-send",
                          "mattermost", "mmctl", "teams", "sendgrid", "mailgun", "postmark", "pd-send",
                          "notify-slack", "gotify", "pushbullet", "terminal-notifier-remote")},
}
