"""Notifications: who hears of incidents, approvals, kills and restarts, through apprise.

``Notifier`` decides and delivers (``notify.notifier``); ``channels`` wraps apprise; ``ack`` acknowledges
an incident. Imported lazily: the CLI's ``tether ack`` needs none of apprise or the runbook models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.notify.channels import DeliveryError
    from tether.notify.incidents import ack
    from tether.notify.notifier import Notifier

__all__ = ["DeliveryError", "Notifier", "ack"]

_WHERE = {"Notifier": "notifier", "DeliveryError": "channels", "ack": "incidents"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"tether.notify.{_WHERE[name]}"), name)
    raise AttributeError(name)
