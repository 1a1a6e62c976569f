"""The agent launcher: the keeper runs this (``python -I -S launch.py``) as the agent's first program.

It turns the forked keeper subshell into the agent, in place (same PID, so ``agent.pid`` stays right):

1. joins the run's cgroup(s) by writing its PID into each ``cgroup.procs`` *before* the agent can fork;
2. ``setpgid(0, 0)``: the agent leads its own process group (dash without a terminal has no job control,
   so ``set -m`` cannot do this), and signalling that group never reaches the keeper. ``spawn`` waits
   for this, so when it returns the agent is in its group and its cgroup;
3. drops to the run_as user (``initgroups``, ``setgid``, ``setuid``; sets HOME, USER, LOGNAME) — the
   keeper stays root so it can write the run folder and the cgroup; the agent never is;
4. resets the signal dispositions the shell and Python changed (SIGINT/SIGQUIT ignored for background
   jobs, SIGPIPE ignored by Python, the keeper's ignored HUP/TERM) and unblocks all signals;
5. execs the agent (127 when not found, 126 when not executable, like a shell).

Standard library only and no ``tether`` import: it runs isolated and exists only until the exec.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings  # noqa: F401 - os.execvp imports it lazily: after the drop to run_as it may be unreadable

RESET = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGPIPE", "SIGXFSZ", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCHLD")


def _fail(message: str, code: int) -> int:
    try:
        os.write(2, f"tether: {message}\n".encode(errors="replace"))
    except OSError:
        pass
    return code


def _drop_to(user: str) -> str | None:
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return f"no such user {user!r}"
    try:
        os.initgroups(pw.pw_name, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except OSError as exc:
        return f"cannot run as {user!r}: {exc.strerror}"
    if os.getuid() != pw.pw_uid or os.geteuid() != pw.pw_uid:
        return f"cannot run as {user!r}: uid did not change"
    os.environ["HOME"] = pw.pw_dir
    os.environ["USER"] = pw.pw_name
    os.environ["LOGNAME"] = pw.pw_name
    return None


def main(args: list[str]) -> int:
    cgroups: list[str] = []
    user: str | None = None
    while args and args[0] != "--":
        opt = args.pop(0)
        if opt == "--cgroup" and args:
            cgroups.append(args.pop(0))
        elif opt == "--user" and args:
            user = args.pop(0)
        else:
            return _fail(f"launcher: bad option {opt!r}", 125)
    argv = args[1:]
    if not argv:
        return _fail("launcher: no command", 125)

    for d in cgroups:
        try:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as exc:
            _fail(f"could not join cgroup {d}: {exc.strerror}", 0)
    try:  # last: spawn() takes pgid == pid as "launched"
        os.setpgid(0, 0)
    except OSError as exc:
        _fail(f"could not start a process group: {exc.strerror}", 0)
    if user is not None:
        problem = _drop_to(user)
        if problem is not None:
            return _fail(problem, 126)
    for name in RESET:
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        return _fail(f"cannot run {argv[0]!r}: {exc.strerror}", code)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
