"""The daemon's phone channels: one owner for the Telegram bots, ntfy subscriptions and Slack apps the runbook's
people use (``notify.telegram``, ``notify.ntfy``, ``notify.slack``), their health, and the signed links
(``notify.deciders``).

A dispatcher thread, woken by every change of an approval (``Approvals.listen``), reconciles what was sent with
what should have been: each pending approval reaches its owner and approvers on every channel they have (its
backup too once it escalated), once per chat or person, and each Telegram or Slack message of an approval that
was decided or expired is edited to say so. What was sent is recorded as ``channel.sent`` (and the edit as
``channel.settled``), so a restarted daemon neither sends twice nor forgets to edit. A send that fails is
retried with its channel's backoff; a channel down longer than ``health.incident_after()`` opens a
``channel.down`` incident for the agents it serves (told to their owners by ``contact``, another route), which
resolves when it is back. Each bot, subscription and app has its own thread; none of this ever blocks
supervision.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tether import audit
from tether.approvals import PENDING
from tether.durations import format_duration
from tether.notify import health as channel_health
from tether.notify.deciders import Approver, Decider, Signer, approvers, by_key, link_url
from tether.notify.health import Health
from tether.notify.ntfy import Server, same_server, server_name
from tether.notify.slack import App, app_name, same_app
from tether.notify.telegram import Bot, ChannelError, Sent, bot_name, same_bot
from tether.runbook.model import Ntfy, Runbook, Slack, Telegram

KINDS = ("channel.sent", "channel.settled")
MAX_WAIT = 5.0


class Channels:
    def __init__(self, daemon: Any) -> None:
        self.d = daemon
        self.store = daemon.store
        self.signer = Signer(daemon.state.root)
        self.decider = Decider(daemon.approvals, self.runbook, self._seal)
        self.bots: dict[str, Bot] = {}
        self.servers: dict[str, Server] = {}
        self.apps: dict[str, App] = {}
        self.health: dict[str, Health] = {}
        self._rb: Runbook | None = None
        self._told: set[tuple[int, str]] = set()  # (approval, "CHANNEL|chat or person") already sent
        # approval -> its messages not yet edited: (bot or app, Telegram chat or Slack channel, message id or ts)
        self._open: dict[int, list[tuple[str, Any, Any]]] = {}
        self._by_message: dict[tuple[str, Any, Any], int] = {}  # (bot or app, chat, message) -> approval
        self._flipped: dict[str, str] = {}  # channel -> the state last recorded as an event
        self._incidents: set[str] = set()  # agents with an open channel.down incident of ours
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-channels", daemon=True)
        self.incident_after = channel_health.incident_after()
        daemon.approvals.listen(self._wake.set)

    def runbook(self) -> Runbook:
        rb: Runbook = self.d.loaded.runbook
        return rb

    # -- start and stop -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._history()
        for inc in self.store.incidents("open"):
            if inc["kind"] == "channel.down" and inc["agent"]:
                self._incidents.add(inc["agent"])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        stops = [b.stop for b in self.bots.values()] + [s.stop for s in self.servers.values()]
        stops += [a.stop for a in self.apps.values()]
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()

    def _history(self) -> None:
        """What earlier runs sent and edited (from the events), so nothing is sent twice or left unedited."""
        after = 0
        while True:
            events = self.store.events(after=after, limit=5000, kinds=KINDS)
            for e in events:
                d = e.data
                approval = int(d.get("approval_id", 0))
                if e.kind == "channel.sent":
                    self._told.add((approval, str(d.get("target"))))
                    if d.get("message_id") is not None:
                        msg = (str(d.get("channel")), d.get("chat_id", 0), d["message_id"])  # Slack's are strings
                        self._open.setdefault(approval, []).append(msg)
                        self._by_message[msg] = approval
                elif e.kind == "channel.settled":
                    self._open.pop(approval, None)
            if len(events) < 5000:
                return
            after = events[-1].id

    # -- links -------------------------------------------------------------------------------------------------
    def link(self, approval_id: int, person: str) -> str | None:
        """The signed one-time link of ``person`` (an ``Approver.key``) for an approval, when the dashboard
        has an address: ``host.public_url``, else the daemon's own."""
        rb = self.runbook()
        base = rb.host.public_url or getattr(self.d.notifier, "base_url", None)
        who = by_key(rb, person)
        return link_url(self.signer, base, approval_id, who) if base and who is not None else None

    # -- the transports ----------------------------------------------------------------------------------------
    def _sync(self, rb: Runbook) -> None:
        """Start a bot, a subscription or an app for every one the runbook's people use now; stop the others."""
        self._rb = rb
        bots: dict[str, tuple[Telegram, list[str]]] = {}
        servers: dict[str, tuple[Ntfy, list[str]]] = {}
        apps: dict[str, tuple[Slack, list[str]]] = {}
        for name in rb.agents:
            for a in approvers(rb, name):
                if a.person.telegram is not None:
                    bots.setdefault(bot_name(a.person.telegram), (a.person.telegram, []))[1].append(a.label)
                if a.person.ntfy is not None:
                    servers.setdefault(server_name(a.person.ntfy), (a.person.ntfy, []))[1].append(a.label)
                if a.person.slack is not None:
                    apps.setdefault(app_name(a.person.slack), (a.person.slack, []))[1].append(a.label)
        for key in [k for k in self.bots if k not in bots]:
            self.bots.pop(key).stop()
        for key in [k for k in self.servers if k not in servers]:
            self.servers.pop(key).stop()
        for key in [k for k in self.apps if k not in apps]:
            self.apps.pop(key).stop()
        for key in [k for k in self.health if k not in bots and k not in servers and k not in apps]:
            self.health.pop(key)
        for key, (tconf, labels) in bots.items():
            h = self._health(key, "telegram", labels)
            bot = self.bots.get(key)
            if bot is not None and bot.conf == tconf:
                continue
            if bot is not None:
                bot.stop()
            self.bots[key] = bot = Bot(tconf, h, self.decider, self.signer, self.runbook, self._sent, self._finder(key))
            bot.start()
        for key, (nconf, labels) in servers.items():
            h = self._health(key, "ntfy", labels)
            server = self.servers.get(key)
            if server is not None and server.conf == nconf:
                continue
            if server is not None:
                server.stop()
            self.servers[key] = server = Server(nconf, h, self.decider, self.signer, self.runbook)
            server.start()
        for key, (sconf, labels) in apps.items():
            h = self._health(key, "slack", labels)
            app = self.apps.get(key)
            if app is not None and same_app(app.conf, sconf):
                continue  # the same app and tokens: a person's user_id or channel is read from the runbook as used
            if app is not None:
                app.stop()
            self.apps[key] = app = App(sconf, h, self.decider, self.signer, self.runbook, self._sent, self._finder(key))
            app.start()
        self._write()

    def _health(self, key: str, kind: str, labels: list[str]) -> Health:
        h = self.health.get(key)
        if h is None:
            h = self.health[key] = Health(key, kind, labels, self._changed)
        h.people = list(dict.fromkeys(labels))
        return h

    def _finder(self, bot: str) -> Callable[[Any, Any], int | None]:
        """For ``bot``'s (or app's) replies: (chat, message id) -> the approval that message was about."""
        return lambda chat, message: self._by_message.get((bot, chat, message))

    def _sent(self, sent: Sent, channel: str) -> None:
        with self._lock:
            self._open.setdefault(sent.approval_id, []).append((channel, sent.chat_id, sent.message_id))
            self._by_message[(channel, sent.chat_id, sent.message_id)] = sent.approval_id

    # -- health ------------------------------------------------------------------------------------------------
    def _changed(self, h: Health) -> None:
        self._write()
        if self._flipped.get(h.name, "up") != h.state and h.state in ("up", "down"):
            previous = self._flipped.get(h.name)
            self._flipped[h.name] = h.state
            if previous is not None or h.state == "down":
                with contextlib.suppress(Exception):
                    self.store.emit(f"channel.{h.state}", None, channel=h.name, error=h.error, failures=h.failures)
        elif h.name not in self._flipped and h.state == "up":
            self._flipped[h.name] = "up"
        self._wake.set()

    def _write(self) -> None:
        with self._writing, contextlib.suppress(Exception):
            channel_health.write(self.d.state.root, [h.as_dict() for h in list(self.health.values())])

    def _incidents_due(self, rb: Runbook, now: float) -> float | None:
        """Open ``channel.down`` for agents whose channel has been down too long; resolve when it is back."""
        down: dict[str, Health] = {}
        nxt = None
        for h in list(self.health.values()):
            if h.state != "down":
                continue
            due = h.since + self.incident_after
            if due > now:
                nxt = due if nxt is None else min(nxt, due)
                continue
            for name in rb.agents:
                if any(h.name in _channels(a) for a in approvers(rb, name)):
                    down.setdefault(name, h)
        for name, h in down.items():
            if name not in self._incidents:
                self._incidents.add(name)
                self.d.incident(
                    name,
                    "channel.down",
                    f"{h.name} has been down for {format_duration(round(now - h.since))} "
                    f"({h.failures} failed tries): {h.error}; {name}'s approvals reach its people by "
                    "their contact, the dashboard and the CLI until it is back",
                    channel=h.name,
                )
        for name in sorted(self._incidents - set(down)):
            self._incidents.discard(name)
            self.d.resolve(name, "channel.down", "the channel is back")
        return nxt

    # -- the dispatcher ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.step(time.time())
            except Exception as err:  # the store briefly unwritable: try again soon
                with contextlib.suppress(Exception):
                    print(f"tether: channels: {err!r}", file=sys.stderr, flush=True)
                wait = 1.0
            self._wake.wait(wait)

    def step(self, now: float) -> float:
        """Send what is due, edit what settled, open or resolve incidents; return how long to sleep."""
        rb = self.runbook()
        if rb is not self._rb:
            self._sync(rb)
        rows = self.store.approvals(PENDING)
        pending = {row["id"] for row in rows}
        for row in rows:
            for target, send in self._targets(rb, row):
                if (row["id"], target) in self._told or self._stop.is_set():
                    continue
                channel = target.split("|", 1)[0]
                h = self.health.get(channel)
                if h is not None and h.state == "down" and (h.next_try or 0) > now:
                    continue  # its backoff: the poll thread (or the next wake) tries it again
                self._deliver(row, target, channel, send)
        self._told = {t for t in self._told if t[0] in pending}  # only pending approvals are ever sent
        with self._lock:
            settling = list(self._open)
        for approval_id in settling:
            row = self.store.approval(approval_id)
            if row is None or row["state"] == PENDING:
                continue
            self._settle(row)
        nxt = self._incidents_due(rb, now)
        waits = [MAX_WAIT] + [max(0.05, h.next_try - now) for h in self.health.values() if h.next_try]
        if nxt is not None:
            waits.append(max(0.05, nxt - now))
        return min(waits)

    def _targets(self, rb: Runbook, row: dict[str, Any]) -> list[tuple[str, Any]]:
        """Where approval ``row`` should be now: ``(target, send)``, one per Telegram chat, ntfy and Slack person."""
        people = [a for a in approvers(rb, row["agent"]) if a.role != "backup" or row.get("escalated")]
        out: list[tuple[str, Any]] = []
        for a in people:
            t, n = a.person.telegram, a.person.ntfy
            if t is not None:
                bot = self.bots.get(bot_name(t))
                if bot is not None and same_bot(bot.conf, t):
                    out.append((f"{bot.name}|{t.chat_id}", self._telegram(bot, t.chat_id, a)))
            if n is not None:
                server = self.servers.get(server_name(n))
                if server is not None and same_server(server.conf, n):
                    out.append((f"{server.name}|{a.key}", self._ntfy(server, a)))
            s = a.person.slack
            if s is not None:
                app = self.apps.get(app_name(s))
                if app is not None and same_app(app.conf, s):
                    out.append((f"{app.name}|{s.channel or s.user_id}", self._slack(app, s, a)))
        return out

    def _telegram(self, bot: Bot, chat_id: int, a: Approver) -> Any:
        def send(row: dict[str, Any]) -> dict[str, Any]:
            sent = bot.send_approval(row, chat_id)
            return {"chat_id": chat_id, "message_id": sent.message_id}

        return send

    def _ntfy(self, server: Server, a: Approver) -> Any:
        def send(row: dict[str, Any]) -> dict[str, Any]:
            return {"message": server.send_approval(row, a, self.link(row["id"], a.key))}

        return send

    def _slack(self, app: App, s: Slack, a: Approver) -> Any:
        def send(row: dict[str, Any]) -> dict[str, Any]:
            # the signed link is this person's own: only in their direct messages, never in a shared channel
            sent = app.send_approval(row, s, self.link(row["id"], a.key) if s.channel is None else None)
            return {"chat_id": sent.chat_id, "message_id": sent.message_id}

        return send

    def _deliver(self, row: dict[str, Any], target: str, channel: str, send: Any) -> None:
        try:
            got = send(row)
        except ChannelError as err:
            if err.permanent:  # the request itself is wrong: recorded, not retried
                self._told.add((row["id"], target))
                self.store.emit(
                    "channel.failed",
                    row["agent"],
                    approval_id=row["id"],
                    channel=channel,
                    target=target.split("|", 1)[1],
                    error=str(err)[:500],
                )
            elif channel in self.health:
                self.health[channel].failed(str(err))
            return
        self._told.add((row["id"], target))
        self.store.emit("channel.sent", row["agent"], approval_id=row["id"], channel=channel, target=target, **got)

    def _settle(self, row: dict[str, Any]) -> None:
        with self._lock:
            messages = list(self._open.get(row["id"], []))
        left = []
        for channel, chat, message in messages:
            bot: Bot | App | None = self.bots.get(channel) or self.apps.get(channel)
            if bot is None:
                continue  # that bot or app is gone from the runbook: nothing to edit with
            h = self.health[channel]
            if h.state == "down" and (h.next_try or 0) > time.time():
                left.append((channel, chat, message))  # in its backoff: later
                continue
            try:
                bot.settle(row, chat, message)
            except ChannelError as err:
                if not err.permanent:
                    self.health[channel].failed(str(err))
                    left.append((channel, chat, message))
        with self._lock:
            if left:
                self._open[row["id"]] = left
                return
            self._open.pop(row["id"], None)
        self.store.emit("channel.settled", row["agent"], approval_id=row["id"], state=row["state"])

    def _seal(self) -> None:
        audit.seal(self.store, self.d.state.audit_file)


def _channels(a: Approver) -> tuple[str, str, str]:
    """The names of the channels that reach ``a`` ("" where none)."""
    t, n, s = a.person.telegram, a.person.ntfy, a.person.slack
    return (
        bot_name(t) if t is not None else "",
        server_name(n) if n is not None else "",
        app_name(s) if s is not None else "",
    )
