"""A stand-in for the Telegram Bot API (https://core.telegram.org/bots/api) on 127.0.0.1, written from its
documentation, for the methods tether uses:

- every call is ``POST /bot<TOKEN>/<METHOD>`` with a JSON (or form) body, answered ``{"ok": true, "result":
  ...}`` or ``{"ok": false, "error_code": N, "description": "..."}``; an unknown token is 401 Unauthorized;
- ``getUpdates`` (``offset``, ``limit``, ``timeout``, ``allowed_updates``): long polling. It holds the request
  until an update exists or ``timeout`` seconds pass; an update is confirmed (dropped) once a call's ``offset``
  is above its ``update_id``. Two polls of one bot at once: the older gets 409 Conflict, as the real service
  answers "terminated by other getUpdates request";
- ``sendMessage`` (``chat_id``, ``text``, ``reply_markup`` with ``inline_keyboard``, ``reply_to_message_id``),
  ``editMessageText`` (``chat_id``, ``message_id``, ``text``; "message is not modified" when nothing changes),
  ``answerCallbackQuery`` (``callback_query_id``, ``text`` 0-200 characters, ``show_alert``), ``getMe``;
  ``callback_data`` over 64 bytes is refused ("BUTTON_DATA_INVALID").

The test plays the phone: ``tap`` queues a ``callback_query`` update from a user pressing a button of a message
the bot sent, ``reply`` a message replying to one; ``down()`` makes every call fail with 502 Bad Gateway (and
ends the polls in flight) until ``up()``: the connection drops and comes back.
"""

from __future__ import annotations

import itertools
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from fakes.service import FakeService
from tether.integrations.canary_model import QuietHandler, send_json


class FakeTelegram(FakeService):
    def __init__(self, token: str, bot_id: int = 777000, username: str = "tether_test_bot") -> None:
        self.token = token
        self.bot = {"id": bot_id, "is_bot": True, "first_name": "tether", "username": username}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message id) -> the message now
        self.answers: dict[str, dict[str, Any]] = {}  # callback query id -> answerCallbackQuery's body
        self.received: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message id) -> a user's message
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._query_ids = itertools.count(1)
        self._poll_generation = 0
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    # -- the test's side: the phone --------------------------------------------------------------------------
    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (to ``chat_id``), oldest first, as they are now (edits applied)."""
        with self._cond:
            return [
                m
                for (c, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                if chat_id is None or c == chat_id
            ]

    def recent(self) -> str:
        return f"calls: {[c[0] for c in self.calls][-20:]}"

    def button(self, message: dict[str, Any], label: str) -> str:
        for row in message["reply_markup"]["inline_keyboard"]:
            for b in row:
                if b["text"] == label:
                    return str(b["callback_data"])
        raise AssertionError(f"no button {label!r} on {message}")

    def tap(self, message: dict[str, Any], data: str, user_id: int, username: str = "phone") -> str:
        """A user presses a button (``data``) of ``message``: a ``callback_query`` update. Its id."""
        qid = str(next(self._query_ids))
        user = {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username}
        self._push(
            {
                "callback_query": {
                    "id": qid,
                    "from": user,
                    "message": message,
                    "chat_instance": f"ci{message['chat']['id']}",
                    "data": data,
                }
            }
        )
        return qid

    def reply(self, message: dict[str, Any], text: str, user_id: int, username: str = "phone") -> None:
        """A user replies to ``message`` in its chat."""
        user = {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username}
        mid = next(self._message_ids)
        msg = {
            "message_id": mid,
            "from": user,
            "chat": message["chat"],
            "date": int(time.time()),
            "text": text,
            "reply_to_message": message,
        }
        with self._cond:
            self.received[(int(message["chat"]["id"]), mid)] = msg
        self._push({"message": msg})

    def say(self, chat_id: int, text: str, user_id: int, username: str = "phone") -> None:
        """A user writes ``text`` to the bot in chat ``chat_id`` (a private chat: ``chat_id`` is their user id)."""
        user = {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username}
        mid = next(self._message_ids)
        msg = {
            "message_id": mid,
            "from": user,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
        }
        with self._cond:
            self.received[(chat_id, mid)] = msg
        self._push({"message": msg})

    def answer(self, qid: str, timeout: float = 15.0) -> dict[str, Any]:
        got: dict[str, Any] = self.wait_for(lambda: self.answers.get(qid), timeout)
        return got

    def _push(self, body: dict[str, Any]) -> None:
        with self._cond:
            self._updates.append({"update_id": next(self._update_ids), **body})
            self._cond.notify_all()

    # -- the API ------------------------------------------------------------------------------------------------
    def call(self, token: str, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self.calls.append((method, body))
            self._cond.notify_all()
            if self._down:
                return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        fn = getattr(self, "_m_" + method, None)
        if fn is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        try:
            return 200, {"ok": True, "result": fn(body)}
        except ApiError as err:
            return err.code, {"ok": False, "error_code": err.code, "description": err.description}

    def _m_getMe(self, body: dict[str, Any]) -> Any:
        return self.bot

    def _m_getUpdates(self, body: dict[str, Any]) -> Any:
        offset = int(body.get("offset") or 0)
        limit = min(100, max(1, int(body.get("limit") or 100)))
        timeout = max(0.0, float(body.get("timeout") or 0))
        allowed = body.get("allowed_updates") or None
        deadline = time.monotonic() + timeout
        with self._cond:
            self._poll_generation += 1
            mine = self._poll_generation
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while True:
                if self._down:
                    raise ApiError(502, "Bad Gateway")
                if self._poll_generation != mine:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only "
                        "one bot instance is running",
                    )
                got = [u for u in self._updates if allowed is None or any(k in u for k in allowed)]
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got[:limit]
                self._cond.wait(left)

    def _m_sendMessage(self, body: dict[str, Any]) -> Any:
        chat = int(body["chat_id"])
        text = str(body.get("text") or "")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = body.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for b in row:
                    data = b.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": self.bot,
            "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
            "date": int(time.time()),
            "text": text,
        }
        if markup is not None:
            msg["reply_markup"] = markup
        if body.get("reply_to_message_id"):
            key = (chat, int(body["reply_to_message_id"]))
            msg["reply_to_message"] = self.messages.get(key) or self.received.get(key) or {"message_id": key[1]}
        with self._cond:
            self.messages[(chat, msg["message_id"])] = msg
        return msg

    def _m_editMessageText(self, body: dict[str, Any]) -> Any:
        key = (int(body["chat_id"]), int(body["message_id"]))
        with self._cond:
            msg = self.messages.get(key)
            if msg is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            markup = body.get("reply_markup")
            if msg["text"] == body.get("text") and markup == msg.get("reply_markup"):
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup of "
                    "the message",
                )
            new = {**msg, "text": str(body.get("text")), "edit_date": int(time.time())}
            if markup is None:
                new.pop("reply_markup", None)
            else:
                new["reply_markup"] = markup
            self.messages[key] = new
            return new

    def _m_answerCallbackQuery(self, body: dict[str, Any]) -> Any:
        text = str(body.get("text") or "")
        if len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self._cond:
            self.answers[str(body["callback_query_id"])] = body
        return True


class ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _handler(api: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if len(parts) != 2 or not parts[0].startswith("bot"):
                return self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body = json.loads(raw or b"{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                for k in ("reply_markup", "allowed_updates"):
                    if isinstance(body.get(k), str):
                        body[k] = json.loads(body[k])
            status, answer = api.call(parts[0][3:], parts[1], body)
            try:
                self._send(status, answer)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a daemon stopping): fine
                self.close_connection = True

        do_GET = do_POST

        def _send(self, status: int, body: dict[str, Any]) -> None:
            send_json(self, body, status)

    return Handler
