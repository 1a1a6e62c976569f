"""The catalogue's mechanism: a ``Kind`` per event kind, declared once (``tether.events.kinds``), and the
lookups the store, the notifier and the dashboard derive their lists from. Stdlib only.

A kind is its name, the type of its data (a ``TypedDict``), whether it goes into the hash-chained audit
log, whether the notifier reads it, the sentence the timeline shows for it, and the store's projection
(registered by ``tether.store.projections`` with ``project``: the store stays the owner of its SQL).
Recording a kind that is not declared is not refused at run time (an agent may report one); a test reads
every place the code records one and fails on any kind missing here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: The sentence for one event: ``g(key)`` is a data field as text ("" when missing), ``d`` the data.
Sentence = Callable[[Callable[[str], str], dict[str, Any]], str]
#: The store's projection: ``(transaction, event) -> the agent whose row changed, or None``.
Projection = Callable[[Any, Any], "str | None"]
P = TypeVar("P", bound=Projection)

_NAME = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)*")


@dataclass(eq=False)
class Kind:
    name: str
    payload: type
    sentence: Sentence | None = None
    audited: bool = False
    notifies: bool = False
    projection: Projection | None = field(default=None, repr=False)


class UnknownKind(KeyError):
    def __str__(self) -> str:
        return f"event kind {self.args[0]!r} is not declared: add it to tether/events/kinds.py"


#: Every declared kind by name, in the order declared.
KINDS: dict[str, Kind] = {}


def declare(name: str, payload: type, sentence: Sentence | None = None, *, audited: bool = False,
            notifies: bool = False) -> Kind:
    """Declare one kind (once: a second declaration is an error at import)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"event kind {name!r}: lower-case words joined by dots")
    if name in KINDS:
        raise ValueError(f"event kind {name!r} declared twice")
    KINDS[name] = k = Kind(name, payload, sentence, audited, notifies)
    return k


def kind(name: str) -> Kind:
    """The declared kind ``name``; ``UnknownKind`` when there is none."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(name) from None


def declared(name: str) -> bool:
    return name in KINDS


def project(*names: str) -> Callable[[P], P]:
    """Register ``fn`` as the store's projection of each kind in ``names`` (each declared, each given one
    projection only: both checked at import)."""

    def register(fn: P) -> P:
        for name in names:
            k = kind(name)
            if k.projection is not None and k.projection is not fn:
                raise ValueError(f"event kind {name!r} has two projections")
            k.projection = fn
        return fn

    return register


def sentence(name: str, data: dict[str, Any]) -> str | None:
    """What an event of kind ``name`` with ``data`` was, in words; None when the kind has no sentence or
    its data is not of the shape the sentence reads (the caller shows the data instead)."""
    k = KINDS.get(name)
    if k is None or k.sentence is None:
        return None

    def g(key: str) -> str:
        v = data.get(key)
        return "" if v is None else str(v)

    try:
        return k.sentence(g, data)
    except (TypeError, ValueError, AttributeError):
        return None
