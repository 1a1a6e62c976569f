"""Approvals on Telegram, over outbound HTTPS only (the Bot API: https://core.telegram.org/bots/api).

One ``Bot`` per bot token: it long-polls ``getUpdates`` (nothing listens on the host), sends each approval to the
chats of the people the runbook names with inline Approve / Deny buttons, and handles what comes back:

- a tap (``callback_query``): its ``callback_data`` is ``t1:VERB:ID:SIG``, SIG an HMAC over the chat, the
  approval and the verb (``deciders.Signer``), so a button decides only the approval it was made for, in the
  chat it was sent to; the tapper's user id must be a person's ``user_id`` (default: their ``chat_id``), else
  the tap is refused and recorded. ``answerCallbackQuery`` says what happened; the message is edited to show it;
- a reply to an approval's message, by one of its people: ``approve [note]`` (or yes/ok) approves, anything else
  denies with the text as the reason;
- any other message gets its chat's and sender's ids back (what the runbook needs), and nothing else.

The bot's token is in every URL: it is registered for redaction and never written anywhere.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import httpx

from tether import redact
from tether.notify.deciders import Approver, Outcome, Signer, approvers
from tether.notify.phone import CALL_TIMEOUT, SCOPE_BUTTONS, Chat, approval_text, secret
from tether.notify.phone import ChannelError as ChannelError  # re-exported: daemon/channels.py names it here
from tether.notify.phone import Sent as Sent  # re-exported: daemon/channels.py names it here
from tether.runbook.model import Telegram

POLL_S = 25  # getUpdates' long-poll timeout (Telegram holds the request until an update or this)
CALLBACK = re.compile(r"^t1:([adth]):([0-9]{1,18}):([A-Za-z0-9_-]{8,40})$")
ABOUT = re.compile(r"^tether approval #([0-9]{1,18}): ")


def bot_name(conf: Telegram) -> str:
    """How a bot is shown: its token's reference and, when not the real service, its API address."""
    where = "" if conf.api == "https://api.telegram.org" else f" at {conf.api}"
    return f"telegram {conf.token}{where}"


def same_bot(a: Telegram, b: Telegram) -> bool:
    return (a.api, a.token) == (b.api, b.token)


HINT = "Tap Approve or Deny, or reply to this message with a reason to deny."


def keyboard(signer: Signer, chat_id: int, approval_id: int) -> dict[str, Any]:
    def data(verb: str) -> str:
        return f"t1:{verb}:{approval_id}:{signer.sign('tg', chat_id, approval_id, verb)}"

    return {
        "inline_keyboard": [
            [{"text": "Approve", "callback_data": data("a")}, {"text": "Deny", "callback_data": data("d")}],
            [{"text": label, "callback_data": data(verb)} for verb, label in SCOPE_BUTTONS],
        ]
    }


class Bot(Chat[Telegram, int]):
    """One Telegram bot: its long-poll thread, and the calls the dispatcher makes to send and edit."""

    via = "telegram"
    step = "getUpdates"

    def named(self) -> str:
        return bot_name(self.conf)

    def setup(self) -> None:
        self.me: int | None = None  # the bot's own user id (getMe)
        self._offset: int | None = None  # the next update getUpdates is asked for
        self._poller = httpx.Client(timeout=httpx.Timeout(CALL_TIMEOUT, read=POLL_S + 10.0))

    # -- calls ---------------------------------------------------------------------------------------------
    def _url(self, method: str) -> str:
        return f"{self.conf.api}/bot{secret(self.conf.token)}/{method}"

    def call(self, method: str, payload: dict[str, Any], client: httpx.Client | None = None) -> Any:
        """One Bot API call; its ``result``, or ``ChannelError`` (permanent for a refused request)."""
        try:
            resp = (client or self._client).post(self._url(method), json=payload)
        except httpx.HTTPError as err:
            raise ChannelError(redact.redact(f"{method}: {type(err).__name__}: {err}")[:300]) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        what = body.get("description") if isinstance(body, dict) else resp.text[:200]
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in (401, 404, 409, 429)
        raise ChannelError(redact.redact(f"{method}: HTTP {resp.status_code}: {what}")[:300], permanent)

    def send_approval(self, row: dict[str, Any], chat_id: int, link: str | None = None) -> Sent:
        got = self.call(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": approval_text(row, HINT, link),
                "reply_markup": keyboard(self.signer, chat_id, row["id"]),
                "disable_web_page_preview": True,
            },
        )
        sent = Sent(row["id"], chat_id, int(got["message_id"]))
        self._record(sent, self.name)
        self.health.ok()
        return sent

    def settle(self, row: dict[str, Any], chat_id: int, message_id: int) -> None:
        """Show an approval's outcome on a message sent for it, without its buttons."""
        try:
            text = approval_text(row, HINT)
            self.call("editMessageText", {"chat_id": chat_id, "message_id": message_id, "text": text})
        except ChannelError as err:
            if not err.permanent or "not modified" not in str(err):
                raise
        self.health.ok()

    # -- the long poll -------------------------------------------------------------------------------------
    def interrupt(self) -> None:
        self._poller.close()

    def poll_once(self) -> None:
        if self.health.state != "up":  # a long poll answers late: first learn at once that it works
            me = self.call("getMe", {}, self._poller)
            self.me = int(me["id"]) if isinstance(me, dict) and "id" in me else self.me
            self.health.ok()
        payload: dict[str, Any] = {"timeout": POLL_S, "allowed_updates": ["message", "callback_query"]}
        if self._offset is not None:
            payload["offset"] = self._offset
        updates = self.call("getUpdates", payload, self._poller)
        self.health.ok()
        for update in updates or []:
            self._offset = max(self._offset or 0, int(update.get("update_id", 0)) + 1)
            self.handle_safely(f"update {update.get('update_id')}", update)

    # -- what comes back -----------------------------------------------------------------------------------
    def handle(self, update: dict[str, Any]) -> None:
        if isinstance(update.get("callback_query"), dict):
            self._tap(update["callback_query"])
        elif isinstance(update.get("message"), dict):
            self._message(update["message"])

    def _people(self, agent: str, chat_id: int, user_id: int) -> Approver | None:
        """The person of ``agent`` this bot reaches in ``chat_id`` whose user id is ``user_id``."""
        for a in approvers(self.runbook(), agent):
            t = a.person.telegram
            if (
                t is not None
                and same_bot(t, self.conf)
                and t.chat_id == chat_id
                and (t.user_id if t.user_id is not None else t.chat_id) == user_id
            ):
                return a
        return None

    @staticmethod
    def _who(user: dict[str, Any]) -> str:
        name = user.get("username") or " ".join(filter(None, (user.get("first_name"), user.get("last_name"))))
        return f"telegram user {user.get('id')}" + (f" ({name})" if name else "")

    def _tap(self, cq: dict[str, Any]) -> None:
        user = cq.get("from") or {}
        msg = cq.get("message") or {}
        chat_id = (msg.get("chat") or {}).get("id")
        m = CALLBACK.match(str(cq.get("data") or ""))
        approval_id = int(m.group(2)) if m else None
        if m is None or chat_id is None or not self.signer.check(m.group(3), "tg", chat_id, approval_id, m.group(1)):
            out = self.decider.refuse(
                approval_id, "telegram", self._who(user), "the button was not made by this host for this chat"
            )
            self._answer(cq, out)
            return
        assert approval_id is not None
        row = self.decider.store.approval(approval_id)
        who = self._people(row["agent"], int(chat_id), int(user.get("id", 0))) if row else None
        out = self.outcome(approval_id, row, who, self._who(user), verb=m.group(1))
        self._answer(cq, out)
        if out.row is not None and out.row["state"] != "pending" and msg.get("message_id"):
            with contextlib.suppress(ChannelError):
                self.settle(out.row, int(chat_id), int(msg["message_id"]))

    def _answer(self, cq: dict[str, Any], out: Outcome) -> None:
        with contextlib.suppress(ChannelError):
            self.call(
                "answerCallbackQuery",
                {"callback_query_id": cq.get("id"), "text": out.text[:200], "show_alert": not out.ok},
            )

    def _message(self, msg: dict[str, Any]) -> None:
        chat_id = (msg.get("chat") or {}).get("id")
        user = msg.get("from") or {}
        if chat_id is None or user.get("is_bot"):
            return
        replied = msg.get("reply_to_message") or {}
        approval_id = self._find(int(chat_id), int(replied["message_id"])) if replied.get("message_id") else None
        if approval_id is None and self.me is not None and (replied.get("from") or {}).get("id") == self.me:
            # the reply came before the dispatcher recorded what it sent: the bot's own message names it
            m = ABOUT.match(str(replied.get("text") or ""))
            approval_id = int(m.group(1)) if m else None
        if approval_id is None:
            text = (
                f"tether: this chat's id is {chat_id}; your user id is {user.get('id')}. Approvals arrive "
                "here once the runbook names this chat (telegram: chat_id) for a person."
            )
            self._reply(int(chat_id), msg, text)
            return
        row = self.decider.store.approval(approval_id)
        who = self._people(row["agent"], int(chat_id), int(user.get("id", 0))) if row else None
        out = self.outcome(approval_id, row, who, self._who(user), words=str(msg.get("text") or "").strip())
        self._reply(int(chat_id), msg, out.text)
        if out.ok and out.row is not None:
            with contextlib.suppress(ChannelError):
                self.settle(out.row, int(chat_id), int(replied["message_id"]))

    def _reply(self, chat_id: int, msg: dict[str, Any], text: str) -> None:
        with contextlib.suppress(ChannelError):
            self.call(
                "sendMessage", {"chat_id": chat_id, "text": text[:4000], "reply_to_message_id": msg.get("message_id")}
            )
