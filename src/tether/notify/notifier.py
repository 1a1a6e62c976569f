"""The notifier: decides who hears what, records every message and every delivery attempt as an event,
and delivers on its own thread, so a slow or failing channel never blocks supervision.

What notifies: an incident (its owner first; its backup when nobody acknowledged it within the agent's
``approvals.escalate_after``; "resolved", once, to whoever was told); an approval requested (owner),
escalated (backup), expired (whoever was told); the kill switch used (owner); the daemon restarted
(every owner). Host channels (``host.notify``) hear what their ``events`` patterns match.

One incident is one thread: incidents of one agent and kind that re-open within ``flap_window`` of the
last one resolving join its thread and notify nobody again, and "resolved" is said once the thread has
been quiet for ``flap_window``. Every title carries the incident or approval id.

The daemon calls ``process(now)`` from its monitor loop and sleeps no longer than the deadline it returns.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tether import redact
from tether.durations import format_duration
from tether.events import WATCHED  # the kinds it reads after its cursor: declared ``notifies`` there
from tether.notify.channels import DeliveryError, describe, resolve, send
from tether.runbook.model import Runbook
from tether.status_file import iso
from tether.store.base import Event, Store

CURSOR = "notify"
OPENED, ESCALATED, RESOLVED = "incident.opened", "incident.escalated", "incident.resolved"
TOLD = (OPENED, ESCALATED, "approval.requested", "approval.escalated")
#: Without an agent (a host incident), an incident escalates after this unless an agent says sooner.
HOST_ESCALATE_AFTER = 900.0


@dataclass(frozen=True)
class Recipient:
    key: str  # owner:AGENT, backup:AGENT or host:HASH: the runbook entry, looked up again at delivery
    target: str  # the contact or URL as written (a secret reference or an apprise URL); never stored


def host_key(url: str) -> str:
    return "host:" + hashlib.sha256(url.encode()).hexdigest()[:12]


class Notifier:
    def __init__(
        self,
        store: Store,
        runbook_getter: Callable[[], Runbook],
        clock: Callable[[], float] = time.time,
        *,
        base_url: str | None = None,
        flap_window: float = 120.0,
        max_attempts: int = 6,
        retry_base: float = 10.0,
        retry_cap: float = 900.0,
        start_worker: bool = True,
    ) -> None:
        self.store = store
        self.runbook = runbook_getter
        self.clock = clock
        self.base_url = base_url.rstrip("/") if base_url else None
        self.flap_window = flap_window
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._lock = threading.Lock()
        cursor = store.cursor(CURSOR)
        if cursor is None:  # the first run: from now on (open incidents are picked up below)
            last = store.last_events(limit=1)
            cursor = last[0].id if last else 0
            store.set_cursor(CURSOR, cursor, clock())
        self._cursor = cursor
        self._live: set[tuple[str | None, str]] = set()
        for inc in store.incidents("open"):
            self._live.add((inc["agent"], inc["kind"]))
        for root in store.unfinished_threads():
            got = store.incident(root)
            if got is not None:
                self._live.add((got["agent"], got["kind"]))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._registered: Runbook | None = None
        #: (approval id, recipient key) -> that person's signed one-time link, when the dashboard has an address
        self.signed_link: Callable[[int, str], str | None] | None = None
        self.register_secrets(runbook_getter())
        if start_worker:
            self.start()

    # -- deciding (the caller's thread: store reads and event writes only, never the network) ---------
    def process(self, now: float | None = None) -> float | None:
        """Look at new events and the open incident threads; queue what is due. Returns when to call
        again at the latest (an escalation or a "resolved" falls due then), or None."""
        now = self.clock() if now is None else now
        with self._lock:
            rb = self.runbook()
            if rb is not self._registered:
                self.register_secrets(rb)
            queued = self._scan(rb)
            deadlines = []
            for key in sorted(self._live, key=lambda k: (k[0] or "", k[1])):
                deadline, live, n = self._incident_thread(rb, key, now)
                queued += n
                if deadline is not None:
                    deadlines.append(deadline)
                if not live:
                    self._live.discard(key)
        if queued:
            self._wake.set()
        return min(deadlines) if deadlines else None

    def register_secrets(self, rb: Runbook) -> None:
        """Resolve every channel now, so the URLs and their tokens are redacted from whatever is written
        next (an incident's summary, a log line), not only from the messages."""
        self._registered = rb
        targets = [n.url for n in rb.host.notify]
        targets += [p.contact for a in rb.agents.values() for p in (a.owner, a.backup, *a.approvers)]
        for target in targets:
            with contextlib.suppress(DeliveryError):
                resolve(target)

    def _scan(self, rb: Runbook) -> int:
        queued = 0
        while True:
            events = self.store.events(after=self._cursor, limit=500, kinds=WATCHED)
            for e in events:
                queued += self._on(rb, e)
            if events:
                self._cursor = events[-1].id
                self.store.set_cursor(CURSOR, self._cursor, self.clock())
            if len(events) < 500:
                return queued

    def _on(self, rb: Runbook, e: Event) -> int:
        kind, d = e.kind, e.data
        if kind == "incident.opened":
            self._live.add((e.agent, str(d.get("kind"))))
        elif kind in ("incident.resolved", "incident.acked"):
            inc = self.store.incident(int(d.get("incident_id") or 0))
            if inc is not None:
                self._live.add((inc["agent"], inc["kind"]))
        elif kind == "approval.requested" and e.agent:
            return self._approval(rb, e.id, e.agent, "approval.requested", d)
        elif kind in ("approval.escalated", "approval.expired") and e.agent:
            row = self.store.approval(int(d.get("approval_id") or 0))
            if row is not None:
                return self._approval(rb, row["id"], e.agent, kind, row)
        elif kind == "agent.killed" and e.agent:
            reason = d.get("reason") or "no reason given"
            recipients = self._owners(rb, e.agent) + self._hosts(rb, "agent.killed")
            return self._queue(
                f"event:{e.id}", "agent.killed", e.id, e.agent, recipients,
                f"[tether] {e.agent} was killed: {reason}"[:200],
                f"The kill switch stopped {e.agent}'s whole process tree at {iso(e.ts)}.\nReason: {reason}\n"
                f"It stays down until `tether resume {e.agent}`.",
            )
        elif kind == "daemon.started":
            return self._restarted(rb, e)
        return 0

    # -- incidents -------------------------------------------------------------------------------------
    def _incident_thread(self, rb: Runbook, key: tuple[str | None, str], now: float) -> tuple[float | None, bool, int]:
        """(deadline, still live, messages queued) for the thread of the newest incident of this agent and kind."""
        agent, kind = key
        incs = self.store.recent_incidents(agent, kind, limit=200)
        if not incs:
            return None, False, 0
        announced = self.store.announced_resolutions([i["id"] for i in incs])
        chain = [incs[0]]
        for prev in incs[1:]:
            cur = chain[-1]
            quiet = prev["resolved"] is None or cur["opened"] - prev["resolved"] > self.flap_window
            if quiet or prev["id"] in announced:
                break
            chain.append(prev)
        root, latest = chain[-1], chain[0]
        thread = f"incident:{root['id']}"
        sent = self.store.notifications(thread)
        topics = {r["topic"] for r in sent}
        queued = 0
        who = agent or "the host"
        summary = str(root["summary"] or f"{who}: {kind}")
        if OPENED not in topics:
            body = [summary, f"agent: {who} · kind: {kind} · opened {iso(root['opened'])}"]
            if latest["state"] != "open":
                body.append(f"(resolved since, at {iso(latest['resolved'])})")
            body += [f"Acknowledge: tether ack {root['id']}", *self._link("incidents", root["id"])]
            queued += self._queue(thread, OPENED, root["id"], agent, self._first(rb, agent, OPENED, kind),
                                  f"[tether] incident #{root['id']}: {summary}"[:200], "\n".join(body))
            sent = self.store.notifications(thread)
        told = {r["recipient"]: r for r in sent if r["topic"] in TOLD}
        if latest["state"] == "open":
            acked = any(i["acked"] for i in chain)
            if acked or ESCALATED in topics:
                return None, True, queued
            after = self._escalate_after(rb, agent)
            due = root["opened"] + after
            if now < due:
                return due, True, queued
            backups = self._backups(rb, agent) + self._hosts(rb, ESCALATED, kind)
            body = [summary, f"Nobody acknowledged it within {format_duration(after)}; you are the backup for {who}.",
                    f"opened {iso(root['opened'])}", f"Acknowledge: tether ack {root['id']}",
                    *self._link("incidents", root["id"])]
            queued += self._queue(thread, ESCALATED, root["id"], agent, backups,
                                  f"[tether] incident #{root['id']} escalated: {summary}"[:200], "\n".join(body))
            return None, True, queued
        if not told:
            return None, False, queued
        due = latest["resolved"] + self.flap_window
        if now < due:
            return due, True, queued
        flaps = len(chain) - 1
        body = [f"{who}: {kind} resolved at {iso(latest['resolved'])}, "
                f"{format_duration(round(latest['resolved'] - root['opened']))} after it opened"
                + (f" (it re-opened {flaps} time{'s' if flaps != 1 else ''} in between)" if flaps else "") + ".",
                *self._link("incidents", root["id"])]
        queued += self._queue(thread, RESOLVED, latest["id"], agent, [Recipient(k, "") for k in told],
                              f"[tether] incident #{root['id']} resolved: {who} {kind}"[:200], "\n".join(body),
                              channels={k: r["channel"] for k, r in told.items()})
        return None, False, queued

    def _escalate_after(self, rb: Runbook, agent: str | None) -> float:
        if agent is not None and agent in rb.agents:
            return rb.agents[agent].approvals.escalate_after
        return min((a.approvals.escalate_after for a in rb.agents.values()), default=HOST_ESCALATE_AFTER)

    # -- approvals, kills, restarts --------------------------------------------------------------------
    def _approval(self, rb: Runbook, approval_id: int, agent: str, topic: str, d: dict[str, Any]) -> int:
        thread = f"approval:{approval_id}"
        action = d.get("action", "?")
        detail = str(d.get("detail") or "")[:1000]
        why = f"held by {d.get('rule') or 'the runbook'}: {d.get('reason') or ''}".rstrip(": ")
        decide = [f"Approve: tether approve {approval_id}", f"Deny: tether deny {approval_id} --reason ...",
                  *self._link("approvals", approval_id)]
        if topic == "approval.requested":
            expires = d.get("expires")
            body = [f"{agent} asks to {action}.", detail, why,
                    f"expires {iso(expires)}" if expires else "", *decide]
            return self._queue(thread, topic, approval_id, agent,
                               self._owners(rb, agent) + self._approvers(rb, agent) + self._hosts(rb, topic),
                               f"[tether] approval #{approval_id}: {agent} asks to {action}"[:200], _lines(body))
        if topic == "approval.escalated":
            body = [f"{agent} asks to {action}, and its owner has not decided; you are the backup.", detail, why,
                    *decide]
            return self._queue(thread, topic, approval_id, agent, self._backups(rb, agent) + self._hosts(rb, topic),
                               f"[tether] approval #{approval_id} escalated: {agent} asks to {action}"[:200],
                               _lines(body))
        told = {r["recipient"]: r for r in self.store.notifications(thread) if r["topic"] in TOLD}
        body = [f"Nobody decided in time: {agent} may not {action} (denied).", detail,
                *self._link("approvals", approval_id)]
        recipients = [Recipient(k, "") for k in told] + [r for r in self._hosts(rb, topic) if r.key not in told]
        return self._queue(thread, topic, approval_id, agent, recipients,
                           f"[tether] approval #{approval_id} expired: {agent} may not {action}"[:200], _lines(body),
                           channels={k: r["channel"] for k, r in told.items()})

    def _restarted(self, rb: Runbook, e: Event) -> int:
        kinds = ["daemon.started", "daemon.stopped"]
        history = [x for x in self.store.events(kinds=kinds, limit=100000) if x.id < e.id]
        if not history:
            return 0  # the first start: not a restart
        clean = history[-1].kind == "daemon.stopped"
        host = rb.host.name or socket.gethostname()
        how = ("after a clean stop" if clean else
               "after its previous run ended without a clean stop (a crash, a kill or a power loss)")
        everyone = [r for name in rb.agents for r in self._owners(rb, name)] + self._hosts(rb, "daemon.restarted")
        return self._queue(f"event:{e.id}", "daemon.restarted", e.id, None, everyone,
                           f"[tether] daemon restarted on {host}",
                           f"The tether daemon on {host} started at {iso(e.ts)} {how}.\n"
                           f"Agents it supervises: {', '.join(rb.agents) or 'none'}.")

    # -- recipients ------------------------------------------------------------------------------------
    def _owners(self, rb: Runbook, agent: str) -> list[Recipient]:
        spec = rb.agents.get(agent)
        return [Recipient(f"owner:{agent}", spec.owner.contact)] if spec is not None else []

    def _approvers(self, rb: Runbook, agent: str) -> list[Recipient]:
        spec = rb.agents.get(agent)
        return [Recipient(f"approver:{agent}:{i}", p.contact) for i, p in enumerate(spec.approvers)] if spec else []

    def _own_line(self, row: dict[str, Any]) -> str:
        """A person's own last line for an approval's message: their signed one-time link. Added when the
        message is sent, never stored: an agent reads its own events, and the link decides."""
        make = self.signed_link
        if make is None or row["topic"] not in ("approval.requested", "approval.escalated") or \
                not str(row["recipient"]).startswith(("owner:", "backup:", "approver:")):
            return ""
        try:
            url = make(int(row["subject"]), str(row["recipient"]))
        except Exception:  # no key file yet, a full disk: the message goes without its link
            return ""
        return f"\nDecide here (a link for you alone, once): {url}" if url else ""

    def _backups(self, rb: Runbook, agent: str | None) -> list[Recipient]:
        names = [agent] if agent is not None else list(rb.agents)
        return [Recipient(f"backup:{n}", rb.agents[n].backup.contact) for n in names if n in rb.agents]

    def _hosts(self, rb: Runbook, topic: str, kind: str | None = None) -> list[Recipient]:
        out = []
        for n in rb.host.notify:
            if not n.events or any(fnmatch.fnmatchcase(topic, p) or (kind and fnmatch.fnmatchcase(kind, p))
                                   for p in n.events):
                out.append(Recipient(host_key(n.url), n.url))
        return out

    def _first(self, rb: Runbook, agent: str | None, topic: str, kind: str) -> list[Recipient]:
        """Who hears of an incident first: its agent's owner, or for a host incident every owner unless a
        host channel hears it; and the host channels that listen."""
        hosts = self._hosts(rb, topic, kind)
        if agent is not None:
            return self._owners(rb, agent) + hosts
        if hosts:
            return hosts
        return [r for name in rb.agents for r in self._owners(rb, name)]

    def target(self, rb: Runbook, key: str) -> str | None:
        """The contact or URL a recipient key stands for in the runbook now (it may have been reloaded)."""
        role, _, rest = key.partition(":")
        if role in ("owner", "backup"):
            spec = rb.agents.get(rest)
            if spec is None:
                return None
            return spec.owner.contact if role == "owner" else spec.backup.contact
        if role == "approver":
            name, _, index = rest.partition(":")
            got = rb.agents.get(name)
            people = got.approvers if got is not None else ()
            return people[int(index)].contact if index.isdigit() and int(index) < len(people) else None
        for n in rb.host.notify:
            if host_key(n.url) == key:
                return n.url
        return None

    def _link(self, page: str, ident: int) -> list[str]:
        return [f"{self.base_url}/{page}/{ident}"] if self.base_url else []

    def _queue(self, thread: str, topic: str, subject: int, agent: str | None, recipients: Iterable[Recipient],
               title: str, body: str, channels: dict[str, str] | None = None) -> int:
        """Record one message per recipient not already sent this topic in this thread (and for
        "resolved", this incident); the same target twice gets it once."""
        have = {(r["topic"], r["recipient"]) for r in self.store.notifications(thread)
                if topic != RESOLVED or r["subject"] == subject}
        seen: set[str] = set()
        count = 0
        for r in recipients:
            if (topic, r.key) in have or r.key in seen or (r.target and r.target in seen):
                continue
            seen.update({r.key, r.target} - {""})
            channel = (channels or {}).get(r.key) or describe(r.target)
            self.store.emit("notify.queued", agent, thread=thread, topic=topic, subject=subject, recipient=r.key,
                            channel=channel, title=redact.redact(title), body=redact.redact(body))
            count += 1
        return count

    # -- delivering (the worker thread) ------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="tether-notify", daemon=True)
            self._worker.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.deliver_due()
            except Exception as err:  # the store briefly unwritable: try again soon
                with contextlib.suppress(Exception):
                    print(f"tether: notify: {redact.redact(repr(err))}", file=sys.stderr, flush=True)
                wait = 1.0
            self._wake.wait(wait)

    def deliver_due(self, limit: int = 20) -> float:
        """Deliver what is due now (the worker's step); return how long until the next retry falls due."""
        for row in self.store.due_notifications(self.clock(), limit):
            if self._stop.is_set():
                break
            self._deliver(row)
        nxt = self.store.next_notification_due()
        return 30.0 if nxt is None else min(30.0, max(0.05, nxt - self.clock()))

    def _deliver(self, row: dict[str, Any]) -> None:
        attempts = int(row["attempts"]) + 1
        meta = {"thread": row["thread"], "topic": row["topic"], "recipient": row["recipient"]}
        try:
            target = self.target(self.runbook(), row["recipient"])
            if target is None:
                raise DeliveryError(f"{row['recipient']} is no longer in the runbook", permanent=True)
            send(target, row["title"], row["body"] + self._own_line(row))
        except Exception as err:
            permanent = isinstance(err, DeliveryError) and err.permanent
            error = str(err) if isinstance(err, DeliveryError) else f"{type(err).__name__}: {err}"
            final = permanent or attempts >= self.max_attempts
            next_try = None if final else self.clock() + min(self.retry_cap, self.retry_base * 3 ** (attempts - 1))
            self.store.emit("notify.failed", row["agent"], notification_id=row["id"], attempts=attempts,
                            error=redact.redact(error)[:1000], final=final, next_try=next_try, **meta)
            return
        self.store.emit("notify.sent", row["agent"], notification_id=row["id"], attempts=attempts, **meta)


def _lines(parts: Iterable[str]) -> str:
    return "\n".join(p for p in parts if p)
