"""The wall on macOS (issue 16): a sandbox-exec (SBPL) profile generated from the same plan as bwrap's.

Generated and checked on Linux: ``sandbox-exec`` itself cannot run here (docs/INTEGRATIONS.md, "Inside the
wall"). ``plan.prepare`` runs for real as on a darwin host (``macos.ON``; a daemon that is not root; the
egress proxy listening for real), and the profile it writes in the agent's run folder is parsed as
s-expressions and its file rules evaluated the way Seatbelt does (the last matching rule wins): the
agent's workspace, scope folder, TMPDIR and declared HOME caches are writable; tether's state dir, the
runbook, protected files, other agents' workspaces and /tmp are not readable; hook settings and
.git/config only readable; paths that try to break out of their string stay one string."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from test_policy import write_runbook
from tether.runbook.load import LoadedRunbook
from tether.wall import WallError, macos, plan, prepare
from tether.wall.profile import Profile
from tether.wall.proxy import EgressProxy

NOBODY = 65534
HOSTILE = 'x")) (allow default) ;\\ \n"y'  # quote, parens, a rule, comment, backslash, newline (no slash)

RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  a:
PEOPLE
    sandbox: "on"
    network: NET_A
    scope: {folders: [./shared]}
    approvals: {protected_paths: [".env", "**/secrets/**", "keys.pem"]}
  b:
PEOPLE
"""


# -- a reader for the profile: s-expressions, SBPL strings, #"regex" literals, ; comments ------------------
def parse(text: str) -> list[Any]:
    """The profile's top-level forms; raises ValueError when it is not balanced or a string does not end."""
    pos, stack = 0, [[]]  # type: ignore[var-annotated]
    escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
    while pos < len(text):
        ch = text[pos]
        if ch == ";":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end + 1
        elif ch.isspace():
            pos += 1
        elif ch == "(":
            stack.append([])
            pos += 1
        elif ch == ")":
            if len(stack) == 1:
                raise ValueError(f"unbalanced ) at {pos}")
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif ch == '"' or text.startswith('#"', pos):
            regex = ch == "#"
            pos += 2 if regex else 1
            out = []
            while True:
                if pos >= len(text):
                    raise ValueError("a string does not end")
                c = text[pos]
                if c == '"':
                    pos += 1
                    break
                if c == "\n":
                    raise ValueError("a raw newline in a string")
                if c == "\\":
                    nxt = text[pos + 1]
                    if nxt == "x":
                        out.append(chr(int(text[pos + 2 : pos + 4], 16)))
                        pos += 4
                        continue
                    out.append(escapes[nxt])
                    pos += 2
                    continue
                out.append(c)
                pos += 1
            stack[-1].append(("regex" if regex else "str", "".join(out)))
        else:
            m = re.compile(r"[^\s()\";]+").match(text, pos)
            assert m is not None
            stack[-1].append(m.group())
            pos = m.end()
    if len(stack) != 1:
        raise ValueError("unbalanced: a ( is never closed")
    return stack[0]


def decide(forms: list[Any], op: str, path: str) -> str:
    """Seatbelt's answer for a file operation (``file-read-data``, ``file-write-create``...) on ``path``:
    the last rule that names the operation (or its ``*`` family, or ``default``) and a matching filter."""
    verdict = "unset"
    for form in forms:
        if not isinstance(form, list) or form[0] not in ("allow", "deny"):
            continue
        ops = [x for x in form[1:] if isinstance(x, str)]
        filters = [x for x in form[1:] if isinstance(x, list)]
        named = any(o == op or (o.endswith("*") and op.startswith(o[:-1])) or o == "default" for o in ops)
        if not named:
            continue
        if not filters:
            verdict = form[0]
            continue
        for kind, (_, value) in ((f[0], f[1]) for f in filters if len(f) == 2 and isinstance(f[1], tuple)):
            if (
                (kind == "literal" and path == value)
                or (kind == "subpath" and (path == value or path.startswith(value.rstrip("/") + "/")))
                or (kind == "regex" and re.search(value, path))
            ):
                verdict = form[0]
                break
    return verdict


def named(forms: list[Any], verdict: str) -> list[str]:
    """The paths the ``verdict`` rules' filters name."""
    return [
        a[1]
        for f in forms
        if isinstance(f, list) and f[0] == verdict
        for x in f[1:]
        if isinstance(x, list)
        for a in x[1:]
        if isinstance(a, tuple)
    ]


def can_read(forms: list[Any], path: str) -> bool:
    return decide(forms, "file-read-data", macos.canonical(path)) == "allow"


def can_write(forms: list[Any], path: str) -> bool:
    return decide(forms, "file-write-create", macos.canonical(path)) == "allow"


# -- the host: a runbook, its trees, the proxy, prepare() as on darwin ---------------------------------------
@pytest.fixture
def as_darwin(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan.prepare`` as on macOS with a daemon that is not root (nobody); sandbox-exec stands in."""
    monkeypatch.delenv(plan.OFF_VAR, raising=False)
    monkeypatch.setattr(macos, "ON", True)
    monkeypatch.setattr(macos, "SANDBOX_EXEC", "/bin/sh")
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "geteuid", lambda: NOBODY)  # private folders chowned to nobody (root can)


def host(root: Path, network: str = "scoped") -> LoadedRunbook:
    loaded = write_runbook(root, RUNBOOK.replace("NET_A", network))
    ws = loaded.agent_cwd("a")
    (root / "shared" / "secrets").mkdir(parents=True)
    (root / "shared" / "secrets" / "token").write_text("s")
    (ws / ".env").write_text("KEY=1")
    (ws / "keys.pem").write_text("k")
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]")
    (ws / ".claude").mkdir()
    (ws / HOSTILE).mkdir()
    (ws / HOSTILE / ".env").write_text("hostile")  # a protected file under a hostile folder name
    (loaded.state.root / "admin.token").write_text("t")
    return loaded


def prepared(loaded: LoadedRunbook, *, proxy: EgressProxy | None) -> tuple[plan.Wall, str, list[Any]]:
    run = loaded.state.agent_dir("a") / "run"
    if proxy is not None:
        proxy.open("a", run)
    wall = prepare(loaded, "a", daemon_url="http://127.0.0.1:8642")
    assert wall is not None
    assert wall.prefix == ["/bin/sh", "-f", str(run / macos.PROFILE_FILE)]
    text = (run / macos.PROFILE_FILE).read_text(encoding="utf-8", errors="surrogateescape")
    assert (run / macos.PROFILE_FILE).stat().st_mode & 0o777 == 0o600
    return wall, text, parse(text)


@pytest.fixture
def proxy() -> Any:
    got = EgressProxy(egress=lambda: None, record=lambda batch: None)  # type: ignore[arg-type,return-value]
    got.start()
    yield got
    got.stop()


def test_profile_from_the_plan_walls_files_like_linux(tmp_path: Path, as_darwin: None, proxy: EgressProxy) -> None:
    loaded = host(tmp_path)
    wall, text, forms = prepared(loaded, proxy=proxy)
    prof = wall.profile
    ws, shared, state = loaded.agent_cwd("a"), tmp_path / "shared", loaded.state.root
    assert forms[0] == ["version", "1"] and forms[1] == ["deny", "default"]
    # tmp_path is under /tmp: on macOS it is /private/tmp, and the rules say so
    assert str(tmp_path).startswith("/tmp/") and f'"/private{ws}"' in text
    assert not [p for p in named(forms, "allow") if p.startswith("/tmp/")]

    for tree in prof.writable:  # every writable path of the plan is writable in the profile
        assert can_write(forms, tree) and can_write(forms, f"{tree}/new-file"), tree
    for tree in (ws, shared, prof.tmpdir, f"{prof.home}/.npm", f"{prof.home}/.cache/pip"):
        assert can_write(forms, f"{tree}/made")
    assert can_read(forms, prof.home) and not can_write(forms, f"{prof.home}/.bashrc")  # HOME: caches only

    assert not can_read(forms, state) and not can_read(forms, state / "admin.token")  # the state dir
    assert not can_write(forms, state / "tether.db")
    assert not can_read(forms, state / "agents" / "b") and not can_write(forms, state / "agents" / "a" / "KILL")
    assert not can_read(forms, loaded.path) and not can_write(forms, loaded.path)  # the runbook
    for secret in (ws / ".env", ws / "keys.pem", shared / "secrets", shared / "secrets" / "token"):
        assert not can_read(forms, secret) and not can_write(forms, secret), secret
    assert not can_read(forms, loaded.agent_cwd("b")) and not can_read(forms, loaded.agent_cwd("b") / "f")
    for settings in (ws / ".git" / "config", ws / ".claude" / "settings.json"):  # readable, never writable
        assert can_read(forms, settings) and not can_write(forms, settings), settings
    # the rest of the host: readable, not writable; the scratch folders neither (TMPDIR is the scratch)
    assert can_read(forms, "/usr/bin/env") and not can_write(forms, "/usr/local/bin/x")
    assert not can_write(forms, "/etc/passwd") and not can_write(forms, "/private/etc/passwd")
    assert not can_read(forms, "/tmp/other") and not can_write(forms, "/var/tmp/x")
    # files may be written to /dev/null and the terminal, not to a disk
    assert can_write(forms, "/dev/null") and can_write(forms, "/dev/ttys003") and not can_write(forms, "/dev/disk0")


def test_hostile_paths_stay_one_string(tmp_path: Path, as_darwin: None, proxy: EgressProxy) -> None:
    loaded = host(tmp_path)
    _, _, forms = prepared(loaded, proxy=proxy)
    hostile_env = f"/private{loaded.agent_cwd('a')}/{HOSTILE}/.env"
    assert hostile_env in named(forms, "deny")  # found by the walk, named whole, denied
    assert not can_read(forms, hostile_env)
    # nothing it contains became a rule: no allow on "/" and every form is an allow, a deny or the version
    assert not can_write(forms, "/") and not can_write(forms, "/usr/x")
    assert {f[0] for f in forms} == {"version", "allow", "deny"}
    # the quoting itself, for every character that could end a string or a form
    for raw in ('a"b', "a\\b", 'a\\"b', "a\nb", "a\x00b\x1b\x7f", "é ü 🐍", "a)(b;c", "\udcff"):
        got = parse(f"(literal {macos.quote(raw)})")
        assert got == [["literal", ("str", raw)]], raw


def test_network_rules_per_mode(tmp_path: Path, as_darwin: None, proxy: EgressProxy) -> None:
    scoped = host(tmp_path / "scoped", "scoped")
    wall, text, forms = prepared(scoped, proxy=proxy)
    port = proxy.agents["a"].port
    outbound = [f for f in forms if f[:2] == ["allow", "network-outbound"]]
    assert outbound == [
        [
            "allow",
            "network-outbound",
            ["remote", "ip", ("str", f"localhost:{port}")],
            ["remote", "ip", ("str", "localhost:8642")],
        ]
    ]
    assert "(allow network*)" not in text and "system-socket" not in text
    assert "HTTPS_PROXY" not in wall.env  # the daemon's own proxy variables (127.0.0.1:PORT) stay

    none = host(tmp_path / "none", "none")
    wall, text, forms = prepared(none, proxy=None)
    outbound = [f for f in forms if f[:2] == ["allow", "network-outbound"]]
    assert outbound == [["allow", "network-outbound", ["remote", "ip", ("str", "localhost:8642")]]]
    assert wall.env["HTTPS_PROXY"] == "" and wall.env["http_proxy"] == ""

    opened = host(tmp_path / "open", "open")
    wall, text, forms = prepared(opened, proxy=None)
    assert ["allow", "network*"] in forms and not [f for f in forms if f[:2] == ["allow", "network-outbound"]]


def test_scoped_without_its_proxy_or_on_a_lan_address_does_not_start(tmp_path: Path, as_darwin: None) -> None:
    loaded = host(tmp_path)
    with pytest.raises(WallError, match="egress proxy does not listen for this agent"):
        prepare(loaded, "a", daemon_url="http://127.0.0.1:8642")
    (loaded.state.agent_dir("a") / "run").mkdir(exist_ok=True)
    (loaded.state.agent_dir("a") / "run" / "proxy-port").write_text("4000\n")
    with pytest.raises(WallError, match=r"only on localhost.*'10\.0\.0\.5': listen on 127\.0\.0\.1"):
        prepare(loaded, "a", daemon_url="http://10.0.0.5:8642")


def test_refused_as_root_or_without_sandbox_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = host(tmp_path, "open")
    monkeypatch.delenv(plan.OFF_VAR, raising=False)
    monkeypatch.setattr(macos, "ON", True)
    monkeypatch.setattr(macos, "SANDBOX_EXEC", str(tmp_path / "no-sandbox-exec"))
    if os.geteuid() == 0:
        with pytest.raises(WallError, match="cannot change the agent's user: run the daemon as the user"):
            prepare(loaded, "a", daemon_url="http://127.0.0.1:8642")
        monkeypatch.setattr(os, "geteuid", lambda: NOBODY)
    with pytest.raises(WallError, match="no-sandbox-exec is missing"):
        prepare(loaded, "a", daemon_url="http://127.0.0.1:8642")


def test_canonical_maps_macos_system_links() -> None:
    assert macos.canonical("/tmp/x") == "/private/tmp/x"
    assert macos.canonical("/var/folders/ab") == "/private/var/folders/ab"
    assert macos.canonical("/etc") == "/private/etc"
    assert macos.canonical("/private/tmp/x") == "/private/tmp/x"
    assert macos.canonical("/Users/me/tmp") == "/Users/me/tmp" and macos.canonical("/variable") == "/variable"
    assert macos.ON is (sys.platform == "darwin")


def test_rules_are_placed_parents_first() -> None:
    """A deeper path's rule comes after its parent's, whatever order the plan lists them in."""
    prof = Profile(
        agent="a",
        uid=1,
        gid=1,
        user="u",
        home="/s/agents/a/home",
        tmpdir="/s/agents/a/tmp",
        writable=("/w/deep/er", "/s/agents/a/tmp", "/w"),
        hidden_dirs=("/w/deep", "/s"),
        hidden_files=("/w/deep/er/.env",),
    )
    forms = parse(macos.rules(prof, "none", [9]))
    assert can_write(forms, "/w/x") and not can_read(forms, "/w/deep/x") and can_write(forms, "/w/deep/er/y")
    assert not can_read(forms, "/w/deep/er/.env") and can_write(forms, "/s/agents/a/tmp/t")
    assert not can_read(forms, "/s/admin.token") and can_read(forms, "/s/agents/a/home/.profile")
