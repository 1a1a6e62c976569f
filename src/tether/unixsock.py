"""A listening unix socket made one way: 0600 from birth (umask held while binding, so it is never briefly
open to others), optionally handed to another user, never inherited by children. Used by the daemon's API
socket and by the egress proxy's per-agent sockets. Stdlib only."""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: sun_path holds 108 bytes on Linux, 104 on macOS: longer paths get no socket (callers fall back).
MAX_PATH = 104


def bind_unix(path: Path, uid: int | None = None, gid: int | None = None, backlog: int = 128) -> socket.socket | None:
    """A listening socket at ``path`` (an old one there is replaced), owned by ``uid``/``gid`` when given
    and not this process's; None when the path is too long or cannot be bound."""
    if len(os.fsencode(path)) >= MAX_PATH:
        return None
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
        if uid is not None and uid != os.geteuid():
            os.chown(path, uid, gid if gid is not None else -1)
    except OSError:
        sock.close()
        return None
    finally:
        os.umask(old)
    sock.listen(backlog)
    sock.set_inheritable(False)
    return sock
