"""agent-status.json: the document, and atomic rewrites that a reader can never catch half-done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import cli_env
from tether.paths import StateDir
from tether.status_file import document, iso, write, write_atomic

NOW = 1_700_000_000.0
ROW = {
    "name": "worker", "state": "running", "reason": None, "task": "fix bug", "progress": "2/5",
    "last_heartbeat": NOW - 12.5, "last_task": "triage", "last_task_at": NOW - 600, "files_changed": 3,
    "commands_run": 7, "tests": {"passed": 10, "failed": 1}, "approval_required": 1, "restarts": 2,
    "pid": 4242, "desired": "running",
}


def test_document() -> None:
    doc = document(ROW, NOW)
    assert doc == {
        "schema": 1, "agent": "worker", "state": "running", "reason": None, "task": "fix bug", "progress": "2/5",
        "last_heartbeat": "2023-11-14T22:13:07+00:00", "heartbeat_age_s": 12.5,
        "last_completed_task": "triage", "last_completed_at": "2023-11-14T22:03:20+00:00",
        "files_changed": 3, "commands_run": 7, "tests": {"passed": 10, "failed": 1}, "approval_required": True,
        "restarts": 2, "pid": 4242, "desired": "running", "updated": "2023-11-14T22:13:20+00:00",
    }


def test_document_of_a_fresh_row() -> None:
    doc = document({"name": "new", "state": "stopped"}, NOW)
    assert (doc["last_heartbeat"], doc["heartbeat_age_s"], doc["approval_required"]) == (None, None, False)
    assert (doc["files_changed"], doc["restarts"], doc["tests"]) == (0, 0, None)
    assert iso(None) is None and iso(0) is None


def test_every_field_of_the_document_is_documented() -> None:
    """docs/FILES.md's table of agent-status.json names every field the file can hold."""
    full = {**ROW, "retries": 1, "drills": json.dumps({"kill": {"status": "pass"}}), "last_drill_at": NOW,
            "signals": {}, "queue_depth": 1, "oldest_queued": NOW - 5}
    docs = (Path(__file__).resolve().parents[1] / "docs" / "FILES.md").read_text()
    table = docs[docs.index("## `agent-status.json`"):]
    table = table[:table.find("\n## ", 1)] if "\n## " in table[1:] else table
    missing = [key for key in document(full, NOW) if f"`{key}`" not in table]
    assert missing == [], f"fields of agent-status.json missing from docs/FILES.md: {missing}"


def test_write_puts_the_file_where_the_docs_say(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    path = write(state, ROW, NOW)
    assert path == tmp_path / "state" / "agents" / "worker" / "agent-status.json"
    assert json.loads(path.read_text()) == document(ROW, NOW)
    assert os.listdir(path.parent) == ["agent-status.json"], "no temp file left behind"


def test_write_redacts(tmp_path: Path) -> None:
    token = "ghp_" + "A" * 36
    path = write(StateDir(tmp_path), {**ROW, "task": f"push with {token}"}, NOW)
    text = path.read_text()
    assert token not in text
    assert json.loads(text)["task"] == "push with [REDACTED:github]"


def test_write_atomic_replaces(tmp_path: Path) -> None:
    path = tmp_path / "d" / "f.json"
    write_atomic(path, '{"v": 1}')
    write_atomic(path, '{"v": 2}')
    assert path.read_text() == '{"v": 2}'
    assert os.listdir(path.parent) == ["f.json"]


READER = """
import json, os, sys
path, stop = sys.argv[1], sys.argv[2]
reads = invalid = missing = 0
seen = set()
while True:
    done = os.path.exists(stop)
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        missing += 1
    else:
        reads += 1
        try:
            seen.add(json.loads(text)["i"])
        except ValueError:
            invalid += 1
    if reads == 1:
        print("ready", flush=True)
    if done:
        break
print(json.dumps({"reads": reads, "invalid": invalid, "missing": missing, "versions": len(seen)}))
"""


def test_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    path, stop = tmp_path / "agent-status.json", tmp_path / "stop"

    def doc(i: int) -> str:  # alternate long and short documents, so a torn write would show
        return json.dumps({"i": i, "pad": "x" * (20_000 if i % 2 else 10)}, indent=1)

    write_atomic(path, doc(0))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE,
                              text=True, env=cli_env())
    assert reader.stdout is not None
    try:
        assert reader.stdout.readline() == "ready\n"
        for i in range(1, 501):
            write_atomic(path, doc(i))
        stop.touch()
        result = json.loads(reader.stdout.readline())
    finally:
        reader.kill()
        reader.wait()
    assert result["invalid"] == 0 and result["missing"] == 0, result
    assert result["versions"] >= 2, f"the reader ran while the writer wrote: {result}"
    assert json.loads(path.read_text())["i"] == 500
    assert sorted(os.listdir(tmp_path)) == ["agent-status.json", "stop"]


def test_concurrent_writers_in_one_process(tmp_path: Path) -> None:
    """The store's writer thread and a monitor thread may rewrite the same agent's file at once."""
    path = tmp_path / "agent-status.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(150):
                write_atomic(path, json.dumps({"n": n, "i": i, "pad": "y" * (n * 4000)}))
        except BaseException as err:
            errors.append(err)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert errors == []
    doc = json.loads(path.read_text())
    assert doc["i"] == 149 and doc["pad"] == "y" * (doc["n"] * 4000)
    assert os.listdir(tmp_path) == ["agent-status.json"]


def test_full_disk_keeps_the_old_file(tiny_disk: Path) -> None:
    path = tiny_disk / "agents" / "w" / "agent-status.json"
    write_atomic(path, json.dumps({"v": "old"}))
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - 16384)  # room for part of the new document, not all of it
    big = json.dumps({"v": "new", "pad": "z" * 100_000})
    with pytest.raises(OSError):
        write_atomic(path, big)
    assert json.loads(path.read_text()) == {"v": "old"}, "the old file is intact"
    assert os.listdir(path.parent) == ["agent-status.json"], "no temp file left behind"
