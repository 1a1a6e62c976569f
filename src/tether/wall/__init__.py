"""The wall: every agent runs as its own user inside a bubblewrap sandbox built from its runbook entry.

- ``profile``  scope -> the paths it may write, may only read, cannot see (pure)
- ``bwrap``    profile -> the command prefix (``setpriv`` to the agent's user, then ``bwrap``)
- ``check``    can the wall be built on this host (bwrap, setpriv, user namespaces, AppArmor) and the fix
- ``macos``    on macOS instead of bwrap: the profile as a ``sandbox-exec`` (SBPL) profile
- ``users``    the per-host agent user, its private folders, its grants (ACLs)
- ``plan``     ``prepare(loaded, agent)`` -> ``Wall`` (prefix + environment), or ``WallError``
- ``bridge``   the wall's own network: socat bridges to the egress proxy and the daemon's API
- ``proxy``    the egress proxy (network; separate)
"""

from __future__ import annotations

from tether.wall.plan import Wall, WallError, enabled, host_off, prepare

__all__ = ["Wall", "WallError", "enabled", "host_off", "prepare"]
