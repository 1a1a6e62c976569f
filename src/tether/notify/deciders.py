"""Deciding from a phone: who may (an agent's owner, backup and ``approvers``), how a button or a link proves
which approval and whom it was made for (an HMAC with this host's key), and the one way such a decision is
made (``Decider.decide``), whatever channel brought it: Telegram, ntfy, a signed link.

A channel's decision goes through ``Approvals.decide``, the function the CLI, the API and the dashboard call,
so it is idempotent the same way (a second tap finds the approval decided and is told by whom), reaches a
waiting agent the same way, and lands in the audit chain with the channel and the person (``via``). What the
shared function does not do for it is done here, before it: a tap that arrives after the approval's timeout is
refused even when the monitor has not ticked yet, and a tap by anyone the runbook does not name is refused
and recorded as ``approval.refused`` (audited).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.approvals import APPROVED, DENIED, EXPIRED, PENDING, SCOPES, USED, Approvals
from tether.errors import TetherError
from tether.runbook.model import Person, Runbook
from tether.status_file import iso

KEY_FILE = "channels.key"
SIG_BYTES = 12  # 96 bits, 16 characters: a Telegram button's callback_data holds 64 bytes in all


@dataclass(frozen=True)
class Approver:
    """One person who may decide an agent's approvals, as the runbook names them now."""

    key: str  # owner:AGENT, backup:AGENT or approver:AGENT:N (stable across reloads while the list keeps order)
    role: str  # owner, backup or approver
    agent: str
    person: Person

    @property
    def label(self) -> str:
        """``Ana Ops (owner of deployer)``: how the audit and the replies name them."""
        return f"{self.person.name} ({self.role} of {self.agent})"


def approvers(rb: Runbook, agent: str) -> list[Approver]:
    """Everyone who may decide ``agent``'s approvals: its owner, its backup, its ``approvers``."""
    spec = rb.agents.get(agent)
    if spec is None:
        return []
    out = [
        Approver(f"owner:{agent}", "owner", agent, spec.owner),
        Approver(f"backup:{agent}", "backup", agent, spec.backup),
    ]
    out += [Approver(f"approver:{agent}:{i}", "approver", agent, p) for i, p in enumerate(spec.approvers)]
    return out


def by_key(rb: Runbook, key: str) -> Approver | None:
    agent = key.partition(":")[2].split(":", 1)[0]
    return next((a for a in approvers(rb, agent) if a.key == key), None)


class Signer:
    """HMAC-SHA256 under a key of this state directory (``channels.key``, 0600, made on first use): what a
    button or a link carries proves which approval, which verb and whom it was made for, and nobody without
    the key can make another. The key never leaves the host."""

    def __init__(self, state_root: Path) -> None:
        self.path = Path(state_root) / KEY_FILE
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            text = self.path.read_text().strip()
            if len(text) < 32:
                raise TetherError(
                    f"{self.path}: not a key; delete it and the daemon makes a new one (links and "
                    "buttons already sent stop working)"
                )
            self._key = text.encode()
        return self._key

    def sign(self, *parts: object) -> str:
        mac = hmac.new(self.key(), "\x1f".join(map(str, parts)).encode(), hashlib.sha256).digest()[:SIG_BYTES]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def check(self, sig: str, *parts: object) -> bool:
        return hmac.compare_digest(sig.encode(), self.sign(*parts).encode())


@dataclass(frozen=True)
class Outcome:
    """What came of a decision from a channel: ``ok`` when this call decided; ``text``, what to tell the
    person (decided, already decided by whom, too late, refused)."""

    ok: bool
    text: str
    row: dict[str, Any] | None = None


def summary(row: dict[str, Any]) -> str:
    """``#12 deployer: deploy.production``: an approval in a line."""
    return f"#{row['id']} {row['agent']}: {row['action']}"


def settled(row: dict[str, Any]) -> str:
    """What happened to an approval that is no longer pending, as a reply says it."""
    state = row["state"]
    if state in (APPROVED, USED):
        return f"Approved by {row['decided_by']}" + (f": {row['note']}" if row.get("note") else "")
    if state == DENIED:
        return f"Denied by {row['decided_by']}: {row['note']}"
    if state == EXPIRED:
        return f"Expired at {iso(row['decided'])} with nobody deciding, so it was denied"
    return str(state)


def too_late(row: dict[str, Any]) -> str:
    """The reply to a decision that came when the approval was no longer pending."""
    if row["state"] == EXPIRED:
        return f"Too late: {summary(row)} expired at {iso(row['decided'])}; nothing was decided now (it was denied)."
    return f"{summary(row)}: already decided. {settled(row)}."


class Decider:
    """The one way a channel decides, refuses or reports; used by every phone channel and by signed links."""

    def __init__(self, approvals: Approvals, runbook: Callable[[], Runbook], seal: Callable[[], None]) -> None:
        self.approvals = approvals
        self.store = approvals.store
        self.runbook = runbook
        self.seal = seal

    def decide(
        self, approval_id: int, approve: bool, who: Approver, channel: str, note: str | None = None, scope: str = "once"
    ) -> Outcome:
        """Decide approval ``approval_id`` as ``who`` from ``channel`` (an approval for ``scope``: once, task or
        1h), unless it is gone, another agent's, past its timeout or already decided: then nothing changes and
        the outcome says why."""
        row = self.store.approval(approval_id)
        if row is None:
            return Outcome(False, f"There is no approval #{approval_id} (any more): nothing was decided.")
        if row["agent"] != who.agent:
            return self.refuse(approval_id, channel, who.label, f"not an approver of {row['agent']}")
        now = time.time()
        if row["state"] == PENDING and row["expires"] is not None and row["expires"] <= now:
            self.approvals.tick(now)  # due, and the monitor has not got to it yet: expire it first
            row = self.store.approval(approval_id) or row
        if row["state"] != PENDING:
            return Outcome(False, too_late(row), row)
        verb = "approved" if approve else "denied"
        reason = (note or "").strip()[:4000] or (None if approve else f"{verb} from {channel}, no reason given")
        try:
            got = self.approvals.decide(
                approval_id,
                approve,
                f"{who.person.name} ({channel})",
                reason,
                scope if approve else "once",
                via={"channel": channel, "person": who.key, "name": who.person.name},
            )
        except TetherError as err:  # decided or expired in between: say what it is now
            row = self.store.approval(approval_id) or row
            text = too_late(row) if row["state"] != PENDING else str(err)
            return Outcome(False, text, row)
        finally:
            with contextlib.suppress(Exception):
                self.seal()
        return Outcome(
            True,
            f"{summary(got)}: {verb} by you ({who.person.name})"
            + (f" for {SCOPES[scope]}" if approve and scope != "once" else "")
            + (f": {reason}" if reason and not approve else "")
            + ".",
            got,
        )

    def refuse(self, approval_id: int | None, channel: str, who: str, why: str) -> Outcome:
        """Refuse a decision from someone the runbook does not name (or a button not made by this host), and
        record it (``approval.refused``, audited)."""
        row = self.store.approval(approval_id) if approval_id is not None else None
        self.store.emit(
            "approval.refused",
            row["agent"] if row else None,
            approval_id=approval_id,
            channel=channel,
            who=who[:200],
            why=why[:500],
        )
        with contextlib.suppress(Exception):
            self.seal()
        return Outcome(
            False,
            f"Refused: {why}. Only the people the runbook names for this agent may decide; this attempt was recorded.",
            row,
        )


# -- signed one-time links ----------------------------------------------------------------------------------
def link_token(signer: Signer, approval_id: int, who: Approver) -> str:
    """``ID.PERSON.SIG``: a link for one person and one approval. The signature covers the person's name as
    well as their place in the runbook, so a reordered list of approvers never hands a link to someone else."""
    key = base64.urlsafe_b64encode(who.key.encode()).decode().rstrip("=")
    return f"{approval_id}.{key}.{signer.sign('link', approval_id, who.key, who.person.name)}"


def link_url(signer: Signer, base: str, approval_id: int, who: Approver) -> str:
    return f"{base.rstrip('/')}/link/{link_token(signer, approval_id, who)}"


def read_link(signer: Signer, token: str, rb: Runbook) -> tuple[int, Approver] | None:
    """The approval and the person of a link this host signed for someone the runbook still names, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18 or len(token) > 300:
        return None
    try:
        key = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    approval_id, who = int(parts[0]), by_key(rb, key)
    if who is None or not signer.check(parts[2], "link", approval_id, key, who.person.name):
        return None
    return approval_id, who
