"""The shape every phone channel shares (a Telegram bot, a Slack app, an ntfy reply topic), so that each channel's
own module keeps only its protocol.

``Channel`` owns the thread that reads what comes back, the one event that stops it, and the backoff after a
failure, through the channel's ``Health``: the loop calls the channel's ``poll_once`` (one long poll, one Socket
Mode connection, one JSON stream) until it is stopped, and after a failure waits what ``Health.failed`` says. It
also says how a button or a reply decides (``outcome``), so every channel refuses strangers and reads ``approve
[note]`` alike. ``secret`` resolves the tokens the channels' calls carry and registers them for redaction.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from tether import redact
from tether.notify.deciders import Approver, Decider, Outcome, Signer, settled
from tether.notify.health import Health
from tether.runbook.model import Runbook
from tether.secrets import SecretError, resolve
from tether.status_file import iso

CALL_TIMEOUT = 15.0
#: What a button's verb decides: (approve, scope). ``a`` approves this call once; ``t`` every identical call of
#: the session or task that asked; ``h`` those for an hour (``approvals.SCOPES``); ``d`` denies.
VERBS = {"a": (True, "once"), "t": (True, "task"), "h": (True, "1h"), "d": (False, "once")}
SCOPE_BUTTONS = (("t", "Approve for this task"), ("h", "Approve for an hour"))
APPROVE_WORDS = {"approve", "approved", "yes", "y", "ok", "👍"}
QUICK_S = 1.0  # a connection or stream that ends sooner than this after opening is a failure, not an end


class ChannelError(Exception):
    """A call that failed: ``permanent`` (the request itself is wrong: trying again will not help) or not
    (the network, the service: retried with backoff)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Sent:
    """A message a channel sent for an approval (recorded as a ``channel.sent`` event: edited when it settles):
    Telegram's chat and message ids, or Slack's channel id and ``ts``."""

    approval_id: int
    chat_id: int | str
    message_id: int | str


def secret(ref: str) -> str:
    """The secret ``ref`` names, registered for redaction; ``ChannelError`` (retried: a file or a keyring entry
    may appear) when it cannot be read."""
    try:
        value = resolve(ref).strip()
    except SecretError as err:
        raise ChannelError(str(err)) from None
    redact.register(value)
    return value


def approval_lines(row: dict[str, Any]) -> list[str]:
    """An approval's detail, the rule that held it and when it expires: the body of every channel's message."""
    lines = [str(row["detail"])[:1500]] if row.get("detail") else []
    lines.append(f"held by {row.get('rule') or 'the runbook'}: {row.get('reason') or ''}".rstrip(": "))
    if row.get("expires"):
        lines.append(f"expires {iso(row['expires'])} (then denied)")
    return lines


def approval_text(row: dict[str, Any], hint: str, link: str | None = None) -> str:
    """An approval as a chat message: while pending, what to do (``hint``) and the link; then its outcome."""
    lines = [f"tether approval #{row['id']}: {row['agent']} asks to {row['action']}", *approval_lines(row)]
    if row["state"] == "pending":
        lines.append(hint)
        if link:
            lines.append(link)
    else:
        lines.append("")
        lines.append(settled(row))
    return redact.redact("\n".join(lines))[:4000]


def json_object(raw: Any) -> dict[str, Any] | None:
    """``raw`` parsed when it is a JSON object; else None (a keepalive, a line cut short, anything else)."""
    try:
        got = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return got if isinstance(got, dict) else None


ConfT = TypeVar("ConfT")
KeyT = TypeVar("KeyT")


class Channel(Generic[ConfT]):
    """One phone channel's reading thread: ``poll_once`` until stopped, backing off after each failure."""

    via: ClassVar[str]  # how a decision names its channel: telegram, slack, ntfy
    step: ClassVar[str]  # what ``poll_once`` does, in the health's error for a failure that is no ChannelError

    def __init__(
        self, conf: ConfT, health: Health, decider: Decider, signer: Signer, runbook: Callable[[], Runbook]
    ) -> None:
        self.conf = conf
        self.name = self.named()
        self.health = health
        self.decider = decider
        self.signer = signer
        self.runbook = runbook
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=CALL_TIMEOUT)
        self._seen: collections.deque[str] = collections.deque(maxlen=1000)  # what was handled (redeliveries)
        self._thread = threading.Thread(target=self._loop, name=f"tether-{self.name[:40]}", daemon=True)
        self.setup()

    def named(self) -> str:
        """How the channel is shown (its health, its thread, its log lines), from ``self.conf``."""
        raise NotImplementedError

    def setup(self) -> None:
        """Make the channel's own parts (clients, queues, threads), once the shared ones exist."""

    # -- the loop ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.interrupt()
        with contextlib.suppress(Exception):
            self._client.close()

    def interrupt(self) -> None:
        """End a call ``poll_once`` may be blocked in (its connection), so that the thread sees the stop."""

    def poll_once(self) -> None:
        """One turn of the channel: read what comes back and handle it; raise when the channel is down."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as err:  # down: back off, then try again
                if self._stop.is_set():
                    return
                text = str(err) if isinstance(err, ChannelError) else f"{self.step}: {type(err).__name__}: {err}"
                self._stop.wait(self.health.failed(redact.redact(text)[:300]))

    @staticmethod
    def ended(opened: float, why: str) -> None:
        """After a connection or stream ended by itself: reconnecting at once is right when it ran a while (the
        service ended it); one that ended at once raises ``why`` (a failure, so the retries back off)."""
        if time.monotonic() - opened <= QUICK_S:
            raise ChannelError(why)

    def first_time(self, ident: str) -> bool:
        """Whether message ``ident`` is new: a redelivery (a resumed stream, a lost acknowledgement) is handled once."""
        if ident in self._seen:
            return False
        self._seen.append(ident)
        return True

    # -- what comes back -----------------------------------------------------------------------------------
    def handle(self, item: dict[str, Any]) -> None:
        raise NotImplementedError

    def handle_safely(self, what: str, item: dict[str, Any]) -> None:
        """``handle(item)``; a failure is printed (redacted) with ``what`` and never stops the channel."""
        try:
            self.handle(item)
        except Exception as err:
            with contextlib.suppress(Exception):
                print(f"tether: {self.name}: {what}: {redact.redact(repr(err))[:300]}", flush=True)

    def outcome(
        self,
        approval_id: int,
        row: dict[str, Any] | None,
        who: Approver | None,
        stranger: str,
        verb: str = "",
        words: str = "",
    ) -> Outcome:
        """What a button (``verb``) or a reply (``words``) decides about approval ``approval_id`` (its ``row``),
        sent by ``who`` (None: someone the runbook does not name here, shown as ``stranger``: refused)."""
        if row is None:
            return Outcome(False, f"There is no approval #{approval_id} (any more): nothing was decided.")
        if who is None:
            why = f"{stranger} is not an approver of {row['agent']}"
            return self.decider.refuse(approval_id, self.via, stranger, why)
        if verb:
            approve, scope = VERBS[verb]
            return self.decider.decide(approval_id, approve, who, self.via, scope=scope)
        if not words:
            why = "Reply with text: `approve [note]` approves, anything else denies with it as the reason."
            return Outcome(False, why)
        first, _, rest = words.partition(" ")
        approve = first.lower().rstrip(".!,:") in APPROVE_WORDS
        return self.decider.decide(approval_id, approve, who, self.via, rest if approve else words)


class Chat(Channel[ConfT], Generic[ConfT, KeyT]):
    """A channel whose messages are edited once their approval settles (Telegram, Slack): ``sent`` records each
    message sent for an approval, ``find`` says which approval a message (``KeyT``: its chat and id) was for."""

    def __init__(
        self,
        conf: ConfT,
        health: Health,
        decider: Decider,
        signer: Signer,
        runbook: Callable[[], Runbook],
        sent: Callable[[Sent, str], None],
        find: Callable[[KeyT, KeyT], int | None],
    ) -> None:
        self._record = sent  # records a message sent (chat or channel, message id or ts) for an approval
        self._find = find  # (chat or channel, message id or ts) -> approval id, for replies
        super().__init__(conf, health, decider, signer, runbook)
