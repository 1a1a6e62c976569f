"""Approvals on ntfy (https://docs.ntfy.sh), self-hosted or public, over outbound HTTP(S) only.

Each approval is published to the person's topic with action buttons: two ``http`` actions that publish a
signed decision to the reply topic (``tether1 VERB ID PERSON SIG``, SIG an HMAC over the verb, the approval and
the person: ``deciders.Signer``), and a ``view`` action opening the signed one-time link when the dashboard is
reachable. One ``Server`` per ntfy server and reply topic subscribes to it as a JSON stream
(``GET /TOPIC/json``), resuming after a drop with ``since=`` the last message it read, so a tap made while the
host was cut off is decided when it reconnects (or refused, if the approval expired meanwhile). A message on
the reply topic that this host did not sign is refused and recorded; the outcome of a signed one is published
back to that person's topic.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import httpx

from tether import redact
from tether.notify.deciders import Approver, Outcome, Signer, by_key, summary
from tether.notify.phone import CALL_TIMEOUT, Channel, ChannelError, approval_lines, json_object, secret
from tether.runbook.model import Ntfy

STREAM_READ = 120.0  # ntfy sends a keepalive every 45 s by default: silence this long is a dead connection
DECISION = re.compile(r"^tether1 ([ad]) ([0-9]{1,18}) ([a-z]+:[a-z0-9_-]{1,63}(?::[0-9]{1,4})?) ([A-Za-z0-9_-]{8,40})$")


def server_name(conf: Ntfy) -> str:
    return f"ntfy {conf.url}/{conf.replies}"


def same_server(a: Ntfy, b: Ntfy) -> bool:
    return (a.url, a.replies, a.token) == (b.url, b.replies, b.token)


def decision(signer: Signer, verb: str, approval_id: int, who: Approver) -> str:
    """What a button publishes: signed over the verb, the approval and the person (their place in the runbook
    and their name)."""
    return f"tether1 {verb} {approval_id} {who.key} {signer.sign('ntfy', verb, approval_id, who.key, who.person.name)}"


class Server(Channel[Ntfy]):
    """One ntfy server and reply topic: the subscription thread, and the publishing the dispatcher does."""

    via = "ntfy"
    step = "subscribe"

    def named(self) -> str:
        return server_name(self.conf)

    def setup(self) -> None:
        self._streamer = httpx.Client(timeout=httpx.Timeout(CALL_TIMEOUT, read=STREAM_READ))
        self._since = str(int(time.time()))  # the first time: what arrives from now on

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret(self.conf.token)}"} if self.conf.token else {}

    # -- publishing ------------------------------------------------------------------------------------------
    def publish(
        self, topic: str, title: str, message: str, actions: list[dict[str, Any]] | None = None, priority: int = 3
    ) -> str:
        body: dict[str, Any] = {
            "topic": topic,
            "title": redact.redact(title)[:250],
            "message": redact.redact(message)[:4000],
            "priority": priority,
        }
        if actions:
            body["actions"] = actions
        try:
            resp = self._client.post(self.conf.url + "/", json=body, headers=self._headers())
        except httpx.HTTPError as err:
            raise ChannelError(redact.redact(f"publish: {type(err).__name__}: {err}")[:300]) from None
        if resp.status_code != 200:
            permanent = resp.status_code in (400, 413)
            raise ChannelError(redact.redact(f"publish: HTTP {resp.status_code}: {resp.text[:200]}"), permanent)
        self.health.ok()
        with contextlib.suppress(ValueError, AttributeError):
            return str(resp.json().get("id") or "")
        return ""

    def send_approval(self, row: dict[str, Any], who: Approver, link: str | None = None) -> str:
        """Publish approval ``row`` to ``who``'s topic, with their own signed buttons."""
        if who.person.ntfy is None:
            raise ChannelError(f"{who.label} has no ntfy topic", permanent=True)
        reply = f"{self.conf.url}/{self.conf.replies}"
        headers = self._headers()
        actions: list[dict[str, Any]] = [
            {
                "action": "http",
                "label": label,
                "url": reply,
                "method": "POST",
                "clear": True,
                "body": decision(self.signer, verb, row["id"], who),
                **({"headers": headers} if headers else {}),
            }
            for verb, label in (("a", "Approve"), ("d", "Deny"))
        ]
        if link:
            actions.append({"action": "view", "label": "Open", "url": link})
        return self.publish(
            who.person.ntfy.topic,
            f"tether approval #{row['id']}: {row['agent']} asks to {row['action']}",
            "\n".join(approval_lines(row)),
            actions,
            priority=4,
        )

    # -- the subscription ------------------------------------------------------------------------------------
    def interrupt(self) -> None:
        self._streamer.close()

    def poll_once(self) -> None:
        opened = time.monotonic()
        url = f"{self.conf.url}/{self.conf.replies}/json"
        with self._streamer.stream("GET", url, params={"since": self._since}, headers=self._headers()) as resp:
            if resp.status_code != 200:
                raise ChannelError(f"subscribe: HTTP {resp.status_code}")
            self.health.ok()
            for raw in resp.iter_lines():
                if self._stop.is_set():
                    return
                msg = json_object(raw)
                if msg is None:
                    continue
                if msg.get("event") == "message":
                    self._since = str(msg.get("id") or self._since)
                    self._message(msg)
                self.health.ok()
        self.ended(opened, "subscribe: the server closed the stream at once")

    def _message(self, msg: dict[str, Any]) -> None:
        ident = str(msg.get("id") or "")
        if ident and not self.first_time(ident):  # a resumed stream may repeat what it already sent
            return
        text = str(msg.get("message") or "").strip()
        m = DECISION.match(text)
        who = by_key(self.runbook(), m.group(3)) if m else None
        if (
            m is None
            or who is None
            or not self.signer.check(m.group(4), "ntfy", m.group(1), int(m.group(2)), who.key, who.person.name)
        ):
            self.decider.refuse(
                int(m.group(2)) if m else None,
                "ntfy",
                f"a message on {self.conf.replies}",
                "it is not a decision this host signed for someone the runbook names",
            )
            return
        verb, approval_id = m.group(1), int(m.group(2))
        if who.person.ntfy is None or not same_server(who.person.ntfy, self.conf):
            self.decider.refuse(approval_id, "ntfy", who.label, f"{who.label} may no longer decide by ntfy here")
            return
        out: Outcome = self.decider.decide(approval_id, verb == "a", who, "ntfy")
        title = f"tether #{approval_id}: " + ("done" if out.ok else "nothing decided")
        row = out.row
        with contextlib.suppress(ChannelError):
            self.publish(who.person.ntfy.topic, title if row is None else f"{title} ({summary(row)})", out.text)

