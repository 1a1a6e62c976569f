"""The kill switch. Works when the daemon is dead, hung or stopped, and on a full disk.

``kill_agent`` finds everything of the agent that any of its runs left alive (``process.kill_run``),
freezes it (cgroup freezer, SIGSTOP for the rest), puts the kill file in place while nothing of it can end
(so no supervisor restarts it in between), then signals it all, SIGKILLs what outlives the grace and
checks that nothing is left. The event is recorded after; if the store cannot be written now (a daemon
SIGSTOPped while it holds the write lock), the record waits in ``<state>/pending-events/`` for the daemon
to replay (at start, and whenever its monitor wakes).

On a full disk no new file can be written. So each kill file has a spare beside it (``.KILL.spare``,
``SPARE_SIZE`` bytes, made when the daemon takes the agent on and again after each use): the note is
written into the spare in place (no new blocks) and the spare renamed to ``KILL``. Without a spare, an
empty ``KILL`` (an inode, no blocks) holds the agent as well. A kill that could not be recorded (store and
``pending-events`` both full) is recorded by the daemon from its kill file's note once space returns.

Every record carries an id, so a record that landed late and was also parked is replayed once only.

``tether --home DIR kill`` answers within a second with the daemon stopped: each agent's signal and grace
come from ``kill-specs.json`` (written by the daemon beside its runbook copy), not from parsing the runbook
(its models alone cost ~0.1 s of CPU to import), and with the daemon SIGSTOPped the record waits on the
store's write lock only briefly (the stopped daemon may hold it: no wait helps).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tether import daemon_state, process
from tether.atomic import fsync_dir, write_atomic
from tether.lifecycle import change
from tether.paths import StateDir
from tether.process.tree import KILL_WAIT
from tether.store import NewEvent, Store

if TYPE_CHECKING:  # the runbook's models (pydantic) cost a kill ~0.1 s of CPU to import
    from tether.runbook.model import KillSwitch

RECORD_TIMEOUT = 2.0  # a healthy daemon holds the write lock for milliseconds
RECORD_STOPPED = 0.2  # the daemon is SIGSTOPped: if it holds the lock, waiting cannot help; park the record
SPECS = "kill-specs.json"
PENDING = "pending-events"
SPARE_SIZE = 4096  # one block: a kill note fits (the reason is cut to fit)
RECORD_SLACK = 5.0  # after the grace: a killer that has not recorded its kill by then could not

StoreLike = Store | Callable[[], Store] | None


class KillSpec(NamedTuple):
    """How an agent is killed (its runbook's ``kill:``, as ``KillSwitch``): ``signal``, then SIGKILL after
    ``grace`` seconds."""

    signal: str
    grace: float


def engaged(state: StateDir, agent: str) -> Path | None:
    """The kill file that holds this agent (the global one first), or None."""
    return state.kill_engaged(agent)


def whoami() -> str:
    """The name of the user this process runs as (who engaged a kill from the command line)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


# --- the kill files and their spares ------------------------------------------------------------------------


def spare_of(kill_file: Path) -> Path:
    return kill_file.with_name(f".{kill_file.name}.spare")


def arm(state: StateDir, agent: str | None = None) -> bool:
    """Make sure the spare of the global kill file (and of ``agent``'s) exists; True when they do.
    Best effort: called when the daemon takes an agent on and after each use of a spare."""
    ok = True
    for kill_file in [state.kill_file] + ([state.agent_kill_file(agent)] if agent else []):
        spare = spare_of(kill_file)
        try:
            if os.stat(spare).st_size >= SPARE_SIZE:
                continue
        except FileNotFoundError:
            pass
        except OSError:
            ok = False
            continue
        text = '{"spare": "the kill switch writes its note here and renames it to KILL"}'
        try:
            write_atomic(spare, text.ljust(SPARE_SIZE - 1) + "\n")
        except OSError:
            ok = False
    return ok


def _note_bytes(note: dict[str, Any]) -> bytes:
    data = (json.dumps(note) + "\n").encode()
    reason = note.get("reason")
    if len(data) > SPARE_SIZE and isinstance(reason, str):  # cut the reason to fit the spare
        cut = max(0, len(reason) - (len(data) - SPARE_SIZE) - 8)
        data = (json.dumps({**note, "reason": reason[:cut] + " [...]"}) + "\n").encode()
    return data[:SPARE_SIZE]


def _from_spare(kill_file: Path, data: bytes) -> bool:
    """Write ``data`` over the spare in place (its blocks are allocated), then rename it to ``kill_file``."""
    spare = spare_of(kill_file)
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size < len(data):
            return False
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))  # shrinking never needs a block
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        os.rename(spare, kill_file)
    except OSError:
        return False
    fsync_dir(kill_file.parent)
    return True


def engage(kill_file: Path, note: dict[str, Any]) -> str | None:
    """Put ``kill_file`` in place with ``note``; say how: ``spare`` (the spare, rewritten in place and
    renamed: needs no free space), ``written`` (a new file), ``empty`` (no room for the note: an empty
    kill file holds as well), or None when no kill file could be made."""
    data = _note_bytes(note)
    if _from_spare(kill_file, data):
        return "spare"
    try:
        write_atomic(kill_file, data)
        return "written"
    except OSError:
        pass
    try:
        os.close(os.open(kill_file, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    except OSError:
        return None
    fsync_dir(kill_file.parent)
    return "empty"


# --- each agent's signal and grace, kept for recovery commands -----------------------------------------


def keep_specs(state: StateDir, agents: Mapping[str, Any]) -> None:
    """Write each agent's kill signal and grace (``agents``: the runbook's, by name) to ``kill-specs.json``:
    the daemon, beside its runbook copy, at boot and on every reload. Best effort: a file that could not be
    rewritten is removed (the kill then parses the runbook copy)."""
    path = state.root / SPECS
    body = {name: {"signal": a.kill.signal, "grace": a.kill.grace} for name, a in agents.items()}
    try:
        write_atomic(path, json.dumps(body) + "\n", 0o600)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def kept_specs(state: StateDir) -> dict[str, KillSpec] | None:
    """Each agent's kill spec as the daemon last loaded it (runbook order), or None when it keeps none."""
    try:
        with open(state.root / SPECS, encoding="utf-8") as f:
            body = json.load(f)
        return {str(name): KillSpec(str(v["signal"]), float(v["grace"])) for name, v in body.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


# --- the verbs ------------------------------------------------------------------------------------------------


def kill_agent(
    state: StateDir,
    agent: str,
    spec: KillSpec | KillSwitch,
    reason: str | None,
    store: StoreLike = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Freeze the agent's processes (every run's), put its kill file in place, stop them all (signal,
    grace, SIGKILL), check they are gone, then record it. Never raises for a full disk or a dead store:
    the answer says what was found, what survived, how the kill file was made and whether it is recorded
    (``marked`` None: no kill file could be made; ``expected``: recorded as running, nothing found)."""
    record_id = uuid.uuid4().hex
    now = time.time()
    kill_file = state.agent_kill_file(agent)
    note = {
        "at": now,
        "reason": reason,
        "id": record_id,
        "by": by or whoami(),
        "record_by": now + spec.grace + KILL_WAIT + RECORD_TIMEOUT + RECORD_SLACK,
    }
    marked: list[str | None] = []
    report = process.kill_run(
        state.agent_dir(agent) / "run", spec.signal, spec.grace, mark=lambda: marked.append(engage(kill_file, note))
    )
    how = marked[0] if marked else engage(kill_file, note)
    if how == "spare":
        arm(state, agent)
    record = {
        "reason": reason,
        "signalled": sorted(report.signalled),
        "survivors": report.survivors,
        "escalated": report.escalated,
        "elapsed_s": round(report.elapsed, 3),
        "record_id": record_id,
        "found": dict(Counter(report.signalled.values())),
        "runs": len(report.runs),
        "cgroups_left": report.cgroups_left,
        "expected": report.expected,
        "marked": how,
        "note": report.note,
    }
    why = f"kill switch: {reason}" if reason else "kill switch engaged"
    recorded = _record(
        state,
        store,
        agent,
        record_id,
        [
            ("agent.killed", record),
            ("agent.desired", {"desired": "killed", "record_id": record_id}),
            ("agent.state", change("killed", why, record_id=record_id)),
        ],
    )
    return {**record, "recorded": recorded}


def problem(name: str, got: dict[str, Any]) -> str | None:
    """Why this kill is not a clean success (one line), or None."""
    if got["survivors"]:
        return f"{name}: {len(got['survivors'])} process(es) survived the kill (pids above)"
    if got.get("expected") and not got["signalled"]:
        return f"{name}: recorded as running but no process of it was found; check `ps` for it by hand"
    if got.get("marked") is None and not got.get("told"):
        return (
            f"{name}: its kill file could not be made (is the disk full?) and no daemon answered: "
            f"free space and run `tether kill {name}` again, or a restart may bring it back"
        )
    return None


def engage_all(state: StateDir, reason: str | None) -> str | None:
    """The global kill file: no agent starts while it exists (``tether resume --all`` lifts it). Says
    how it was made (see ``engage``)."""
    how = engage(state.kill_file, {"at": time.time(), "reason": reason, "by": whoami()})
    if how == "spare":
        arm(state)
    return how


def lift(state: StateDir, agent: str, store: StoreLike = None) -> None:
    state.agent_kill_file(agent).unlink(missing_ok=True)
    arm(state, agent)
    record_id = uuid.uuid4().hex
    _record(
        state,
        store,
        agent,
        record_id,
        [
            ("agent.resumed", {"record_id": record_id}),
            ("agent.desired", {"desired": "running", "record_id": record_id}),
        ],
    )


def lift_all(state: StateDir) -> None:
    state.kill_file.unlink(missing_ok=True)
    arm(state)


# --- recording --------------------------------------------------------------------------------------------------


def _record(
    state: StateDir, store: StoreLike, agent: str, record_id: str, events: list[tuple[str, dict[str, Any]]]
) -> str:
    """Record the events, but never wait on a hung store for long: park them for the daemon instead.
    Says where they went: ``store``, ``parked`` or ``unrecorded`` (a full disk: the daemon records a
    kill from its kill file's note once space returns).

    Opening the store happens in the recording thread too: opening takes the write lock briefly, and
    a SIGSTOPped daemon may hold it: then the wait is short, for no wait can help."""
    now = time.time()
    if store is not None:
        stopped = daemon_state.probe(state.root)["state"] == daemon_state.STOPPED
        done = threading.Event()

        def write() -> None:
            try:
                target = store() if callable(store) else store
                target.append([NewEvent(kind, agent, data, ts=now) for kind, data in events])
                done.set()
            except Exception:
                pass

        threading.Thread(target=write, name="tether-record", daemon=True).start()
        if done.wait(RECORD_STOPPED if stopped else RECORD_TIMEOUT):
            return "store"
    pending = state.root / PENDING
    body = {"id": record_id, "agent": agent, "events": [{"kind": k, "data": d, "ts": now} for k, d in events]}
    try:
        pending.mkdir(parents=True, exist_ok=True)
        write_atomic(pending / f"{now:.6f}-{agent}-{record_id[:8]}.json", json.dumps(body) + "\n")
    except OSError:
        return "unrecorded"
    return "parked"


def replay_pending(state: StateDir, store: Store) -> int:
    """Append every parked record not already in the store, oldest first, and delete its file; return
    how many were appended. A file that cannot be read is left for a human (and reported once)."""
    folder = state.root / PENDING
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        return 0
    count = 0
    for name in names:
        path = folder / name
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".bad"))
            continue
        if "events" not in body:  # the first format: one event
            body = {
                "id": None,
                "agent": body.get("agent"),
                "events": [{"kind": body["kind"], "data": body.get("data", {}), "ts": None}],
            }
        agent, record_id = body.get("agent"), body.get("id")
        if record_id is None or not _landed(store, agent, record_id):
            events = body["events"]
            first = min((e.get("ts") or 0 for e in events), default=0)
            if _superseded(store, agent, first):  # a later decision landed first: keep this as history only
                events = [e for e in events if e["kind"] not in ("agent.desired", "agent.state")]
            store.append([NewEvent(e["kind"], agent, e.get("data") or {}, ts=e.get("ts")) for e in events])
            count += 1
        path.unlink(missing_ok=True)
    return count + _from_kill_files(state, store)


_known: set[str] = set()  # ids of kill notes this process found in the store (each is looked up once)


def _from_kill_files(state: StateDir, store: Store, now: float | None = None) -> int:
    """Record each kill whose killer could not (a full disk: no store write, no parked file) from its
    kill file's note, once the killer's time to record it is past; return how many were recorded."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(state.agents)
    except OSError:
        return 0
    count = 0
    for agent in sorted(names):
        try:
            note = json.loads(state.agent_kill_file(agent).read_bytes())
        except (OSError, ValueError):
            continue  # no kill file, an empty one, or one a human wrote: nothing to record
        record_id = note.get("id") if isinstance(note, dict) else None
        record_by = note.get("record_by") if isinstance(note, dict) else None
        if not isinstance(record_id, str) or not isinstance(record_by, int | float) or record_id in _known:
            continue
        if now < record_by:
            continue  # its killer may still be at it
        if not _landed(store, agent, record_id):
            reason = note.get("reason")
            why = f"kill switch: {reason}" if reason else "kill switch engaged"
            at = note.get("at") if isinstance(note.get("at"), int | float) else None
            late = "recorded from the kill file: the store could not be written when the kill happened"
            store.append(
                [
                    NewEvent(
                        "agent.killed",
                        agent,
                        {"reason": reason, "by": note.get("by"), "record_id": record_id, "late": late},
                        ts=at,
                    ),
                    NewEvent("agent.desired", agent, {"desired": "killed", "record_id": record_id}, ts=at),
                    NewEvent("agent.state", agent, change("killed", why, record_id=record_id), ts=at),
                ]
            )
            count += 1
        _known.add(record_id)
    return count


def _landed(store: Store, agent: str | None, record_id: str) -> bool:
    return any(e.data.get("record_id") == record_id for e in store.last_events(agent, limit=500))


def _superseded(store: Store, agent: str | None, ts: float) -> bool:
    return any(
        e.ts > ts and e.kind in ("agent.desired", "agent.resumed", "agent.killed")
        for e in store.last_events(agent, limit=500)
    )
