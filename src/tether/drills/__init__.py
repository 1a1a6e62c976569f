"""Incident drills (``tether drill``): the seed's five failures and the wall's, made to happen for real on a
host, each checked against what the runbook promises, cleaned up after, and recorded as a ``drill.result``
event.

- ``kill``            SIGKILL the agent's process: restarted per its policy, or reported stopped and its
                      owner told (``degraded`` when the notification was not delivered)
- ``break-test``      break a test on a drill branch (a temporary worktree): the ``pr.open`` gate denies the
                      PR and says why
- ``network``         the agent's endpoints probed from a network namespace with no route: the failure is
                      recorded and an incident raised (``degraded`` where no namespace can be made, or
                      the owner's notification was not delivered)
- ``protected-file``  ask to write a protected file: an approval is asked for
- ``sandbox``         inside the agent's wall, an outside write and an outside connection: both fail and both
                      are recorded (``wall.violation``); fails when the wall is off (``drills/wall.py``; not
                      ``tether drill --sandbox``, which drills copies: ``drills/sandbox.py``)
- ``reboot``          SIGKILL the daemon, every keeper and agent, start the daemon as the service would:
                      logs, repos, tasks and pending approvals survive and the agents run again

``runner.run`` runs them, ``report`` renders the result, ``status.drill_summary`` tells ``tether status``
when each agent was last drilled. Each drill lives in its own module with one ``run`` function.
"""

from __future__ import annotations

#: The drills, in the order they run (the reboot last: it takes the whole host down).
DRILLS: tuple[str, ...] = ("kill", "break-test", "network", "protected-file", "sandbox", "reboot")

#: What a drill can come to. ``degraded``: the check could only be approximated, or the host is safe but
#: not in the way the runbook says; only ``fail`` makes ``tether drill`` exit 1.
STATUSES: tuple[str, ...] = ("pass", "degraded", "fail", "skipped")

#: The event each drill of each agent leaves.
RESULT_EVENT = "drill.result"

__all__ = ["DRILLS", "RESULT_EVENT", "STATUSES"]
