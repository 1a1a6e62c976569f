"""The host side of tether: the boot service (systemd/launchd), the systemd notify protocol, ``tether doctor``.

- ``service``   render, install, remove and inspect the unit (``tether service ...``)
- ``sdnotify``  READY=1, STATUS=, STOPPING=1 and the watchdog, for a ``Type=notify`` daemon (stdlib only)
- ``doctor``    is this host fit to run agents unattended (``tether doctor``)

Modules import on use: ``from tether.host import sdnotify`` costs the daemon nothing else.
"""
