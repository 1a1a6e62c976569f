"""One channel abstraction over apprise: a target (an apprise URL, or a secret reference to one) → a
delivery that succeeds or raises ``DeliveryError`` saying whether trying again can help.

Any apprise service works: email (``mailto://``, ``mailtos://``), Slack, ntfy, Discord, webhooks
(``json://``), ... Resolved URLs and their secret parts are registered for redaction, so no event,
log line or message ever carries them; what is stored about a channel is ``describe(target)``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

from tether import redact
from tether.errors import TetherError
from tether.runbook.model import SECRET_SCHEMES
from tether.secrets import SecretError
from tether.secrets import resolve as resolve_secret

#: A URL part that looks like a token (long, letters and digits): registered as a secret.
_TOKENISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-.~+=]{16,}$")


class DeliveryError(TetherError):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def is_ref(target: str) -> bool:
    return target.startswith(SECRET_SCHEMES)


def describe(target: str) -> str:
    """How a channel is shown and stored: a secret reference as written; a literal URL as its scheme and
    host only (a literal URL may carry a token in its path, its query or its user part)."""
    if is_ref(target):
        return target
    parts = urlsplit(target)
    if parts.scheme and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}"
    return f"{parts.scheme}:…" if parts.scheme else "(not a URL)"


def secret_parts(url: str) -> list[str]:
    """The parts of an apprise URL that are credentials: its password, and token-like path segments,
    query values and host names (``tgram://BOT_TOKEN/CHAT``)."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return [url]
    found += [seg for seg in parts.path.split("/") if _TOKENISH.match(seg)]
    found += [v for _, v in parse_qsl(parts.query) if _TOKENISH.match(v)]
    host = parts.netloc.rsplit("@", 1)[-1].split(":")[0]
    if _TOKENISH.match(host) and "." not in host:
        found.append(host)
    return [f for f in found if f]


def resolve(target: str) -> str:
    """The apprise URL behind ``target``; registered (with its secret parts) for redaction."""
    if is_ref(target):
        try:
            url = resolve_secret(target).strip()
        except SecretError as err:
            raise DeliveryError(str(err)) from None  # a file or keyring entry may appear: try again later
        redact.register(url, *secret_parts(url))  # the whole URL was a secret
    else:
        url = target  # written in the runbook in clear: only its password/token parts are secret
        redact.register(*secret_parts(url))
    if url.startswith("mailto:") and not url.startswith("mailto://"):
        raise DeliveryError(
            f"{describe(target)}: an address, not an apprise URL; give an SMTP URL such as "
            "mailtos://USER:PASSWORD@smtp.example.com?to=ADDRESS (or a secret reference to one)", permanent=True
        )
    return url


def send(target: str, title: str, body: str) -> None:
    """Deliver one message through apprise to ``target``; raise ``DeliveryError`` if it was not accepted."""
    import apprise

    url = resolve(target)
    try:
        asset = apprise.AppriseAsset(storage_mode=apprise.PersistentStoreMode.MEMORY)
    except (AttributeError, TypeError):  # an apprise without persistent storage
        asset = apprise.AppriseAsset()
    client = apprise.Apprise(asset=asset)
    # apprise's log lines (which may name the URL) are captured, redacted and recorded; never printed
    logging.getLogger("apprise").propagate = False
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
        if not client.add(url):
            raise DeliveryError(f"{describe(target)}: not a URL apprise knows (see apprise's list of services)",
                                permanent=True)
        ok = client.notify(title=redact.redact(title), body=redact.redact(body),
                           body_format=apprise.NotifyFormat.TEXT)
        logged = captured.getvalue()
    if not ok:
        lines = [line.strip() for line in logged.splitlines() if line.strip()]
        why = "; ".join(lines[-2:]) if lines else "apprise could not deliver it"
        raise DeliveryError(redact.redact(f"{describe(target)}: {why}")[:500])
