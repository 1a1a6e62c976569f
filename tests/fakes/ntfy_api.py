"""A stand-in for an ntfy server (https://docs.ntfy.sh) on 127.0.0.1, written from its publishing and
subscribing documentation, for what tether uses:

- publish as JSON: ``POST /`` with ``{"topic", "message", "title", "priority", "actions": [...]}``, answered
  with the message object (``id``, ``time``, ``expires``, ``event: "message"``, ``topic``, ...); an action is
  ``{"action": "view"|"http"|"broadcast", "label", "url", ...}`` (``http``: ``method`` default POST, ``headers``,
  ``body``, ``clear``), at most three; publish plainly: ``PUT``/``POST /TOPIC`` with the message as the body
  (what a phone's ``http`` action does);
- subscribe as a JSON stream: ``GET /TOPIC/json`` keeps the connection open and writes one JSON object per line:
  ``{"event": "open"}`` first, then each ``message`` (cached ones first, by ``since=`` a message id, a unix
  time or ``all``), and ``keepalive`` lines; ``poll=1`` returns the cached ones and closes;
- access control: with ``tokens`` set, every call needs ``Authorization: Bearer TOKEN`` (else 403 with ntfy's
  error object, ``{"code": 40301, "http": 403, "error": "forbidden"}``).

The test plays the phone: ``press`` performs a notification's ``http`` action as the ntfy app would (the request
it describes, sent to this server); ``down()`` drops every stream and answers 502 until ``up()``;
``drop_streams()`` drops only the subscribers (publishing still works, so a press waits in the cache).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from fakes.service import FakeService
from tether.integrations.canary_model import QuietHandler, send_json

KEEPALIVE = 1.0  # seconds between keepalive lines (ntfy's default is 45 s)


class FakeNtfy(FakeService):
    def __init__(self, tokens: tuple[str, ...] = ()) -> None:
        self.tokens = tokens
        self.messages: list[dict[str, Any]] = []  # every message published, oldest first
        self.subscribes = 0  # GET /TOPIC/json requests answered 200
        self._seq = itertools.count(1)
        self.streams_down = False
        self._generation = 0  # a down() ends every stream open before it
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    # -- the test's side -----------------------------------------------------------------------------------
    def down(self) -> None:
        with self._cond:
            self._generation += 1
            super().down()

    def up(self) -> None:
        with self._cond:
            self.streams_down = False
            super().up()

    def drop_streams(self) -> None:
        """Subscribers lose their connection and cannot subscribe again (502) until ``up()``; publishing works:
        a phone's press is kept in the topic's cache meanwhile, as on a real server."""
        with self._cond:
            self.streams_down = True
            self._generation += 1
            self._cond.notify_all()

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self._cond:
            return [m for m in self.messages if m["topic"] == topic]

    def recent(self) -> str:
        return f"messages: {self.messages[-5:]}"

    @staticmethod
    def press(message: dict[str, Any], label: str) -> int:
        """Perform a notification's ``http`` action as the ntfy app does; the status it got."""
        for action in message.get("actions") or []:
            if action.get("label") == label and action.get("action") == "http":
                resp = httpx.request(
                    action.get("method") or "POST",
                    action["url"],
                    headers=action.get("headers"),
                    content=(action.get("body") or "").encode(),
                    timeout=10,
                )
                return resp.status_code
        raise AssertionError(f"no http action {label!r} on {message}")

    # -- the API -----------------------------------------------------------------------------------------------
    def allowed(self, headers: Any) -> bool:
        if not self.tokens:
            return True
        auth = headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def publish(self, topic: str, fields: dict[str, Any]) -> dict[str, Any]:
        actions = fields.get("actions") or []
        if len(actions) > 3:
            raise ValueError("too many actions")
        for a in actions:
            if a.get("action") not in ("view", "http", "broadcast") or not a.get("label"):
                raise ValueError("invalid action")
            if a["action"] in ("view", "http") and not a.get("url"):
                raise ValueError("action url missing")
        now = int(time.time())
        msg: dict[str, Any] = {
            "id": secrets.token_urlsafe(9)[:12],
            "time": now,
            "expires": now + 43200,
            "event": "message",
            "topic": topic,
            "message": str(fields.get("message") or "triggered"),
        }
        for key in ("title", "priority", "tags", "click"):
            if fields.get(key) is not None:
                msg[key] = fields[key]
        if actions:
            msg["actions"] = [{"id": secrets.token_hex(5), **a} for a in actions]
        with self._cond:
            msg["seq"] = next(self._seq)
            self.messages.append(msg)
            self._cond.notify_all()
        return msg

    def cached(self, topic: str, since: str | None) -> list[dict[str, Any]]:
        with self._cond:
            mine = [m for m in self.messages if m["topic"] == topic]
        if since in (None, "", "none"):
            return []
        if since == "all":
            return mine
        if since.isdigit():
            return [m for m in mine if m["time"] >= int(since)]
        ids = [m["id"] for m in mine]
        return mine[ids.index(since) + 1 :] if since in ids else mine


def _public(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k != "seq"}


def _handler(api: FakeNtfy) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _refuse(self) -> bool:
            if api._down:
                self._json(502, {"code": 50201, "http": 502, "error": "bad gateway"})
                return True
            if not api.allowed(self.headers):
                self._json(403, {"code": 40301, "http": 403, "error": "forbidden"})
                return True
            return False

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self._refuse():
                return
            path = urlsplit(self.path).path.strip("/")
            try:
                if path == "":
                    fields = json.loads(raw or b"{}")
                    msg = api.publish(str(fields.get("topic") or ""), fields)
                elif "/" not in path:
                    fields = {"message": raw.decode(), "title": self.headers.get("Title")}
                    msg = api.publish(path, fields)
                else:
                    return self._json(404, {"code": 40401, "http": 404, "error": "page not found"})
            except (ValueError, KeyError) as err:
                return self._json(400, {"code": 40001, "http": 400, "error": str(err)})
            self._json(200, _public(msg))

        do_PUT = do_POST

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.strip("/").split("/")
            if len(path) != 2 or path[1] != "json":
                return self._json(404, {"code": 40401, "http": 404, "error": "page not found"})
            if api.streams_down:
                return self._json(502, {"code": 50201, "http": 502, "error": "bad gateway"})
            if self._refuse():
                return
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            topic = path[0]
            with api._cond:
                generation = api._generation
                api.subscribes += 1
                api._cond.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                if q.get("poll") in ("1", "true", "yes"):
                    for m in api.cached(topic, q.get("since") or "all"):
                        self._line(_public(m))
                    return self._end()
                self._line(
                    {"id": secrets.token_urlsafe(9)[:12], "time": int(time.time()), "event": "open", "topic": topic}
                )
                sent = {m["id"] for m in api.cached(topic, q.get("since"))}
                for m in api.cached(topic, q.get("since")):
                    self._line(_public(m))
                seen = max([m["seq"] for m in api.on(topic)], default=0)
                last_beat = time.monotonic()
                while True:
                    with api._cond:
                        if api._generation != generation or api._down or api.streams_down:
                            break
                        fresh = [m for m in api.messages if m["topic"] == topic and m["seq"] > seen]
                        if not fresh:
                            api._cond.wait(KEEPALIVE / 2)
                    for m in fresh:
                        seen = max(seen, m["seq"])
                        if m["id"] not in sent:
                            self._line(_public(m))
                    if time.monotonic() - last_beat >= KEEPALIVE:
                        self._line(
                            {
                                "id": secrets.token_urlsafe(9)[:12],
                                "time": int(time.time()),
                                "event": "keepalive",
                                "topic": topic,
                            }
                        )
                        last_beat = time.monotonic()
                self.close_connection = True  # dropped: no clean end of the chunked body
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _line(self, obj: dict[str, Any]) -> None:
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _json(self, status: int, body: dict[str, Any]) -> None:
            send_json(self, body, status)

    return Handler
