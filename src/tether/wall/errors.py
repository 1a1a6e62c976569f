"""Why the wall cannot be built on this host (``check.py`` on Linux, ``macos.py`` on macOS raise it)."""

from __future__ import annotations


class WallUnavailable(Exception):
    """The wall cannot be built here; the message is one line with the fix."""
