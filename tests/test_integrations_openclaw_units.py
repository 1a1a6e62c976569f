"""OpenClaw without a gateway: ``tether integrate openclaw`` on config files, the tool-call mapping the hook
endpoint judges, the exec-approvals checks and ``--harden``, the gateway's launch refusing a taken port.
The real package is driven in ``test_integrations_openclaw.py``."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest
import yaml

from helpers import run_cli
from tether.errors import UsageError
from tether.integrations import health, openclaw, openclaw_policy
from tether.runbook import load

THEIRS = {
    "gateway": {"port": 18789},
    "plugins": {"load": {"paths": ["/opt/their-plugin"]}, "entries": {"theirs": {"enabled": True}}},
}


def test_install_twice_changes_nothing_and_remove_restores_exactly(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(json.dumps(THEIRS))
    first = openclaw.install(path, "http://127.0.0.1:7717/", "claw", wait=30)
    assert first.changed
    got = json.loads(path.read_text())
    assert got["plugins"]["load"]["paths"] == ["/opt/their-plugin", str(openclaw.PLUGIN_DIR)]
    entry = got["plugins"]["entries"]["tether"]
    assert entry["config"] == {"url": "http://127.0.0.1:7717", "agent": "claw", "tokenEnv": "TETHER_TOKEN", "wait": 30}
    assert entry["hooks"]["timeouts"]["before_tool_call"] == 45_000  # OpenClaw blocks a hook outliving it
    assert got["plugins"]["entries"]["theirs"] == {"enabled": True} and got["gateway"] == {"port": 18789}
    assert openclaw.installed(got)
    text = path.read_text()
    assert not openclaw.install(path, "http://127.0.0.1:7717", "claw", wait=30).changed
    assert path.read_text() == text
    assert openclaw.remove(path).changed
    assert json.loads(path.read_text()) == THEIRS
    assert not (tmp_path / ".tether-integration.json").exists()
    assert not openclaw.remove(path).changed


def test_remove_takes_out_only_what_tether_created(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(json.dumps({"plugins": {"allow": ["theirs"]}}))
    openclaw.install(path, "http://127.0.0.1:1", None)
    got = json.loads(path.read_text())
    assert got["plugins"]["allow"] == ["theirs", "tether"]  # an allow list loads only what it names
    assert "agent" not in got["plugins"]["entries"]["tether"]["config"]  # the token's own agent
    openclaw.remove(path)
    assert json.loads(path.read_text()) == {"plugins": {"allow": ["theirs"]}}
    fresh = tmp_path / "new" / "openclaw.json"
    openclaw.install(fresh, "http://127.0.0.1:1", "claw")
    assert fresh.stat().st_mode & 0o777 == 0o600
    openclaw.remove(fresh)
    assert not fresh.exists()  # tether wrote the whole file


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{gateway: {port: 1}, // json5\n}", "JSON5"),
        ("[1]", "not a JSON object"),
        (json.dumps({"plugins": {"enabled": False}}), "plugins.enabled"),
        (json.dumps({"plugins": {"deny": ["tether"]}}), "plugins.deny"),
        (json.dumps({"plugins": {"load": {"paths": "x"}}}), "plugins.load.paths"),
    ],
)
def test_configs_tether_will_not_edit(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=why) as err:
        openclaw.install(path, "http://127.0.0.1:1", "claw")
    assert "\n" not in str(err.value)
    assert path.read_text() == text


def test_the_cli_installs_removes_and_hardens(tmp_path: Path) -> None:
    path = tmp_path / "oc" / "openclaw.json"
    args = ("integrate", "openclaw", "--config", str(path), "--url", "http://127.0.0.1:7717", "--agent", "claw")
    env = {"OPENCLAW_STATE_DIR": str(tmp_path / "oc")}
    first = run_cli(*args, "--harden", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "tether's plugin installed" in first.stdout and "exec approvals hardened" in first.stdout
    again = run_cli(*args, "--harden", cwd=tmp_path, env=env)
    assert "already has tether's plugin (unchanged)" in again.stdout
    assert "already hardened (unchanged)" in again.stdout
    got = json.loads(path.read_text())
    assert got["tools"]["exec"] == {"mode": "ask", "strictInlineEval": True}
    assert not openclaw_policy.findings(got, None)
    gone = run_cli("integrate", "openclaw", "--config", str(path), "--remove", cwd=tmp_path, env=env)
    assert gone.returncode == 0 and "tether's plugin removed" in gone.stdout
    assert json.loads(path.read_text()) == {"tools": {"exec": {"mode": "ask", "strictInlineEval": True}}}
    bad = run_cli(*args, "--wait", "900", cwd=tmp_path, env=env)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "--wait" in bad.stderr


def test_openclaw_tool_calls_as_the_classifier_knows_them() -> None:
    tc = openclaw.tool_call
    assert tc("exec", {"command": "ls", "workdir": "/w"}) == (
        "Bash",
        {"openclaw_tool": "exec", "command": "ls", "workdir": "/w"},
    )
    assert (
        tc("exec", {"command": "make", "env": {"LD_PRELOAD": "/tmp/x.so"}})[1]["command"]
        == "export LD_PRELOAD=/tmp/x.so; make"
    )
    assert tc("exec", {"command": "ls", "host": "node", "node": "mac"})[0] == "openclaw.exec@node:mac"
    assert tc("write", {"path": "a.txt", "content": "x"}) == (
        "Write",
        {"openclaw_tool": "write", "file_path": "a.txt", "content": "x"},
    )
    assert tc("edit", {"path": "a", "edits": [{"oldText": "1", "newText": "2"}]})[1]["edits"] == [
        {"old_string": "1", "new_string": "2"}
    ]
    assert tc("read", {"path": "a"})[0] == "Read" and tc("ls", {})[0] == "LS"
    assert tc("process", {"action": "poll"})[0] == "BashOutput"
    assert tc("process", {"action": "write", "data": "y\n"})[0] == "write_stdin"
    assert tc("openclaw", {"message": "disable the tether plugin"})[0] == "SlashCommand"
    assert tc("tool_call", {"id": "exec", "args": {"command": "rm -rf /"}}) == (
        "Bash",
        {"openclaw_tool": "tool_call:exec", "command": "rm -rf /"},
    )
    assert tc("browser", {"url": "x"}) == ("openclaw.browser", {"url": "x"})


def test_the_mapping_decides_like_the_other_clients(tmp_path: Path) -> None:
    from tether.boundary import Boundary
    from tether.boundary import Request as ActionRequest

    rb = tmp_path / "tether.yaml"
    ws = tmp_path / "ws"
    ws.mkdir()
    person = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}
    rb.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "host": {"state_dir": str(tmp_path / "s")},
                "agents": {"claw": {"kind": "openclaw", "owner": person, "backup": person, "cwd": str(ws)}},
            }
        )
    )
    b = Boundary(load(rb))

    def verdict(tool: str, inp: dict[str, object]) -> str:
        name, got = openclaw.tool_call(tool, inp)
        return b.evaluate("claw", ActionRequest(tool=name, input=got, cwd=str(ws)))[1].verdict

    assert verdict("exec", {"command": "ls -la"}) == "allow"
    assert verdict("write", {"path": str(ws / "a.txt"), "content": "x"}) == "allow"
    assert verdict("exec", {"command": f"rm -rf {tmp_path}"}) == "block"
    assert verdict("write", {"path": "/etc/cron.d/x", "content": "x"}) == "block"
    assert verdict("openclaw", {"message": "remove the tether plugin"}) in ("ask", "block")
    assert verdict("tool_call", {"id": "exec", "args": {"command": f"rm -rf {tmp_path}"}}) == "block"
    assert verdict("browser", {"action": "open"}) == "ask"  # unknown: never allowed without a human
    assert verdict("tool_search", {"query": "x"}) == "allow"


def _host_doc(state: Path, doc: dict[str, object]) -> None:
    (state / "state").mkdir(parents=True)
    conn = sqlite3.connect(state / "state" / "openclaw.sqlite")
    conn.execute("CREATE TABLE exec_approvals_config (config_key TEXT PRIMARY KEY, raw_json TEXT NOT NULL)")
    conn.execute("INSERT INTO exec_approvals_config VALUES ('default', ?)", (json.dumps(doc),))
    conn.commit()
    conn.close()


def test_exec_approval_findings(tmp_path: Path) -> None:
    whats = [f.what.split(":")[0] for f in openclaw_policy.findings({}, None)]  # OpenClaw's defaults
    assert whats == ["security=full", "ask=off", "strictInlineEval is off"]
    safe = {"tools": {"exec": {"mode": "ask", "strictInlineEval": True}}}
    assert openclaw_policy.findings(safe, None) == []
    legacy = openclaw_policy.hardened({"tools": {"exec": {"security": "full", "ask": "off"}}})
    assert legacy["tools"]["exec"] == {"security": "allowlist", "ask": "on-miss", "strictInlineEval": True}
    assert openclaw_policy.hardened({"tools": {"exec": {"mode": "deny"}}})["tools"]["exec"]["mode"] == "deny"
    override = {**safe, "agents": {"entries": {"ops": {"tools": {"exec": {"mode": "full"}}}}}}
    assert [f.where for f in openclaw_policy.findings(override, None)] == ["agents.entries.ops.tools.exec"] * 2
    assert openclaw_policy.findings(openclaw_policy.hardened(override), None) == []
    _host_doc(tmp_path, {"version": 1, "defaults": {"security": "allowlist", "ask": "always", "askFallback": "full"}})
    host = openclaw_policy.host_approvals(tmp_path)
    got = openclaw_policy.findings({}, host)  # the host document tightens security and ask, not strict eval
    assert [f.what.split(":")[0] for f in got] == ["strictInlineEval is off", "askFallback=full"]
    assert openclaw_policy.hardened_host(host or {}) == {
        "version": 1,
        "defaults": {"security": "allowlist", "ask": "always", "askFallback": "deny"},
    }


def test_doctor_warns_on_an_open_gateway(tmp_path: Path) -> None:
    cfg = tmp_path / "openclaw.json"
    cfg.write_text(json.dumps({"tools": {"exec": {"mode": "full"}}}))
    person = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}
    rb = tmp_path / "tether.yaml"
    rb.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "host": {"state_dir": str(tmp_path / "s")},
                "agents": {
                    "claw": {
                        "kind": "openclaw",
                        "owner": person,
                        "backup": person,
                        "command": ["openclaw", "gateway", "run"],
                        "env": {"OPENCLAW_CONFIG_PATH": str(cfg)},
                    }
                },
            }
        )
    )
    [check] = health.openclaw_exec(load(rb))
    assert check.status == "warn" and "security=full" in check.detail
    assert check.fix == f"tether integrate openclaw --config {cfg} --harden"
    cfg.write_text(json.dumps({"tools": {"exec": {"mode": "allowlist", "strictInlineEval": True}}}))
    [check] = health.openclaw_exec(load(rb))
    assert check.status == "ok", check


def test_the_gateway_refuses_a_taken_port_and_writes_its_config(tmp_path: Path) -> None:
    src = tmp_path / "src.json"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        src.write_text(json.dumps({"gateway": {"port": port}}))
        env = {"OPENCLAW_CONFIG_PATH": str(src)}
        with pytest.raises(UsageError, match=f"port {port} is taken.*openclaw gateway stop.*tether start claw"):
            openclaw.launch("claw", ("openclaw", "gateway", "run"), env, tmp_path / "home", tmp_path, "http://x:1")
        # adopting only ever stops an OpenClaw gateway: this listener does not answer /health
        with pytest.raises(UsageError, match="TETHER_OPENCLAW_ADOPT"):
            openclaw.launch("claw", ("openclaw", "gateway", "run"), {**env, "TETHER_OPENCLAW_ADOPT": "1"},
                            tmp_path / "home", tmp_path, "http://x:1")
    gw = openclaw.launch(
        "claw", ("openclaw", "gateway", "run"), env, tmp_path / "home", tmp_path, "http://x:1", wait=10
    )
    assert gw.argv == ["openclaw", "gateway", "run"] and gw.port == port
    assert gw.env["OPENCLAW_NO_RESPAWN"] == "1" and gw.env["OPENCLAW_STATE_DIR"] == str(tmp_path / "home/.openclaw")
    assert gw.config is not None and gw.config.stat().st_mode & 0o777 == 0o600
    run = json.loads(gw.config.read_text())
    assert openclaw.installed(run) and run["agents"]["defaults"]["workspace"] == str(tmp_path)
    assert json.loads(src.read_text()) == {"gateway": {"port": port}}  # the runbook's config is only read
    with pytest.raises(UsageError, match="no openclaw to run"):
        openclaw.launch("claw", (), {"PATH": str(tmp_path)}, tmp_path / "home", tmp_path, "http://x:1")


def test_the_gateways_exec_approvals_as_tether_approvals(tmp_path: Path) -> None:
    """openclaw_approvals: one tether approval per OpenClaw approval (asked again, the same one), decided by
    a human; the runbook's block answers at once; answered in OpenClaw, the tether approval closes."""
    import threading
    import time

    from tether.approvals import Approvals
    from tether.boundary import Boundary, Gatekeeper
    from tether.integrations import openclaw_approvals
    from tether.store import open_store

    rb = tmp_path / "tether.yaml"
    ws = tmp_path / "ws"
    ws.mkdir()
    person = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}
    rb.write_text(yaml.safe_dump({
        "version": 1, "host": {"state_dir": str(tmp_path / "s")},
        "agents": {"claw": {"kind": "openclaw", "owner": person, "backup": person, "cwd": str(ws)}},
    }))
    loaded = load(rb)
    store = open_store(loaded.store_url)
    gk = Gatekeeper(Boundary(loaded), Approvals(store))

    def ask(oc_id: str, command: str, wait: float = 0.0) -> dict[str, object]:
        p = {"hook_event_name": "exec_approval", "approval_id": oc_id, "command": command, "cwd": str(ws),
             "session_id": "agent:main:openai:s1", "expires_at_ms": (time.time() + 600) * 1000}
        return openclaw_approvals.handle(gk, "claw", p, wait)

    blocked = ask("oc-1", f"rm -rf {tmp_path}")
    assert blocked["decision"] == "deny" and "tether blocked it" in str(blocked["reason"])
    assert not store.approvals("pending")  # nobody is asked about what the runbook refuses

    first = ask("oc-2", "touch a.txt")
    assert first["decision"] == "pending"
    assert ask("oc-2", "touch a.txt")["approval_id"] == first["approval_id"]  # asked again: the same one
    row = store.approval(int(str(first["approval_id"])))
    assert row is not None and row["rule"] == "openclaw.exec_approvals" and row["expires"]
    assert row["detail"] == f"OpenClaw asks to run: touch a.txt (in {ws})"

    got: dict[str, object] = {}
    waiter = threading.Thread(target=lambda: got.update(ask("oc-2", "touch a.txt", wait=30)))
    waiter.start()
    gk.approvals.decide(int(str(first["approval_id"])), True, "Ana")
    waiter.join(30)
    assert got["decision"] == "allow-once", got
    assert store.approval(int(str(first["approval_id"])))["state"] == "used"  # type: ignore[index]
    assert ask("oc-2", "touch a.txt")["decision"] == "allow-once"  # asked again after the decision: the same

    denied = ask("oc-3", "touch b.txt")
    gk.approvals.decide(int(str(denied["approval_id"])), False, "Ana", note="not now")
    assert ask("oc-3", "touch b.txt") == {"decision": "deny", "approval_id": denied["approval_id"],
                                          "reason": "denied by Ana: not now"}

    elsewhere = ask("oc-4", "touch c.txt")
    closed = openclaw_approvals.handle(
        gk, "claw", {"hook_event_name": "exec_approval_resolved", "approval_id": "oc-4", "decision": "deny"}, 0)
    assert closed == {"closed": [elsewhere["approval_id"]]}
    row = store.approval(int(str(elsewhere["approval_id"])))
    assert row is not None and row["state"] == "expired" and row["note"] == "answered in OpenClaw itself (deny)"
    store.close()
