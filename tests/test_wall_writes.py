"""Denied writes recorded as the agent makes them (issue 16, "Seen and shown"): the daemon reads the kernel's
audit for the writes its walled agents are refused, and each becomes a ``wall.violation`` event with the
agent, the path, the call and the errno; repeated ones open the agent's incident. Real daemons, real agents
inside the wall (their own user), the real kernel audit; then the rules' bookkeeping against the kernel, and
the records' parser fed what an agent can make the kernel write (odd bytes, unfinished sets, floods)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_daemon_kit import Host, agent, wait_until
from test_wall import USER, host_folder, needs_wall
from tether.wall import auditlink, auditrecords, auditrules, writewatch

pytestmark = pytest.mark.wall


def _audit_usable() -> None:
    needs_wall()
    try:
        with auditlink.Link() as link:
            status = link.status()
    except OSError as err:
        pytest.skip(f"no kernel audit here: {err}")
    if status.enabled == 2:
        pytest.skip("the kernel's audit is locked (enabled 2) on this host")


@pytest.fixture
def root(test_user: str) -> Iterator[Path]:
    _audit_usable()
    yield from host_folder("tether-writes-")


def _ours() -> list[auditlink.Rule]:
    with auditlink.Link() as link:
        return [r for r in link.rules() if r.key == auditrules.KEY]


WRITES = r"""
W={ws}
S={state}
sh -c ": > /etc/tether-writes-planted" 2>/dev/null
sh -c "echo x > $W/.git/hooks/pre-commit" 2>/dev/null
sh -c "echo x >> $S/tether.db" 2>/dev/null
sh -c "echo x > $W/.claude/settings.json" 2>/dev/null
mkdir /usr/tether-writes-dir 2>/dev/null
rm -f /etc/tether-writes-victim 2>/dev/null
cat /etc/shadow >/dev/null 2>&1
sh -c "echo x > $HOME/.agent-state.json" 2>/dev/null
rm $S/agents/other/KILL 2>/dev/null
sh -c "echo x > $W/no/such/folder" 2>/dev/null
echo ok > $W/made
echo done
exec sleep 3600
"""


def _host(root: Path, script: str) -> tuple[Host, Path]:
    h = Host(root, {})
    ws = root / "ws" / "w"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".claude").mkdir()
    (ws / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    (ws / ".claude" / "settings.json").write_text("{}\n")
    (ws / "run.sh").write_text(script.format(ws=ws, state=h.state))
    h.write({"w": agent(["sh", str(ws / "run.sh")], run_as=USER, violations={"limit": 5, "window": "10m"})})
    return h, ws


def test_each_denied_write_is_an_event_with_the_path_and_repeated_ones_open_the_incident(root: Path) -> None:
    h, ws = _host(root, WRITES)
    (h.state / "agents" / "other").mkdir(parents=True)
    (h.state / "agents" / "other" / "KILL").write_text("{}\n")
    victim = Path("/etc/tether-writes-victim")
    victim.write_text("stays\n")
    try:
        daemon = h.up()
        info = json.loads((h.state / "daemon.json").read_text())
        assert info["denied_writes"] == {"on": True, "reason": None}, info
        rules = _ours()
        wait_until(lambda: "done" in h.log("w"), 15, "the agent's writes")
        uid = (ws / "made").stat().st_uid
        assert uid != 0 and any((auditlink.F_UID, auditlink.EQUAL, uid) in r.fields for r in rules), rules
        task = [r for r in rules if r.list == auditlink.FILTER_TASK]
        assert len(task) == 1 and task[0].action == auditlink.NEVER
        assert task[0].fields == ((auditlink.F_UID, auditlink.NOT_EQUAL, uid),), "only the agents' uid audited"

        def recorded() -> dict[tuple[str, str], dict[str, object]]:
            return {
                (str(e["data"]["path"]), str(e["data"]["call"])): e["data"]
                for e in h.events("wall.violation", "w")
                if e["data"].get("source") == "audit"
            }

        # a refused create or removal names the folder (the kernel refuses before it looks the name up); the
        # command line tells the rest
        want = {
            ("/etc/", "openat"): ("EROFS", ": > /etc/tether-writes-planted"),
            (f"{ws}/.git/hooks/pre-commit", "openat"): ("EROFS", f"echo x > {ws}/.git/hooks/pre-commit"),
            (f"{h.state}/", "openat"): ("EROFS", "tether.db"),  # the state dir, hidden: an empty read-only stand-in
            (f"{ws}/.claude/settings.json", "openat"): ("EROFS", "settings.json"),
            ("/usr/", "mkdir"): ("EROFS", "mkdir /usr/tether-writes-dir"),
            ("/etc/", "unlinkat"): ("EROFS", "rm -f /etc/tether-writes-victim"),
            # another agent's kill file, in the hidden state dir: the path does not exist inside
            (f"{h.state}/agents/other/KILL", "unlinkat"): ("ENOENT", "rm "),
        }
        try:
            wait_until(lambda: set(want) <= set(recorded()), 10, "the denied writes' events")
        except AssertionError:
            raise AssertionError(json.dumps(list(recorded().values()), indent=0)) from None
        got = recorded()
        for where, (error, command) in want.items():
            data = got[where]
            assert (data["error"], data["verdict"], data["kind"]) == (error, "denied", "write"), data
            assert command in str(data["command"]), data
            assert data["in_run"] is True and data["counted"] is True and data["instance"], data
        assert not any(p == "/etc/shadow" for p, _ in got), "a refused read is no write"
        assert not any("no/such" in p for p, _ in got), "a miss in its own workspace is not the wall"
        # its CLI saving state in its own read-only HOME: recorded, never counted (its hook settings would be)
        home = got[(f"{h.state}/agents/w/home/", "openat")]
        assert home["own_home"] is True and home["counted"] is False and home["in_run"] is True, home
        assert not any(p.startswith(str(ws / "made")) for p, _ in got), "a write in scope is no violation"
        # five in the window: the owner's incident, once
        wait_until(lambda: h.incidents("wall.violation", "w"), 10, "the incident")
        (inc,) = h.incidents("wall.violation", "w")
        assert inc["state"] == "open" and "wall violations" in inc["summary"], inc
        status = json.loads(h.cli("status", "--json").stdout)["agents"][0]
        assert status["violations"]["write"] >= len(want), status
        assert h.down(daemon) == 0
        # the daemon's rules leave with it (and with the last of them audit goes back off); the host's
        # processes stay out of the audit
        assert not [r for r in _ours() if (auditlink.F_UID, auditlink.EQUAL, uid) in r.fields], _ours()
        if all(r.list == auditlink.FILTER_TASK for r in _ours()):  # no other daemon's rules
            assert [r.fields for r in _ours()] == [()]
            with auditlink.Link() as link:
                assert link.status().enabled == 0
        assert not (auditrules.REGISTRY / f"{daemon.pid}.json").exists()
        assert victim.read_text() == "stays\n" and (h.state / "agents" / "other" / "KILL").exists()
    finally:
        victim.unlink(missing_ok=True)
        h.cleanup()


FLOOD = r"""
i=0
while [ $i -lt 3000 ]; do true 2>/dev/null > {ws}/.git/hooks/f$i; i=$((i+1)); done
while [ $i -lt 6000 ]; do true 2>/dev/null > /etc/tether-flood-$i; i=$((i+1)); done
sleep 2
true 2>/dev/null > {ws}/.git/hooks/fafter
echo done
exec sleep 3600
"""


def test_a_flood_of_denied_writes_is_bounded_and_the_daemon_stays_up(root: Path) -> None:
    h, ws = _host(root, FLOOD)
    for i in [*range(3000), "after"]:  # 3,000 read-only files: each refused write names its own path
        (ws / ".git" / "hooks" / f"f{i}").write_text("")
    try:
        daemon = h.up()
        wait_until(lambda: "done" in h.log("w"), 60, "the flood")
        events = [e for e in h.events("wall.violation", "w") if e["data"].get("source") == "audit"]
        # the burst, then RATE a second: far fewer than 3,000, and the next record says how many were left out;
        # 3,000 refused creates in /etc (each names the folder only) are one denial repeated: one record
        assert writewatch.BURST <= len(events) < 3000 * 0.5, len(events)
        assert len([e for e in events if e["data"]["path"] == "/etc/"]) <= 1
        wait_until(lambda: [e for e in h.events("wall.violation", "w") if e["data"]["path"].endswith("/fafter")],
                   10, "the record after the flood")
        h.cli("status")  # the daemon answers
        assert daemon.poll() is None
        # the records after a stretch over the rate say how many were left out: every denial is accounted for
        events = [e["data"] for e in h.events("wall.violation", "w") if e["data"].get("source") == "audit"]
        hooks = [e for e in events if "/.git/hooks/f" in e["path"] and not e["path"].endswith("/fafter")]
        left_out = sum(int(e.get("suppressed", 0)) for e in events)
        etc = 1  # the first create in /etc (over the rate), then the same denial 2,999 times more: repeated
        assert len(hooks) + left_out in (3000, 3000 + etc), (len(hooks), left_out)
        assert h.down(daemon) == 0
        # and the daemon's own count at its stop: each of the 6,001 denials recorded, repeated or left out
        (line,) = [x for x in (root / "daemon.log").read_text().splitlines() if x.startswith("tether: writewatch:")]
        counts = dict(part.rsplit(" ", 1) for part in line.split(": ", 2)[2].split(", "))
        assert sum(int(counts[k]) for k in ("recorded", "repeated", "suppressed")) == 6001, line
        assert counts["lost"] == "0" and counts["unattributed"] == "0", line
    finally:
        h.cleanup()


def test_a_dead_daemons_rules_are_taken_out_by_the_next(tmp_path: Path) -> None:
    needs_wall()
    registry = tmp_path / "reg"
    registry.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (registry / f"{dead.pid}.json").write_text(json.dumps({"uids": [424242]}))
    try:
        _audit_check()
        got = auditrules.register([424243], registry)
        assert got == {424243}
        fields = {f for r in _ours() for f in r.fields}
        assert (auditlink.F_UID, auditlink.EQUAL, 424243) in fields
        assert (auditlink.F_UID, auditlink.EQUAL, 424242) not in fields, "the dead daemon's uid is gone"
        assert not (registry / f"{dead.pid}.json").exists()
    finally:
        auditrules.register([], registry)
    assert all(r.list == auditlink.FILTER_TASK and not r.fields for r in _ours())


def _audit_check() -> None:
    try:
        with auditlink.Link() as link:
            link.status()
    except OSError as err:
        pytest.skip(f"no kernel audit here: {err}")


# -- the records, as the kernel writes them ----------------------------------------------------------------
SYSCALL = (
    'audit(1796588830.585:{n}): arch=c000003e syscall={nr} success=no exit={exit} a0=ffffff9c a1=7ffc a2=241 '
    'a3=1b6 items=2 ppid=7918 pid=7919 auid=1001 uid=1001 gid=1001 euid=1001 ses=77 comm={comm} '
    'exe="/usr/bin/dash" key="tether-wall"'
)


def _feed(asm: auditrecords.Assembler, records: list[tuple[int, str]]) -> list[auditrecords.Denial]:
    out = []
    for kind, text in records:
        out += asm.add(kind, text, now=0.0)
    return out


def test_a_record_set_becomes_one_denial_with_names_decoded() -> None:
    asm = auditrecords.Assembler()
    hexname = b"/etc/a b\"c".hex().upper()  # a name with a space or a quote comes as hex
    got = _feed(asm, [
        (auditrecords.SYSCALL, SYSCALL.format(n=1, nr=257, exit=-30, comm='"sh"')),
        (auditrecords.CWD, 'audit(1796588830.585:1): cwd="/work"'),
        (auditrecords.PATH, 'audit(1796588830.585:1): item=0 name="/etc/" nametype=PARENT'),
        (auditrecords.PATH, f"audit(1796588830.585:1): item=1 name={hexname} nametype=CREATE"),
        (auditrecords.EOE, "audit(1796588830.585:1): "),
    ])
    (d,) = got
    assert (d.call, d.error, d.uid, d.session, d.pid, d.comm) == ("openat", "EROFS", 1001, 77, 7919, "sh")
    assert d.paths == ['/etc/a b"c'] and d.ts == pytest.approx(1796588830.585)
    # a relative name is made whole with the cwd; a set without a name gives "?"
    got = _feed(asm, [
        (auditrecords.SYSCALL, SYSCALL.format(n=2, nr=83, exit=-13, comm="6D6B646972")),
        (auditrecords.CWD, 'audit(1796588830.585:2): cwd="/work"'),
        (auditrecords.PATH, 'audit(1796588830.585:2): item=0 name="sub/../x" nametype=CREATE'),
        (auditrecords.EOE, "audit(1796588830.585:2): "),
        (auditrecords.SYSCALL, SYSCALL.format(n=3, nr=87, exit=-1, comm='"rm"')),
        (auditrecords.EOE, "audit(1796588830.585:3): "),
    ])
    assert [(d.call, d.error, d.path, d.comm) for d in got] == [
        ("mkdir", "EACCES", "/work/x", "mkdir"),
        ("unlink", "EPERM", "?", "rm"),
    ]


def test_records_not_ours_or_broken_are_dropped_and_the_pending_sets_stay_bounded() -> None:
    asm = auditrecords.Assembler()
    other = SYSCALL.format(n=1, nr=257, exit=-30, comm='"sh"').replace('key="tether-wall"', 'key="ssh"')
    junk = [
        (auditrecords.SYSCALL, other),
        (auditrecords.EOE, "audit(1796588830.585:1): "),
        (auditrecords.SYSCALL, "not an audit record"),
        (auditrecords.PATH, "audit(1.2:99): name=" + "41" * 5000),  # a PATH of no set of ours
        (auditrecords.SYSCALL, SYSCALL.format(n=5, nr=0, exit=-30, comm='"sh"')),  # read(): no write call
        (auditrecords.EOE, "audit(1796588830.585:5): "),
        (auditrecords.SYSCALL, SYSCALL.format(n=6, nr=257, exit=0, comm='"sh"')),  # it did not fail
        (auditrecords.EOE, "audit(1796588830.585:6): "),
        (1400, "audit(1796588830.585:7): apparmor=DENIED"),
    ]
    assert _feed(asm, junk) == []
    # unfinished sets (no EOE): at most PENDING_MAX kept (the oldest given early), each given once it is
    # STALE_S old; none lost
    given = []
    for n in range(auditrecords.PENDING_MAX * 3):
        given += asm.add(auditrecords.SYSCALL, SYSCALL.format(n=100 + n, nr=257, exit=-30, comm='"sh"'), now=0.0)
        given += asm.add(auditrecords.PATH, f'audit(1.0:{100 + n}): item=0 name="/etc/{"x" * 3000}" nametype=NORMAL',
                         now=0.0)
    assert len(given) == auditrecords.PENDING_MAX * 2
    late = asm.add(0, "", now=auditrecords.STALE_S + 1)
    assert len(late) == auditrecords.PENDING_MAX
    assert all(len(d.path) <= auditrecords.TEXT_MAX for d in given + late)
    assert asm.flush() == []


def test_the_rules_come_back_from_the_kernel_as_they_went_in() -> None:
    needs_wall()
    _audit_check()
    rules = auditrules.exit_rules(424244)
    assert rules and all(len(r.pack()) > 0 for r in rules)
    with auditlink.Link() as link:
        for r in rules:
            link.add(r)
        try:
            uid = (auditlink.F_UID, auditlink.EQUAL, 424244)
            back = [r for r in link.rules() if r.key == auditrules.KEY and uid in r.fields]
            assert sorted(back, key=repr) == sorted(rules, key=repr)
        finally:
            for r in rules:
                link.delete(r)
    assert not [r for r in _ours() if (auditlink.F_UID, auditlink.EQUAL, 424244) in r.fields]


def test_the_watch_is_off_with_a_reason_when_it_cannot_be_on(monkeypatch: pytest.MonkeyPatch) -> None:
    w = writewatch.WriteWatch(lambda uid, ses: (None, None, False), lambda a, d, c: None)
    monkeypatch.setenv(writewatch.OFF_VAR, "off")
    assert w.watch({1234}) == "TETHER_WALL_AUDIT=off: the daemon leaves the kernel's audit alone"
    assert not w.on and w.status()["reason"] == w.reason
    monkeypatch.delenv(writewatch.OFF_VAR)
    if os.geteuid() != 0:
        assert "not root" in str(w.watch({1234}))


def test_doctor_says_whether_denied_writes_are_recorded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.host.doctor import check_denied_writes
    from tether.runbook import load

    h, _ = _host(root, "exec sleep 3600\n")
    try:
        line = check_denied_writes(load(h.runbook)).line()
        assert line.startswith("ok      wall: denied writes: the daemon will record each"), line
        monkeypatch.setenv(writewatch.OFF_VAR, "off")
        line = check_denied_writes(load(h.runbook)).line()
        assert line.startswith("warn    wall: denied writes: recorded only by `tether drill --only sandbox`"), line
        assert "TETHER_WALL_AUDIT=off" in line
        monkeypatch.delenv(writewatch.OFF_VAR)
        # a daemon running: what it says of itself
        daemon = h.up(env={"TETHER_WALL_AUDIT": "off"})
        line = check_denied_writes(load(h.runbook)).line()
        assert "warn" in line and "TETHER_WALL_AUDIT=off: the daemon leaves the kernel's audit alone" in line, line
        assert h.down(daemon) == 0
        daemon = h.up()
        line = check_denied_writes(load(h.runbook)).line()
        assert line.startswith("ok      wall: denied writes: the daemon records each"), line
        assert h.down(daemon) == 0
        # a killed daemon's daemon.json saying "off" is left behind: not taken for what a daemon does now
        (h.state / "daemon.json").write_text(json.dumps(
            {"pid": daemon.pid, "started": 1.0, "denied_writes": {"on": False, "reason": "stale"}}))
        line = check_denied_writes(load(h.runbook)).line()
        assert "stale" not in line and line.startswith("ok      wall: denied writes: the daemon will record"), line
    finally:
        h.cleanup()


#: Writes into /etc each time the file GO changes (a new word in it), then waits again.
ON_CUE = r"""
last=
while :; do
  now=$(cat {ws}/go 2>/dev/null)
  if [ -n "$now" ] && [ "$now" != "$last" ]; then
    sh -c "echo x > /etc/tether-cue-$now" 2>/dev/null
    echo "tried $now"
    last=$now
  fi
  sleep 0.05
done
"""


def test_a_run_adopted_by_the_next_daemon_and_an_agent_added_by_a_reload_are_watched(root: Path) -> None:
    h, ws = _host(root, ON_CUE)
    (ws / "go").write_text("")

    def audit_events(name: str) -> list[dict[str, object]]:
        return [e["data"] for e in h.events("wall.violation", name) if e["data"].get("source") == "audit"]

    try:
        first = h.up()
        wait_until(lambda: h.agent_pids("w"), 15, "the agent to start")
        (ws / "go").write_text("one")
        wait_until(lambda: "tried one" in h.log("w"), 15, "the first try")
        wait_until(lambda: audit_events("w"), 10, "its record")
        (before,) = audit_events("w")
        # the daemon killed: its rules stay in the kernel (nobody took them out); the next daemon adopts the
        # run, finds it by its audit session (the keeper's, unchanged) and counts what it does
        h.kill9(first)
        second = h.up()
        wait_until(lambda: h.events("agent.adopted", "w"), 15, "the run adopted")
        (ws / "go").write_text("two")
        wait_until(lambda: "tried two" in h.log("w"), 15, "the second try")
        wait_until(lambda: len(audit_events("w")) >= 2, 10, "its record after the adoption")
        after = audit_events("w")[-1]
        assert after["in_run"] is True and after["counted"] is True, after
        assert after["instance"] == before["instance"], "the same run"
        assert "tether-cue-two" in str(after["command"]) and "tether-cue-one" in str(before["command"])
        # a reload adds an agent: from then on its writes are recorded too
        spec = agent(["sh", "-c", "sh -c 'echo x > /etc/tether-reload-planted' 2>/dev/null; exec sleep 3600"],
                     run_as=USER)
        h.write({"w": agent(["sh", str(ws / "run.sh")], run_as=USER,
                            violations={"limit": 5, "window": "10m"}), "late": spec})
        assert h.cli("reload").returncode == 0
        wait_until(lambda: audit_events("late"), 15, "the added agent's record")
        assert audit_events("late")[0]["in_run"] is True
        assert h.down(second) == 0
    finally:
        h.cleanup()


def test_rules_someone_took_out_are_put_back(root: Path) -> None:
    h, ws = _host(root, ON_CUE)
    (ws / "go").write_text("")
    try:
        daemon = h.up(env={"TETHER_WALL_AUDIT_CHECK": "1s"})
        wait_until(lambda: h.agent_pids("w"), 15, "the agent to start")
        uid = next(f[2] for r in _ours() for f in r.fields if f[0] == auditlink.F_UID and f[1] == auditlink.EQUAL)
        with auditlink.Link() as link:  # what `auditctl -D` does to tether's rules
            for r in _ours():
                if r.list == auditlink.FILTER_EXIT:
                    link.delete(r)
        assert not auditrules.intact({uid})
        wait_until(lambda: auditrules.intact({uid}), 10, "the rules put back")
        assert "rules for the agents had been taken out: put back" in (root / "daemon.log").read_text()
        (ws / "go").write_text("one")
        wait_until(lambda: [e for e in h.events("wall.violation", "w") if e["data"].get("source") == "audit"], 10,
                   "a record after the rules came back")
        assert h.down(daemon) == 0
    finally:
        h.cleanup()


def test_a_miss_counts_only_in_a_tree_hidden_from_the_agent() -> None:
    from tether.wall.profile import Profile

    p = Profile(agent="a", uid=1001, gid=1001, user="u", home="/s/agents/a/home", tmpdir="/s/agents/a/tmp",
                writable=("/tmp/ws/a", "/s/agents/a/home/.npm"), read_only=("/tmp/ws/a/.git/config",),
                hidden_dirs=("/s", "/tmp/ws/a/secrets", "/tmp/ws/b"), masked=("/root",))
    hidden = ["/s/agents/b/KILL", "/s/tether.db", "/tmp/x/y", "/tmp/ws/b/notes", "/tmp/ws/a/secrets/k/x",
              "/root/.ssh/x", "/run/user/0/x", "/var/tmp/a/b"]
    plain = ["/tmp/ws/a/no/such", "/s/agents/a/home/x/y", "/s/agents/a/tmp/x/y", "/usr/lib/x/y", "/etc/x/y",
             "/tmp/ws/a", "/s/agents/a/home/.npm/x/y"]
    assert [x for x in hidden if not writewatch.hidden_from(p, x)] == []
    assert [x for x in plain if writewatch.hidden_from(p, x)] == []
