"""A stand-in for Slack's Web API and Socket Mode (https://docs.slack.dev) on 127.0.0.1, written from their
documentation, for what tether uses:

- every Web API call is ``POST /api/<METHOD>`` with ``Authorization: Bearer TOKEN`` and a JSON (or form) body,
  answered HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (``invalid_auth`` for an
  unknown token, ``not_allowed_token_type`` for the wrong kind of token);
- ``apps.connections.open`` (app-level token, xapp-): ``{"ok": true, "url": "wss://..."}``, a one-time URL (here
  ``ws://127.0.0.1:PORT/link/?ticket=...``); the WebSocket sends ``{"type": "hello", ...}`` first, then envelopes
  (``{"envelope_id", "type": "interactive"|"events_api", "payload", "accepts_response_payload", "retry_attempt",
  "retry_reason"}``), each to one connection; the app acknowledges with ``{"envelope_id": ...}``, and an envelope
  not acknowledged when its connection ends is sent again on the next with ``retry_attempt`` + 1.
  ``{"type": "disconnect", "reason": "refresh_requested"|"warning"|"link_disabled"}`` asks for a new connection;
- ``chat.postMessage`` (bot token, xoxb-: ``channel`` a channel id, or a member id for the app's direct messages
  with them, whose D... id the answer gives; ``text``, ``blocks``, ``thread_ts``): ``{"ok", "channel", "ts",
  "message"}``; ``chat.update`` (``channel`` must be the D.../C... id, ``ts``; ``message_not_found``);
  ``chat.postEphemeral`` (``channel``, ``user``, ``text``); Block Kit limits checked: section text 3000
  characters, a button's text 75, its ``value`` 2000, its ``action_id`` 255, 25 elements in an actions block.

The test plays the person: ``tap`` sends an ``interactive`` envelope (``block_actions``) for a button of a
message the app posted, ``reply`` an ``events_api`` message event in its thread, ``say`` a direct message;
``down()`` fails every call (HTTP 503) and drops the WebSockets until ``up()``; ``disconnect()`` sends Slack's
``disconnect`` envelope; ``hold(METHOD)`` keeps that method's calls waiting until ``release()``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from fakes.service import FakeService
from tether.integrations.canary_model import QuietHandler, send_json

TEAM, APP_ID, BOT_USER = "T0TETHER", "A0TETHER", "U0TETHERBOT"


class ApiError(Exception):
    pass


class FakeSlack(FakeService):
    PREFIX = "/api"

    def __init__(self, app_token: str, bot_token: str) -> None:
        self.app_token = app_token
        self.bot_token = bot_token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> the message now
        self.ephemerals: list[dict[str, Any]] = []  # chat.postEphemeral bodies
        self.acks: set[str] = set()  # envelope ids acknowledged
        self.hellos = 0  # WebSocket connections that got their hello
        self._outbox: list[dict[str, Any]] = []  # envelopes not acknowledged yet
        self._sent_to: dict[str, int] = {}  # envelope id -> the connection it went to
        self._live: list[int] = []  # open connections, oldest first (envelopes go to the newest)
        self._control: dict[int, list[dict[str, Any]]] = {}  # connection -> messages to send it (disconnect)
        self._tickets: set[str] = set()
        self._conn_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._generation = 0  # a down() ends every connection open before it, even if up() follows at once
        self.held: set[str] = set()  # methods whose calls wait (a slow Slack) until release()
        super().__init__()
        self._ws: Server = serve(
            self._socket, "127.0.0.1", 0, process_request=self._handshake, compression=None, ping_interval=None
        )
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def __enter__(self) -> FakeSlack:
        super().__enter__()
        self._ws_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._ws.shutdown()

    @property
    def ws_port(self) -> int:
        return int(self._ws.socket.getsockname()[1])

    def down(self) -> None:
        with self._cond:
            self._generation += 1
            super().down()

    def hold(self, method: str) -> None:
        """Calls of ``method`` wait until ``release()``: Slack answering slowly."""
        with self._cond:
            self.held.add(method)

    def release(self) -> None:
        with self._cond:
            self.held.clear()
            self._cond.notify_all()

    def recent(self) -> str:
        return f"calls: {[c[0] for c in self.calls][-20:]}; hellos {self.hellos}; live {self._live}"

    # -- the test's side: the person --------------------------------------------------------------------------
    def sent(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the app posted (in ``channel``), oldest first, as they are now (updates applied)."""
        with self._cond:
            return [m for (c, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                    if channel is None or c == channel]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]

    def button(self, message: dict[str, Any], label: str) -> dict[str, Any]:
        got = next((b for b in self.buttons(message) if b["text"]["text"] == label), None)
        assert got is not None, f"no button {label!r} on {message}"
        return got

    def tap(self, message: dict[str, Any], button: dict[str, Any], user_id: str, username: str = "phone") -> str:
        """``user_id`` presses ``button`` of ``message``: a ``block_actions`` envelope. Its envelope id."""
        user = {"id": user_id, "username": username, "name": username, "team_id": TEAM}
        action = {
            "action_id": button["action_id"],
            "block_id": next(b.get("block_id") for b in message["blocks"] if b["type"] == "actions"),
            "text": button["text"],
            "type": "button",
            "action_ts": f"{time.time():.6f}",
            **({"value": button["value"]} if "value" in button else {}),
        }
        payload = {
            "type": "block_actions",
            "user": user,
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                          "is_ephemeral": False},
            "trigger_id": f"{next(self._seq)}.{TEAM}.{secrets.token_hex(8)}",
            "team": {"id": TEAM, "domain": "tether"},
            "channel": {"id": message["channel"], "name": "directmessage"},
            "message": message,
            "response_url": "https://hooks.slack.com/actions/unused",
            "actions": [action],
        }
        return self._push("interactive", payload)

    def reply(self, message: dict[str, Any], text: str, user_id: str) -> str:
        """``user_id`` writes ``text`` in ``message``'s thread: an ``events_api`` message event."""
        return self._event(message["channel"], text, user_id, thread_ts=message["ts"])

    def say(self, channel: str, text: str, user_id: str) -> str:
        """``user_id`` writes ``text`` to the app in ``channel`` (a direct message)."""
        return self._event(channel, text, user_id)

    def ephemeral(self, user_id: str, starts: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first ephemeral message to ``user_id`` whose text starts with ``starts``."""
        got: dict[str, Any] = self.wait_for(
            lambda: next((e for e in self.ephemerals if e["user"] == user_id and e["text"].startswith(starts)), None),
            timeout,
        )
        return got

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's ``disconnect`` envelope to every open connection."""
        with self._cond:
            for conn in self._live:
                self._control.setdefault(conn, []).append(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}}
                )
            self._cond.notify_all()

    def _event(self, channel: str, text: str, user_id: str, thread_ts: str | None = None) -> str:
        ts = self._ts()
        event = {"type": "message", "channel": channel, "user": user_id, "text": text, "ts": ts, "event_ts": ts,
                 "channel_type": "im" if channel.startswith("D") else "channel",
                 **({"thread_ts": thread_ts} if thread_ts else {})}
        payload = {"token": "unused", "team_id": TEAM, "api_app_id": APP_ID, "event": event, "type": "event_callback",
                   "event_id": f"Ev{next(self._seq):08d}", "event_time": int(time.time())}
        return self._push("events_api", payload)

    def _push(self, kind: str, payload: dict[str, Any]) -> str:
        ident = secrets.token_hex(8) + "-" + str(next(self._seq))
        env = {"envelope_id": ident, "type": kind, "payload": payload,
               "accepts_response_payload": kind == "interactive", "retry_attempt": 0, "retry_reason": ""}
        with self._cond:
            self._outbox.append(env)
            self._cond.notify_all()
        return ident

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    # -- Socket Mode --------------------------------------------------------------------------------------------
    def _handshake(self, conn: ServerConnection, request: Any) -> Any:
        ticket = (parse_qs(urlsplit(request.path).query).get("ticket") or [""])[0]
        with self._cond:
            if self._down:
                return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "down\n")
            if ticket not in self._tickets:
                return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
            self._tickets.discard(ticket)  # one connection per URL
        return None

    def _socket(self, conn: ServerConnection) -> None:
        me = next(self._conn_ids)
        with self._cond:
            generation = self._generation
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID},
                              "debug_info": {"host": "standin", "approximate_connection_time": 3600}}))
        with self._cond:
            self.hellos += 1
            self._live.append(me)
            self._cond.notify_all()
        reader = threading.Thread(target=self._acks, args=(conn, me), daemon=True)
        reader.start()
        try:
            while True:
                with self._cond:
                    while True:
                        if self._down or self._generation != generation or me not in self._live:
                            return
                        control = self._control.pop(me, [])
                        todo = [e for e in self._outbox if e["envelope_id"] not in self._sent_to]
                        newest = self._live[-1] == me
                        if control or (todo and newest):
                            break
                        self._cond.wait()
                    if newest:
                        for env in todo:
                            self._sent_to[env["envelope_id"]] = me
                for msg in control + (todo if newest else []):
                    conn.send(json.dumps(msg))
        except ConnectionClosed:
            return
        finally:
            self._gone(me)

    def _acks(self, conn: ServerConnection, me: int) -> None:
        try:
            for raw in conn:
                msg = json.loads(raw)
                with self._cond:
                    ident = msg.get("envelope_id")
                    if ident:
                        self.acks.add(str(ident))
                        self._outbox = [e for e in self._outbox if e["envelope_id"] != ident]
                    self._cond.notify_all()
        except (ConnectionClosed, ValueError):
            pass
        finally:
            self._gone(me)

    def _gone(self, me: int) -> None:
        """Connection ``me`` ended: what it was sent and did not acknowledge goes out again on the next."""
        with self._cond:
            if me in self._live:
                self._live.remove(me)
            for env in self._outbox:
                if self._sent_to.get(env["envelope_id"]) == me:
                    del self._sent_to[env["envelope_id"]]
                    env["retry_attempt"] += 1
                    env["retry_reason"] = "timeout"
            self._cond.notify_all()

    # -- the Web API --------------------------------------------------------------------------------------------
    def call(self, token: str, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self.calls.append((method, body))
            self._cond.notify_all()
            while method in self.held and not self._down:
                self._cond.wait()
            if self._down:
                return 503, {"ok": False, "error": "service_unavailable"}
        fn = getattr(self, "_m_" + method.replace(".", "_"), None)
        if fn is None:
            return 200, {"ok": False, "error": "unknown_method"}
        wants_app = method.startswith("apps.connections.")
        if token not in (self.app_token, self.bot_token):
            return 200, {"ok": False, "error": "invalid_auth"}
        if (token == self.app_token) != wants_app:
            return 200, {"ok": False, "error": "not_allowed_token_type"}
        try:
            return 200, {"ok": True, **fn(body)}
        except ApiError as err:
            return 200, {"ok": False, "error": str(err)}

    def _m_apps_connections_open(self, body: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        with self._cond:
            self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.ws_port}/link/?ticket={ticket}&app_id={APP_ID}"}

    @staticmethod
    def _check_blocks(blocks: Any) -> None:
        if blocks is None:
            return
        if not isinstance(blocks, list) or len(blocks) > 50:
            raise ApiError("invalid_blocks")
        for b in blocks:
            if b.get("type") == "section" and not 1 <= len(b.get("text", {}).get("text", "")) <= 3000:
                raise ApiError("invalid_blocks")
            if b.get("type") == "actions":
                if not 1 <= len(b.get("elements", [])) <= 25:
                    raise ApiError("invalid_blocks")
                for e in b["elements"]:
                    if e.get("type") != "button" or not 1 <= len(e["text"]["text"]) <= 75:
                        raise ApiError("invalid_blocks")
                    if len(e.get("value", "")) > 2000 or len(e.get("action_id", "")) > 255:
                        raise ApiError("invalid_blocks")
                    if "url" not in e and "value" not in e:
                        raise ApiError("invalid_blocks")

    def _m_chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel") or "")
        if channel[:1] in ("U", "W"):
            channel = "D" + channel[1:]  # the app's direct messages with that member
        if channel[:1] not in ("C", "D", "G"):
            raise ApiError("channel_not_found")
        if not body.get("text") and not body.get("blocks"):
            raise ApiError("no_text")
        self._check_blocks(body.get("blocks"))
        ts = self._ts()
        msg = {"type": "message", "user": BOT_USER, "bot_id": "B0TETHER", "channel": channel, "ts": ts,
               "text": str(body.get("text") or ""), "blocks": body.get("blocks") or []}
        if body.get("thread_ts"):
            msg["thread_ts"] = str(body["thread_ts"])
        with self._cond:
            self.messages[(channel, ts)] = msg
        return {"channel": channel, "ts": ts, "message": msg}

    def _m_chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (str(body.get("channel") or ""), str(body.get("ts") or ""))
        self._check_blocks(body.get("blocks"))
        with self._cond:
            if key[0][:1] not in ("C", "D", "G"):
                raise ApiError("channel_not_found")
            msg = self.messages.get(key)
            if msg is None:
                raise ApiError("message_not_found")
            new = {**msg, "text": str(body.get("text") or msg["text"]), "edited": {"user": BOT_USER, "ts": self._ts()}}
            if "blocks" in body:
                new["blocks"] = body["blocks"]
            self.messages[key] = new
        return {"channel": key[0], "ts": key[1], "text": new["text"], "message": new}

    def _m_chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("channel") or not body.get("user"):
            raise ApiError("channel_not_found" if not body.get("channel") else "user_not_in_channel")
        with self._cond:
            self.ephemerals.append({"channel": body["channel"], "user": body["user"], "text": str(body.get("text"))})
        return {"message_ts": self._ts()}


def _handler(api: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if len(parts) != 2 or parts[0] != "api":
                return send_json(self, {"ok": False, "error": "unknown_method"}, 404)
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body = json.loads(raw or b"{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                if isinstance(body.get("blocks"), str):
                    body["blocks"] = json.loads(body["blocks"])
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else str(body.get("token") or "")
            status, answer = api.call(token, parts[1], body)
            try:
                send_json(self, answer, status)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler
