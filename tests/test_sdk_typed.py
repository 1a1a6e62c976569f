"""The public SDK is a typed library: results are TypedDicts a type checker reads, errors share one base
class, ``__all__`` states the surface, and ``check`` changes nothing of the agent while it waits."""

from __future__ import annotations

import subprocess
import sys
import threading
import typing
from pathlib import Path
from typing import Any

import tether
from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401
from tether import sdk

SLEEP = [PY, "-c", "import time\nwhile True: time.sleep(1)"]


def test_the_public_surface() -> None:
    assert set(sdk.__all__) == {"Agent", "Decision", "Denied", "Task", "TetherError", "TetherUnavailable"}
    for name in sdk.__all__:
        assert getattr(tether, name) is getattr(sdk, name)
    assert issubclass(sdk.TetherUnavailable, sdk.TetherError) and issubclass(sdk.Denied, sdk.TetherError)
    hints = typing.get_type_hints(sdk.Agent.check)
    assert hints["return"] is sdk.Decision
    assert typing.get_type_hints(sdk.Agent.next_task)["return"] == sdk.Task | None


def test_results_are_what_their_types_say_and_check_changes_nothing_while_it_waits(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    h.write({"w": agent(SLEEP)})
    h.up()
    a = sdk.Agent("w", h.url, h.agent_token("w"), timeout=7)

    allowed = a.check(command="ls")
    assert allowed["decision"] == "allow"
    assert set(sdk.Decision.__annotations__) <= set(allowed), set(sdk.Decision.__annotations__) - set(allowed)

    out: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: out.update(got=a.check(command="git push --force origin main", wait=20)))
    waiter.start()
    pending = wait_until(lambda: h.api("GET", "/v1/approvals?state=pending")[1]["approvals"], 10, "the approval")
    assert a.timeout == 7  # the waiting call has its own timeout: another thread's calls keep the agent's
    assert a.check(command="ls")["decision"] == "allow"  # and the same agent can ask meanwhile
    assert h.cli("approve", str(pending[0]["id"])).returncode == 0
    waiter.join(10)
    assert out["got"]["decision"] == "allow" and out["got"]["approval_id"] == pending[0]["id"]

    with a.task("write the docs") as started:
        assert set(started) == set(sdk.Task.__annotations__)
        assert started["state"] == "started" and started["text"] == "write the docs" and started["agent"] == "w"
    a.add_task("queued one")
    taken = a.next_task()
    assert taken is not None and set(taken) == set(sdk.Task.__annotations__) and taken["text"] == "queued one"


def test_a_type_checker_reads_the_results(tmp_path: Path) -> None:
    user = tmp_path / "user_agent.py"
    user.write_text(
        "import tether\n"
        "a = tether.Agent('w', 'http://127.0.0.1:9', 't')\n"
        "got = a.check(command='ls')\n"
        "reason: int = got['reason']\n"  # a str: the checker must say so
        "task = a.next_task()\n"
        "if task is not None:\n"
        "    n: str = task['id']\n"  # an int
        "    task['nope']\n"  # no such key
    )
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "c"),
                          str(user)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'user_agent.py:4: error: Incompatible types in assignment (expression has type "str"' in run.stdout
    assert 'user_agent.py:7: error: Incompatible types in assignment (expression has type "int"' in run.stdout
    assert 'user_agent.py:8: error: TypedDict "Task" has no key "nope"' in run.stdout


def test_the_reference_is_generated_from_the_code() -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "gen-sdk-reference"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
