"""Approvals on Slack through Socket Mode, over outbound connections only (https://docs.slack.dev/apis/events-api/
using-socket-mode): nothing listens on the host.

One ``App`` per Slack app (its app-level token and API address). Its thread calls ``apps.connections.open`` with
the app-level token (xapp-, ``connections:write``) for a one-time WebSocket URL, connects, waits for ``hello``, and
reads envelopes, acknowledging each at once with ``{"envelope_id": ...}`` (Slack redelivers what is not
acknowledged within 3 s); a ``disconnect`` envelope (Slack refreshes connections regularly) means opening a new
one. The dispatcher posts each approval with ``chat.postMessage`` (bot token, xoxb-, ``chat:write``) to the
person's direct messages (or ``channel``), with Approve / Deny buttons and the two that approve for the task or
for an hour, and edits it with ``chat.update`` once it is decided or expired. What comes back:

- ``interactive`` envelopes (``block_actions``): a button's ``value`` is ``s1:VERB:ID:SIG``, SIG an HMAC over the
  app, the approval and the verb (``deciders.Signer``), so a button decides only the approval it was made for;
  the tapper's member ID (``user.id``, as Slack asserts it) must be a person's ``user_id`` for that agent on this
  app, else the tap is refused and recorded. The tapper is told what happened by an ephemeral message;
- ``events_api`` envelopes with a ``message`` event (the app subscribed to ``message.im``): a reply in an
  approval message's thread, by one of its people, decides like a Telegram reply (``approve [note]`` approves,
  anything else denies with the text as the reason); any other direct message gets the sender's member ID back.

The tokens are registered for redaction and never written anywhere.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import time
from typing import Any

import httpx

from tether import redact
from tether.notify.deciders import Approver, Outcome, approvers
from tether.notify.phone import (
    CALL_TIMEOUT,
    SCOPE_BUTTONS,
    ChannelError,
    Chat,
    Sent,
    approval_text,
    json_object,
    secret,
)
from tether.runbook.model import Slack

HELLO_TIMEOUT = 15.0  # Slack sends ``hello`` as soon as the socket opens
PING_S = 20.0  # our WebSocket pings: a connection that stops answering them (a half-open one) is dropped
VALUE = re.compile(r"^s1:([adth]):([0-9]{1,18}):([A-Za-z0-9_-]{8,40})$")
HINT = "Press Approve or Deny, or reply in this message's thread with a reason to deny."
#: Web API errors that a retry (later, with the same request) may get past: the channel is down meanwhile.
TRANSIENT = {
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "ratelimited",
    "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org",
}  # fmt: skip


#: What to do about the errors a person setting up the app makes.
HINTS = {
    "invalid_auth": ": the token is wrong or revoked; copy it again from the app's settings",
    "not_authed": ": no token reached Slack; check the secret the runbook names",
    "not_allowed_token_type": ": app_token must be the app-level token (xapp-), bot_token the bot's (xoxb-)",
    "channel_not_found": ": no such channel or member for this app; check user_id (or channel)",
    "not_in_channel": ": the app is not in that channel; /invite it there",
}


def app_name(conf: Slack) -> str:
    """How an app is shown: its app-level token's reference and, when not the real service, its API address."""
    where = "" if conf.api == "https://slack.com/api" else f" at {conf.api}"
    return f"slack {conf.app_token}{where}"


def same_app(a: Slack, b: Slack) -> bool:
    return (a.api, a.app_token, a.bot_token) == (b.api, b.app_token, b.bot_token)


def escape(text: str) -> str:
    """Slack's three control characters in a message's ``text`` (so ``<!channel>`` from an agent pings nobody)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class App(Chat[Slack, str]):
    """One Slack app: its Socket Mode thread, and the calls the dispatcher makes to post and update."""

    via = "slack"
    step = "socket mode"

    def named(self) -> str:
        return app_name(self.conf)

    def setup(self) -> None:
        self._ws: Any = None
        self._posting = 0  # chat.postMessage calls for approvals not yet recorded
        self._posted = threading.Condition()
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name=f"tether-{self.name[:32]}-work", daemon=True)

    # -- the Web API ---------------------------------------------------------------------------------------
    def call(self, method: str, payload: dict[str, Any], app_level: bool = False) -> dict[str, Any]:
        """One Web API call with the bot token (the app-level token for ``apps.*``); its answer, or
        ``ChannelError`` (permanent for a request Slack refused as such)."""
        token = secret(self.conf.app_token if app_level else self.conf.bot_token)
        try:
            resp = self._client.post(
                f"{self.conf.api}/{method}",
                json=payload,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.HTTPError as err:
            raise ChannelError(redact.redact(f"{method}: {type(err).__name__}: {err}")[:300]) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict) and body.get("ok"):
            return body
        if resp.status_code == 429:
            wait = resp.headers.get("Retry-After")
            raise ChannelError(f"{method}: rate limited" + (f" (retry after {wait}s)" if wait else ""))
        if resp.status_code != 200 or not isinstance(body, dict):
            raise ChannelError(redact.redact(f"{method}: HTTP {resp.status_code}: {resp.text[:200]}")[:300])
        error = str(body.get("error") or "unknown_error")
        hint = HINTS.get(error, "")
        if error == "missing_scope" and body.get("needed"):
            hint = f": add the bot scope {body['needed']} (OAuth & Permissions) and reinstall the app"
        raise ChannelError(redact.redact(f"{method}: {error}{hint}")[:300], error not in TRANSIENT)

    def blocks(self, row: dict[str, Any], link: str | None = None) -> list[dict[str, Any]]:
        text = approval_text(row, HINT)[:3000]
        out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "plain_text", "text": text}}]
        if row["state"] != "pending":
            return out

        def button(verb: str, label: str, style: str | None = None) -> dict[str, Any]:
            b: dict[str, Any] = {
                "type": "button",
                "action_id": f"tether-{verb}",
                "text": {"type": "plain_text", "text": label},
                "value": f"s1:{verb}:{row['id']}:{self.signer.sign('slack', self.conf.app_token, row['id'], verb)}",
            }
            return {**b, "style": style} if style else b

        buttons = [button("a", "Approve", "primary"), button("d", "Deny", "danger")]
        buttons += [button(verb, label) for verb, label in SCOPE_BUTTONS]
        if link:
            buttons.append(
                {"type": "button", "action_id": "tether-open", "text": {"type": "plain_text", "text": "Open"},
                 "url": link}
            )
        out.append({"type": "actions", "block_id": f"tether-{row['id']}", "elements": buttons})
        return out

    def send_approval(self, row: dict[str, Any], who: Slack, link: str | None = None) -> Sent:
        with self._posted:
            self._posting += 1
        try:
            got = self.call(
                "chat.postMessage",
                {
                    "channel": who.channel or who.user_id,
                    "text": escape(approval_text(row, HINT))[:4000],
                    "blocks": self.blocks(row, link),
                    "unfurl_links": False,
                },
            )
            sent = Sent(row["id"], str(got.get("channel")), str(got.get("ts")))
            self._record(sent, self.name)
        finally:
            with self._posted:
                self._posting -= 1
                self._posted.notify_all()
        self.health.ok()
        return sent

    def settle(self, row: dict[str, Any], channel: int | str, ts: int | str) -> None:
        """Show an approval's outcome on a message posted for it, without its buttons."""
        text = escape(approval_text(row, HINT))[:4000]
        self.call("chat.update", {"channel": channel, "ts": ts, "text": text, "blocks": self.blocks(row)})
        self.health.ok()

    # -- Socket Mode ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()
        super().start()

    def interrupt(self) -> None:
        self._inbox.put(None)
        ws = self._ws
        if ws is not None:
            ws.close()

    def poll_once(self) -> None:
        from websockets.sync.client import connect  # only a daemon whose runbook names a Slack app loads it

        opened = time.monotonic()
        try:
            url = self.call("apps.connections.open", {}, app_level=True).get("url")
            if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
                raise ChannelError("apps.connections.open: no WebSocket URL in the answer")
            redact.register(url)  # its ticket lets anyone read the app's events until it is used
            with connect(
                url, open_timeout=CALL_TIMEOUT, close_timeout=2, ping_interval=PING_S, ping_timeout=PING_S,
                compression=None, max_size=2**22,
            ) as ws:  # fmt: skip
                self._ws = ws
                if self._stop.is_set():
                    return
                hello = json_object(ws.recv(timeout=HELLO_TIMEOUT))
                if (hello or {}).get("type") != "hello":
                    raise ChannelError(f"socket mode: expected hello first, got {str(hello)[:100]}")
                self.health.ok()
                if self._read(ws) == "disconnect":
                    return  # Slack asked for a new connection: open one now
            self.ended(opened, "socket mode: the connection closed at once")
        finally:
            self._ws = None

    def _read(self, ws: Any) -> str:
        """Read and acknowledge envelopes until the connection ends ("closed") or Slack sends ``disconnect``
        ("disconnect"); each is handled by the worker thread, so a slow Web API call never delays an
        acknowledgement past Slack's 3 s."""
        from websockets.exceptions import ConnectionClosed

        while not self._stop.is_set():
            try:
                env = json_object(ws.recv())
                if env is None:
                    continue
                if env.get("type") == "disconnect":
                    if env.get("reason") == "link_disabled":
                        raise ChannelError("socket mode: Socket Mode is off for this app (turn it on in its settings)")
                    return "disconnect"
                ident = env.get("envelope_id")
                if isinstance(ident, str) and ident:
                    ws.send(json.dumps({"envelope_id": ident}))
                    if not self.first_time(ident):  # Slack sent it again (our acknowledgement was lost)
                        continue
            except ConnectionClosed:
                return "closed"  # what was not acknowledged, Slack sends again on the next connection
            self.health.ok()
            self._inbox.put(env)
        return "closed"

    def _work(self) -> None:
        while True:
            env = self._inbox.get()
            if env is None or self._stop.is_set():
                return
            self.handle_safely(f"envelope {str(env.get('envelope_id'))[:40]}", env)

    # -- what comes back -----------------------------------------------------------------------------------
    def handle(self, env: dict[str, Any]) -> None:
        payload = env.get("payload")
        if not isinstance(payload, dict):
            return
        if env.get("type") == "interactive" and payload.get("type") == "block_actions":
            self._actions(payload)
        elif env.get("type") == "events_api" and isinstance(payload.get("event"), dict):
            event = payload["event"]
            if event.get("type") == "message":
                self._message(event)

    def _person(self, agent: str, user_id: str) -> Approver | None:
        """The person of ``agent`` on this app whose member ID is ``user_id``."""
        for a in approvers(self.runbook(), agent):
            s = a.person.slack
            if s is not None and same_app(s, self.conf) and s.user_id == user_id:
                return a
        return None

    @staticmethod
    def _who(user: dict[str, Any]) -> str:
        name = user.get("username") or user.get("name")
        return f"slack user {user.get('id') or user.get('user')}" + (f" ({name})" if name else "")

    def _actions(self, payload: dict[str, Any]) -> None:
        user = payload.get("user") or {}
        uid = str(user.get("id") or "")
        container = payload.get("container") or {}
        channel = str((payload.get("channel") or {}).get("id") or container.get("channel_id") or "")
        ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
        action = next((a for a in payload.get("actions") or [] if str(a.get("action_id", "")).startswith("tether-")),
                      None)
        if action is None or action.get("action_id") == "tether-open":
            return  # the link button opens a page; nothing to decide here
        m = VALUE.match(str(action.get("value") or ""))
        approval_id = int(m.group(2)) if m else None
        if m is None or not self.signer.check(m.group(3), "slack", self.conf.app_token, approval_id, m.group(1)):
            out = self.decider.refuse(approval_id, "slack", self._who(user), "the button was not made by this host")
            self._tell(channel, uid, out)
            return
        assert approval_id is not None
        row = self.decider.store.approval(approval_id)
        who = self._person(row["agent"], uid) if row else None
        out = self.outcome(approval_id, row, who, self._who(user), verb=m.group(1))
        self._tell(channel, uid, out)
        if out.row is not None and out.row["state"] != "pending" and channel and ts:
            with contextlib.suppress(ChannelError):
                self.settle(out.row, channel, str(ts))

    def _tell(self, channel: str, user: str, out: Outcome) -> None:
        """What happened, said to the person who pressed (an ephemeral message: only they see it)."""
        if channel and user:
            with contextlib.suppress(ChannelError):
                self.call("chat.postEphemeral", {"channel": channel, "user": user, "text": escape(out.text)[:3000]})

    def _message(self, event: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return  # our own posts, edits, joins: not a person writing
        channel, uid = str(event.get("channel") or ""), str(event["user"])
        thread = event.get("thread_ts")
        approval_id = self._find(channel, str(thread)) if thread and thread != event.get("ts") else None
        if approval_id is None and thread and thread != event.get("ts"):
            with self._posted:  # a reply can outrun the answer to the post it replies to: wait for that answer
                self._posted.wait_for(lambda: self._posting == 0, CALL_TIMEOUT)
            approval_id = self._find(channel, str(thread))
        if approval_id is None:
            if event.get("channel_type") == "im":
                self._post(channel, None, f"tether: your member ID is {uid}. Approvals arrive here once the "
                                          "runbook names it (slack: user_id) for a person.")
            return
        row = self.decider.store.approval(approval_id)
        who = self._person(row["agent"], uid) if row else None
        out = self.outcome(approval_id, row, who, self._who({"id": uid}), words=str(event.get("text") or "").strip())
        self._post(channel, str(thread), out.text)
        if out.ok and out.row is not None:
            with contextlib.suppress(ChannelError):
                self.settle(out.row, channel, str(thread))

    def _post(self, channel: str, thread: str | None, text: str) -> None:
        payload: dict[str, Any] = {"channel": channel, "text": escape(text)[:3000]}
        if thread:
            payload["thread_ts"] = thread
        with contextlib.suppress(ChannelError):
            self.call("chat.postMessage", payload)

