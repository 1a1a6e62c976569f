"""Tools that write, move or delete files, one module per family: ``writes`` (rm, cp, mv, ln, install, tee,
touch, mkdir, chmod...), ``sed``, ``archives``, ``patches`` (patch, apply_patch), ``find`` (find, fd)."""

from __future__ import annotations

from typing import Final

from tether.classify.files import archives, find, patches, sed, writes
from tether.classify.scan import Handler

HANDLERS: Final[dict[str, Handler]] = {}
for _family in (writes, sed, archives, patches, find):
    HANDLERS.update(_family.HANDLERS)
