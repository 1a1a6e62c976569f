"""The fleet (issue 10): several hosts' daemons sharing one PostgreSQL store. Strictly opt-in: a daemon
on a SQLite store never touches anything here.

- ``nodes``: each daemon registers its node and beats; a node that stops beating opens an incident.
- ``bus``: LISTEN/NOTIFY carries approvals, kills and reloads to the right node at once.
- ``pending``: a kill for an agent on another node is recorded, pending, and applied by that node's daemon
  the moment it next reads the store (at boot, on every monitor wake, on NOTIFY).
"""
