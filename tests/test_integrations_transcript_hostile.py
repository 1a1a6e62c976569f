"""A transcript path comes from the agent, who may name anything: /dev/zero, a FIFO, a link out of its
transcript folder, someone else's file, 50 MB on one line. tether reads only regular files of the agent's
user under that CLI's transcript root, never blocks on them, and reads a bounded amount a pass, line by line.
Unit level for the reader; a real daemon for the hook path (memory, the worker thread, the log line)."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from test_daemon_kit import IS_ROOT, Host, agent, make_host, wait_until  # noqa: F401 - the fixture
from tether.integrations import transcript
from tether.integrations.monitor import Monitor
from tether.runbook import load
from tether.runbook.model import Agent
from tether.store import open_store

MODEL = "claude-sonnet-4-5-20250929"
USAGE = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7}


def line(msg: str) -> bytes:
    return json.dumps({"type": "assistant", "requestId": f"r-{msg}",
                       "message": {"id": msg, "model": MODEL, "usage": USAGE}}).encode() + b"\n"


def spec(**over: object) -> Agent:
    person = {"name": "A", "contact": "json://127.0.0.1:9/a"}
    return Agent.model_validate({"name": "cc", "owner": person, "backup": person, "kind": "claude-code",
                                 "prompt": "x", **over})


def here(root: Path) -> transcript.Place:
    return transcript.Place((str(root),), os.geteuid())


def refused(path: Path | str, where: transcript.Place | None) -> str:
    with pytest.raises(transcript.Refused) as err:
        transcript.read_usage("claude-code", path, transcript.Cursor(), where)
    return str(err.value)


# -- the reader ----------------------------------------------------------------------------------------------


def test_roots_and_owner_follow_the_agents_environment_and_user(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    got = transcript.place("claude-code", spec(env={"CLAUDE_CONFIG_DIR": str(cfg), "HOME": str(tmp_path)}))
    assert got.uid == os.geteuid() and got.roots[0] == str(cfg / "projects")
    assert str(tmp_path / ".claude" / "projects") in got.roots
    got = transcript.place("codex", spec(env={"CODEX_HOME": str(tmp_path / "cx")}))
    assert got.roots[0] == str(tmp_path / "cx" / "sessions")
    import pwd

    nobody = pwd.getpwnam("nobody")
    got = transcript.place("codex", spec(run_as="nobody", env={"HOME": str(tmp_path)}))
    assert (got.roots, got.uid) == ((os.path.join(nobody.pw_dir, ".codex", "sessions"),), nobody.pw_uid)
    assert "set CODEX_HOME in the agent's env: in the runbook" in got.hint
    assert transcript.place("codex", spec(run_as="no-such-user-here")).roots == ()


def test_devices_fifos_links_and_files_outside_are_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    (root / "p").mkdir(parents=True)
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_bytes(line("m1"))
    assert "outside the transcript folder" in refused("/dev/zero", here(root))
    assert "not a regular file" in refused("/dev/zero", None)  # even with no root to hold it to
    assert "outside" in refused(outside, here(root))
    assert "not an absolute" in refused("p/x.jsonl", here(root))
    (root / "p" / "link.jsonl").symlink_to(outside)
    assert "is a symbolic link" in refused(root / "p" / "link.jsonl", here(root))
    (root / "p" / "inner.jsonl").write_bytes(line("m1"))
    (root / "p" / "link2.jsonl").symlink_to(root / "p" / "inner.jsonl")  # a link, even to a transcript
    assert "is a symbolic link" in refused(root / "p" / "link2.jsonl", here(root))
    (root / "out").symlink_to(tmp_path)  # a folder link out of the root
    assert "outside" in refused(root / "out" / "elsewhere.jsonl", here(root))
    fifo = root / "p" / "fifo.jsonl"
    os.mkfifo(fifo)
    done: list[str] = []
    t = threading.Thread(target=lambda: done.append(refused(fifo, here(root))), daemon=True)
    t.start()
    t.join(10)
    assert done and "not a regular file" in done[0], "reading a FIFO blocked"
    if IS_ROOT:
        try:
            os.mknod(root / "p" / "zero.jsonl", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero, inside the root
        except PermissionError:
            pass
        else:
            assert "not a regular file" in refused(root / "p" / "zero.jsonl", here(root))
    assert transcript.read_usage("claude-code", root / "p" / "none.jsonl", transcript.Cursor(), here(root)) == {}
    [u] = transcript.read_usage("claude-code", root / "p" / "inner.jsonl", transcript.Cursor(), here(root)).values()
    assert u.calls == 1


@pytest.mark.skipif(not IS_ROOT, reason="making a file of another user needs root")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    root.mkdir()
    theirs = root / "theirs.jsonl"
    theirs.write_bytes(line("m1"))
    os.chown(theirs, 65534, 65534)
    assert "owned by uid 65534" in refused(theirs, here(root))
    assert transcript.read_usage("claude-code", theirs, transcript.Cursor(), transcript.Place((str(root),), 65534))


def test_a_huge_line_is_skipped_in_bounded_passes_and_the_rest_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with open(path, "wb") as f:
        f.write(line("m1"))
        f.write(b'{"pad": "' + b"x" * (50 << 20) + b'"}\n')  # 50 MB on one line
        f.write(line("m2"))
        f.write(b"y" * (3 << 20))  # a long line still being written
    cur, calls, passes = transcript.Cursor(), 0, 0
    tracemalloc.start()
    try:
        while passes < 10:
            passes += 1
            calls += sum(u.calls for u in transcript.read_usage("claude-code", path, cur).values())
            if not cur.behind:
                break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert calls == 2 and passes == 4, (calls, passes)  # 16 MiB a pass
    assert peak < 4 * transcript.LINE_MAX, peak  # a chunk and a line at most, never the file
    assert cur.skip and cur.offset == path.stat().st_size  # inside the unfinished long line
    with open(path, "ab") as f:
        f.write(b"tail of it\n" + line("m3"))
    [u] = transcript.read_usage("claude-code", path, transcript.Cursor.of(cur.saved())).values()
    assert u.calls == 1 and not cur.behind


def test_the_monitor_takes_roots_from_the_runbook_entry_and_reports_refusals_once(tmp_path: Path,
                                                                                  capfd: pytest.CaptureFixture[str]
                                                                                  ) -> None:
    cfg = tmp_path / "cfg"
    (cfg / "projects" / "p").mkdir(parents=True)
    good = cfg / "projects" / "p" / "s1.jsonl"
    good.write_bytes(line("m1"))
    rb = tmp_path / "tether.yaml"
    rb.write_text(
        f"host: {{state_dir: {tmp_path / 'state'}}}\nagents:\n  cc:\n"
        "    owner: {name: A, contact: \"json://127.0.0.1:9/a\"}\n    backup: {name: B, contact: \"json://127.0.0.1:9/b\"}\n"
        f"    kind: claude-code\n    prompt: x\n    env: {{CLAUDE_CONFIG_DIR: {cfg}}}\n"
    )
    loaded = load(rb)
    store = open_store(loaded.store_url)
    control = SimpleNamespace(loaded=loaded)
    mon = Monitor(store, loaded.state, lambda a, t: None, spec_of=lambda name: control.loaded.runbook.agents.get(name))
    try:
        for _ in range(20):
            mon.event("claude-code", "cc", {"hook_event_name": "Stop", "session_id": "s1",
                                            "transcript_path": "/dev/zero"})
        mon.event("claude-code", "cc", {"hook_event_name": "SessionEnd", "session_id": "s1",
                                        "transcript_path": str(good)})
        assert mon.drain()
        kinds = [(e.kind, e.data) for e in store.events(limit=1000) if e.agent == "cc"]
        errors = [d["error"] for k, d in kinds if k == "integration.error"]
        assert len(errors) == 1 and "/dev/zero is outside the transcript folder" in errors[0], errors
        assert [d["calls"] for k, d in kinds if k == "usage"] == [1]
        logged = [x for x in capfd.readouterr().err.splitlines() if "transcript refused" in x]
        assert len(logged) == 1 and logged[0].startswith("tether: cc: claude-code transcript refused: /dev/zero")
    finally:
        mon.stop()
        store.close()


# -- a real daemon ----------------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss


def test_hostile_transcript_paths_leave_the_daemon_up_small_and_working(
    make_host: Callable[..., Host], tmp_path: Path  # noqa: F811
) -> None:
    cfg = tmp_path / "cfg"
    proj = cfg / "projects" / "p"
    proj.mkdir(parents=True)
    names = ["zero", "fifo", "link", "outside", "huge"] + (["theirs"] if IS_ROOT else [])
    h = make_host({n: agent(["sleep", "3600"], autostart=False, env={"CLAUDE_CONFIG_DIR": str(cfg)}) for n in names})
    daemon = h.up(env={"CLAUDE_CONFIG_DIR": str(cfg)})
    tokens = {}
    for n in names:
        made = h.cli("token", "create", "--role", "agent", "--agent", n)
        assert made.returncode == 0, made.stderr
        tokens[n] = made.stdout.strip()

    def hook(name: str, event: str, path: Path | str) -> None:
        status, _ = h.api("POST", f"/v1/hooks/claude-code/{name}", {"hook_event_name": event, "session_id": "s1",
                                                                     "transcript_path": str(path)}, token=tokens[name])
        assert status == 200, status

    def usage_of(name: str, path: Path, n: int) -> list[dict[str, object]]:
        hook(name, "SessionEnd", path)
        return wait_until(lambda: len(got := h.events("usage", name)) >= n and got, 30, f"{name}'s usage")

    legit = proj / "legit.jsonl"
    legit.write_bytes(line("m1"))
    usage_of("zero", legit, 1)  # warm: the monitor and its thread exist, one transcript read
    idle = psutil.Process(daemon.pid).memory_info().rss

    for _ in range(30):
        hook("zero", "SessionEnd", "/dev/zero")
    with open(legit, "ab") as f:
        f.write(line("m2"))
    assert len(usage_of("zero", legit, 2)) == 2  # every refusal before it was handled
    peak = _peak_rss(daemon.pid)
    assert peak < 2 * idle, (peak, idle)
    [err] = [e["data"]["error"] for e in h.events("integration.error", "zero")]
    assert "/dev/zero is outside the transcript folder" in err
    assert h.daemon_log().count("zero: claude-code transcript refused") == 1  # not once per hook call

    os.mkfifo(proj / "fifo.jsonl")
    hook("fifo", "Stop", proj / "fifo.jsonl")
    assert usage_of("fifo", legit, 1)  # the worker did not block on the FIFO
    assert "not a regular file" in h.events("integration.error", "fifo")[0]["data"]["error"]

    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(line("m1"))
    (proj / "link.jsonl").symlink_to(outside)
    hook("link", "Stop", proj / "link.jsonl")
    hook("outside", "Stop", outside)
    if IS_ROOT:
        theirs = proj / "theirs.jsonl"
        theirs.write_bytes(line("m1"))
        os.chown(theirs, 65534, 65534)
        hook("theirs", "Stop", theirs)
    for name, why in (("link", "is a symbolic link"), ("outside", "outside"), ("theirs", "owned by uid 65534")):
        if name in names:
            got = wait_until(lambda n=name: h.events("integration.error", n), 30, f"{name} refused")  # type: ignore[misc]
            assert why in got[0]["data"]["error"], got
            assert not h.events("usage", name)

    huge = proj / "huge.jsonl"
    with open(huge, "wb") as f:
        f.write(line("h1") + b'{"pad": "' + b"x" * (50 << 20) + b'"}\n' + line("h2"))
    before = psutil.Process(daemon.pid).memory_info().rss
    got = usage_of("huge", huge, 2)  # one hook event, four bounded passes
    assert sum(int(str(u["data"]["calls"])) for u in got) == 2
    assert _peak_rss(daemon.pid) < 2 * idle, (_peak_rss(daemon.pid), idle, before)
    assert daemon.poll() is None and h.api("GET", "/v1/health")[0] == 200
    assert h.down(daemon) == 0


# -- the other path an agent names: the cwd that `git status` runs in ----------------------------------------


def test_git_in_the_agents_cwd_runs_no_fsmonitor_and_gives_up_on_huge_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from tether.integrations import monitor

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    marker = tmp_path / "fsmonitor-ran"
    subprocess.run(["git", "-C", str(repo), "config", "core.fsmonitor", f"touch {marker}; false"], check=True)
    for i in range(10):
        (repo / f"f{i}.txt").write_text("x")
    snap = monitor.git_snapshot(str(repo))
    assert snap is not None and len(snap) == 10 and not marker.exists()
    assert monitor.git_snapshot("relative/path") is None and monitor.git_snapshot(str(tmp_path / "none")) is None
    monkeypatch.setattr(monitor, "GIT_ENTRIES_MAX", 5)
    assert monitor.git_snapshot(str(repo)) is None
    monkeypatch.setattr(monitor, "GIT_OUT_MAX", 20)
    assert monitor._git(str(repo), "status", "--porcelain=v1", "-z", "--untracked-files=all") is None


def test_an_agent_inside_the_wall_has_its_transcripts_in_the_home_the_wall_gave_it(tmp_path: Path) -> None:
    import os

    from tether.integrations import transcript
    from tether.runbook.model import Agent

    if os.geteuid() != 0:
        pytest.skip("as root the wall runs the agent as its run_as user")
    person = {"name": "A", "contact": "json://127.0.0.1/a"}
    spec = Agent.model_validate({"name": "cc", "owner": person, "backup": person, "kind": "claude-code",
                                 "prompt": "x", "run_as": "nobody"})
    home = str(tmp_path / "agents" / "cc" / "home")
    where = transcript.place("claude-code", spec, home)
    assert where.roots == (f"{home}/.claude/projects",) and where.uid == 65534, where
    assert transcript.place("claude-code", spec).roots != where.roots, "outside the wall: the user's own home"
