"""One typed catalogue of the event kinds tether records (``kinds.py``), and what is derived from it:
the audited kinds (the store's hash chain), the kinds the notifier reads, each kind's sentence on the
timeline, and the kinds the store projects (registered against it by ``tether.store.projections``)."""

from __future__ import annotations

from tether.events import kinds as _kinds  # noqa: F401  (declares every kind)
from tether.events.catalogue import KINDS, Kind, Projection, UnknownKind, declared, kind, project, sentence

__all__ = ["AUDITED", "KINDS", "WATCHED", "Kind", "Projection", "UnknownKind", "declared", "kind", "project",
           "sentence"]

#: Event kinds that also go into the hash-chained audit log (``tether audit verify``).
AUDITED: frozenset[str] = frozenset(k.name for k in KINDS.values() if k.audited)
#: The event kinds the notifier reads after its cursor.
WATCHED: tuple[str, ...] = tuple(k.name for k in KINDS.values() if k.notifies)
