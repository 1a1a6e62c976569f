"""The store under faults, with real processes and real file systems: SIGKILL mid-write, a corrupt file,
a state directory this user cannot enter, a full disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cli_env, one_line_error, run_cli, sqlite_ids, unprivileged_prefix
from tether.errors import StoreError
from tether.store import NewEvent, open_store
from tether.store.sqlite import SQLiteStore

# A child that appends batches of 3 events from 4 threads and prints each acknowledged id once append returns.
WRITER = """
import sys, threading
from tether.store import NewEvent, open_store
store = open_store("sqlite:///" + sys.argv[1])
out = threading.Lock()
def run(n):
    i = 0
    while True:
        ids = store.append([NewEvent("log", f"t{n}", {"batch": f"{sys.argv[2]}-{n}-{i}", "part": p}) for p in range(3)])
        with out:
            sys.stdout.write(" ".join(map(str, ids)) + "\\n")
            sys.stdout.flush()
        i += 1
for n in range(4):
    threading.Thread(target=run, args=(n,), daemon=True).start()
threading.Event().wait()
"""


def kill_after(db: Path, lines: int, run: int) -> list[int]:
    """Start the writer, SIGKILL it after it has acknowledged ``lines`` appends; the ids it acknowledged."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(run)], stdout=subprocess.PIPE, env=cli_env())
    assert proc.stdout is not None
    acked: list[int] = []
    try:
        for _ in range(lines):
            line = proc.stdout.readline()
            assert line.endswith(b"\n"), "the writer died early"
            acked += map(int, line.split())
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    for line in rest.split(b"\n")[:-1]:  # the last piece is empty or a line cut short by the kill
        acked += map(int, line.split())
    return acked


def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    acked: list[int] = []
    for round_ in range(3):  # each round starts on the WAL the last kill left behind
        acked += kill_after(db, 60 + 40 * round_, round_)
        check, ids = sqlite_ids(db)
        assert check == "ok"
        missing = set(acked) - set(ids)
        assert not missing, f"acknowledged but lost after SIGKILL: {sorted(missing)[:10]}"
    store = SQLiteStore(db, readonly=True)
    try:
        assert store.integrity_check() == "ok"
        by_batch: dict[str, list[int]] = {}
        for e in store.events(limit=100_000):
            by_batch.setdefault(e.data["batch"], []).append(e.data["part"])
        assert by_batch
        torn = {b: parts for b, parts in by_batch.items() if sorted(parts) != [0, 1, 2]}
        assert not torn, f"an append is all or nothing: {torn}"
    finally:
        store.close()


# --- a corrupt store ----------------------------------------------------------------------------


def _garbage_everywhere(db: Path) -> None:
    db.write_bytes(os.urandom(3) + b"not a database" * 600)


def _garbage_after_header(db: Path) -> None:
    with db.open("r+b") as f:
        f.seek(100)
        f.write(b"\xff" * (db.stat().st_size - 100))


def _another_apps_database(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()


def _empty_file(db: Path) -> None:
    db.write_bytes(b"")


@pytest.fixture
def filled_home(tmp_path: Path) -> Path:
    home = tmp_path / "state"
    with open_store(f"sqlite:///{home / 'tether.db'}") as store:
        store.append([NewEvent("agent.registered", f"a{i}", {"info": {"pad": "x" * 300}}) for i in range(40)])
    for suffix in ("-wal", "-shm"):
        Path(f"{home / 'tether.db'}{suffix}").unlink(missing_ok=True)
    return home


@pytest.mark.parametrize(
    "damage", [_garbage_everywhere, _garbage_after_header, _another_apps_database, _empty_file],
    ids=lambda f: f.__name__.strip("_"),
)
@pytest.mark.parametrize("command", [["status"], ["events"], ["status", "--json"], ["-f", "RUNBOOK", "status"]])
def test_corrupt_store_is_one_line(filled_home: Path, damage: object, command: list[str]) -> None:
    """Through the fast path (TETHER_HOME) and through click (a runbook naming the state dir) alike."""
    db = filled_home / "tether.db"
    assert callable(damage)
    damage(db)
    if "RUNBOOK" in command:
        runbook = filled_home.parent / "tether.yaml"
        runbook.write_text(f"host:\n  state_dir: {filled_home}\n")
        proc = run_cli(*[str(runbook) if c == "RUNBOOK" else c for c in command])
    else:
        proc = run_cli(*command, home=filled_home)
    line = one_line_error(proc)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert line == (
        f"tether: error: {db}: the file is corrupt or not a tether store; "
        "move it aside and restore a backup (`tether backup`)"
    )


# --- a state directory this user cannot use -----------------------------------------------------


@pytest.fixture
def locked_state() -> Iterator[tuple[list[str], Path]]:
    """(prefix, dir): running under ``prefix``, a process cannot enter ``dir`` (mode 0700, not its owner)."""
    base = Path(tempfile.mkdtemp(prefix="tether-locked-"))
    try:
        base.chmod(0o755)  # /tmp/pytest-of-root is private; this one must be reachable
        how = unprivileged_prefix(base)
        if how is None:
            pytest.skip("needs root and setpriv to run a process that obeys file modes")
        prefix, owner = how
        state = base / "state"
        with open_store(f"sqlite:///{state / 'tether.db'}") as store:
            store.emit("agent.registered", "w", info={})
        os.chown(state, owner, owner)
        state.chmod(0o700)
        yield prefix, state
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_state_dir_not_readable(locked_state: tuple[list[str], Path]) -> None:
    prefix, state = locked_state
    for command in (["status"], ["events", "-n", "1"], ["backup", "/tmp/never-written.db"]):
        proc = run_cli(*command, home=state, prefix=prefix, cwd="/")
        line = one_line_error(proc)
        assert line.startswith(f"tether: error: {state}"), line
        assert "ermission denied" in line or "cannot" in line, line
    assert not Path("/tmp/never-written.db").exists()


def test_state_dir_not_writable(locked_state: tuple[list[str], Path]) -> None:
    prefix, state = locked_state
    proc = run_cli("demo", "--dir", str(state / "demo"), prefix=prefix, cwd="/")
    line = one_line_error(proc)
    assert line.startswith(f"tether: error: {state}"), line
    assert "ermission denied" in line or "cannot" in line, line
    code = (
        "import sys\nfrom tether.store import open_store\nfrom tether.errors import StoreError\n"
        "try:\n    open_store('sqlite:///' + sys.argv[1]).emit('log')\n"
        "except StoreError as err:\n    print(err)\n    sys.exit(1)\n"
    )
    proc = subprocess.run([*prefix, sys.executable, "-c", code, str(state / "sub" / "tether.db")],
                          capture_output=True, text=True, env=cli_env(), cwd="/", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"{state}/sub: cannot create the state directory"), proc.stdout


# --- a full disk --------------------------------------------------------------------------------


def test_disk_full_fails_cleanly(tiny_disk: Path) -> None:
    db = tiny_disk / "tether.db"
    store = SQLiteStore(db)
    acked: list[int] = []
    try:
        with pytest.raises(StoreError) as info:
            for i in range(10_000):
                acked += store.append([NewEvent("log", "w", {"i": i, "pad": os.urandom(400).hex()})])
        assert str(info.value) == f"{db}: the disk is full; free space and try again (nothing was written)"
        assert acked, "some events fit before the disk filled"
        with pytest.raises(StoreError, match="disk is full"):  # still full, still a clean error
            store.emit("log", "w", pad="y" * 2000)
        assert [e.id for e in store.events(limit=100_000)] == acked
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    again = SQLiteStore(db, readonly=True)
    try:
        got = again.events(limit=100_000)
        assert [e.id for e in got] == acked, "exactly the acknowledged events, nothing half-written"
        assert [e.data["i"] for e in got] == list(range(len(acked)))
        assert again.integrity_check() == "ok"
    finally:
        again.close()
