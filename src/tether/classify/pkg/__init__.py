"""Package managers, language toolchains, build systems and task runners, one module per family: ``js``,
``python``, ``languages`` (cargo, go, gem, composer, dotnet, swift, mix, rake), ``system`` (the system's package
managers, version managers), ``build`` (make, task runners, build tools, hook managers, migration tools). Most
tools are a ``verb -> class`` table (``verbs``)."""

from __future__ import annotations

from typing import Final

from tether.classify.pkg import build, js, languages, python, system
from tether.classify.scan import Handler

HANDLERS: Final[dict[str, Handler]] = {}
for _family in (python, js, languages, system, build):
    HANDLERS.update(_family.HANDLERS)
