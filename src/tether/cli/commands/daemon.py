"""``tether up``, ``down``, ``reload``, ``start|stop|restart AGENT``, ``logs``."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from tether.cli.context import Context
from tether.daemon_state import DOWN, STOPPED, info, probe
from tether.durations import parse_duration
from tether.errors import DaemonUnavailable, TetherError, UsageError
from tether.secrets import resolve
from tether.status_file import iso
from tether.web.bind import check_bind

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook


@click.command()
@click.option("--foreground", is_flag=True, help="Stay in the foreground (for systemd, launchd and tests).")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Listen on a non-loopback address without TLS (anyone on that network can reach the login).",
)
@click.pass_obj
def up(obj: Context, foreground: bool, allow_remote: bool) -> None:
    """Start the daemon for the runbook (one per state directory)."""
    loaded = obj.loaded
    _not_shared(obj, loaded)
    from tether.daemon.launch import AlreadyRunning, spawn  # +2 ms to tether down, reload

    if foreground:
        from tether.daemon.server import serve  # the daemon (API, uvicorn): +400 ms to a background tether up

        serve(loaded, allow_remote=allow_remote)
        return
    check_bind(loaded.runbook.host.listen, tls=loaded.runbook.host.tls, allow_remote=allow_remote)
    running = info(loaded.state.root)
    if running is not None and _alive(running.get("pid")):
        raise AlreadyRunning(f"a daemon already runs for {loaded.state.root} (pid {running['pid']}, {running['url']})")
    loaded.state.root.mkdir(parents=True, exist_ok=True)
    log = open(loaded.state.root / "daemon.log", "ab")  # noqa: SIM115 - handed to the child
    home = loaded.state.root if obj.home_arg else None  # the daemon keeps the same state dir
    proc = spawn(loaded.path, log, *(["--allow-remote"] if allow_remote else []), home=home)
    deadline = time.time() + 20
    while time.time() < deadline:
        running = info(loaded.state.root)
        if running is not None and running.get("pid") == proc.pid:
            click.echo(f"tether daemon running (pid {proc.pid}) at {running['url']}; logs in {log.name}")
            click.echo(
                "dashboard: sign in with an approver or admin token (`tether token create --role approver`); "
                "from another machine: docs/GUIDE.md"
            )
            return
        if proc.poll() is not None:
            tail = (loaded.state.root / "daemon.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise TetherError(f"the daemon exited at start: {tail[0] if tail else 'see ' + log.name}")
        time.sleep(0.05)
    raise TetherError(f"the daemon did not come up within 20s; see {log.name}")


def _not_shared(obj: Context, loaded: LoadedRunbook) -> None:
    """Two runbooks never share a state directory neither of them named (the default, or $TETHER_HOME)
    silently: the runbook copy there says whose it is. ``--home`` shares it on purpose."""
    if obj.home_arg or loaded.runbook.host.state_dir:
        return
    source = loaded.state.runbook_source()
    if source is None or os.path.realpath(source) == os.path.realpath(loaded.path) or not source.exists():
        return
    raise UsageError(
        f"{loaded.state.root} is already the state directory of {source}; give {loaded.path} its own "
        f"(host.state_dir), or pass --home {loaded.state.root} to share it"
    )


def _alive(pid: object) -> bool:
    """The process runs (a zombie waiting for its parent to reap it has stopped running)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    from tether.process.platform import is_zombie  # +13 ms to tether reload

    return not is_zombie(pid)


@click.command()
@click.pass_obj
def down(obj: Context) -> None:
    """Stop the daemon cleanly (its agents are stopped too)."""
    from tether.cli.client import call  # urllib: +9 ms to tether logs

    running = probe(obj.state.root)
    if running["state"] == DOWN:
        gone = (
            f" (pid {running['pid']} is gone; its agents run on unsupervised: `tether kill --all` stops them)"
            if running["pid"]
            else ""
        )
        click.echo(f"no daemon is running for {obj.state.root}{gone}")
        return
    if running["state"] == STOPPED:
        raise DaemonUnavailable(
            f"the daemon (pid {running['pid']}) is stopped (SIGSTOP) and cannot answer; `kill -CONT {running['pid']}` "
            "then `tether down`, or `tether kill --all` stops its agents now"
        )
    call(obj.state, "POST", "/v1/shutdown", timeout=5)
    deadline = time.time() + 60
    while _alive(running["pid"]) and time.time() < deadline:
        time.sleep(0.05)
    if _alive(running["pid"]):
        raise TetherError(f"the daemon (pid {running['pid']}) is still running 60s after it was asked to stop")
    click.echo("tether daemon stopped")


@click.command()
@click.option("--node", metavar="NAME", help="Ask node NAME's daemon to re-read its own runbook (fleet).")
@click.option("--all-nodes", is_flag=True, help="Ask every node's daemon to re-read its runbook (fleet).")
@click.pass_obj
def reload(obj: Context, node: str | None, all_nodes: bool) -> None:
    """Re-read the runbook; an invalid one is rejected and the old one stays.

    On a fleet (a PostgreSQL store shared by several hosts), --node NAME or --all-nodes asks those nodes'
    daemons over the store (LISTEN/NOTIFY), each for its own runbook, and waits for their answers.
    """
    from tether.cli.client import call  # as in down
    from tether.runbook import load  # its models: +110 ms to tether down

    if node is not None or all_nodes:
        from tether.fleet.reload import ask, message  # +4 ms to tether down, logs

        if node is not None and all_nodes:
            raise click.UsageError("pass --node NAME or --all-nodes, not both")
        if obj.store_url.startswith("sqlite"):
            raise TetherError("--node and --all-nodes need a fleet: a PostgreSQL store (host.store) shared by nodes")
        failed = False
        for got in ask(obj.store(), node):
            click.echo(message(got))
            failed = failed or got["status"] == "failed"
        if failed:
            raise SystemExit(1)
        return
    load(obj.runbook_path)  # report errors here, with their lines, before asking the daemon
    got = call(obj.state, "POST", "/v1/reload")
    click.echo(f"reloaded; restarted: {', '.join(got['restarted']) or 'none'}")


def _verb(name: str, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @click.argument("agent")
    @click.pass_obj
    def command(obj: Context, agent: str) -> None:
        from tether.cli.client import call  # as in down
        from tether.cli.commands.control import elsewhere  # the kill switch: +20 ms to tether reload

        if elsewhere(obj, agent, name):  # another node's agent: asked of that node's daemon
            return
        call(obj.state, "POST", f"/v1/agents/{agent}/{name}")
        click.echo(f"{agent}: {name} done")

    return command


start = _verb("start", "Start AGENT (and keep it running per its restart policy).")
stop = _verb("stop", "Stop AGENT gracefully (its kill signal, then SIGKILL after the grace).")
restart = _verb("restart", "Restart AGENT now.")


@click.command()
@click.argument("agent")
@click.option("-F", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("-n", "--lines", type=int, default=None, help="How many lines to show first (50; all with --since).")
@click.option("--since", metavar="WHEN", help="Only lines written since WHEN: a time ago (10m, 2h, 1d) or an ISO time.")
@click.option("--stderr", "stream", flag_value="stderr", help="The agent's stderr instead of stdout.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, hidden=True)
@click.option("--raw", is_flag=True, help="The lines only: no times, no marks between runs.")
@click.pass_obj
def logs(obj: Context, agent: str, follow: bool, lines: int | None, since: str | None, stream: str, raw: bool) -> None:
    """Print AGENT's log (read from disk: works with no daemon), each line with the time it was written
    by (UTC; within a second while the daemon runs), and a mark where each run begins.

    Known token formats, and the agent's secrets where this user can resolve them, are redacted.
    """
    from tether import process, redact  # +13 ms to tether down, with logindex
    from tether.process import logindex  # as tether.process

    log_dir = obj.state.log_dir(agent)
    if not log_dir.exists():
        raise TetherError(f"no logs for {agent!r} in {log_dir}; has it run?")
    _register_secrets(obj, agent)
    after = None if since is None else _since(since)
    tail = lines if lines is not None else (None if after is not None else 50)

    def show(line: logindex.Line) -> None:
        if line.run is not None:
            if not raw:
                click.echo(f"── run {line.run} started {iso(line.time)} ──")
        else:
            text = redact.redact(line.text)
            click.echo(text if raw else f"{iso(line.time)}  {text}")

    shown = logindex.timed(log_dir, stream, tail, after)
    for line in shown:
        show(line)
    if follow:
        runs = {m.run for m in logindex.read_marks(log_dir, stream) if m.run}
        index, size = logindex.index_path(log_dir, stream), -1
        for text in process.follow(log_dir, stream, stop=lambda: False):
            now = time.time()  # read within 0.1 s of being written
            if size != (size := index.stat().st_size if index.exists() else 0):
                for mark in logindex.read_marks(log_dir, stream):  # a run that began meanwhile: its mark first
                    if mark.run and mark.run not in runs:
                        runs.add(mark.run)
                        show(logindex.Line(mark.time, "", mark.run))
            show(logindex.Line(now, text))


def _since(value: str) -> float:
    """``--since``: a duration ago, or an ISO time (UTC unless it names its offset)."""
    try:
        return time.time() - parse_duration(value)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {value!r}: expected a time ago like 10m, 2h or 1d, or an ISO time like 2026-12-06T11:00:00"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _register_secrets(obj: Context, agent: str) -> None:
    from tether import redact  # +2 ms to tether down

    try:
        spec = obj.loaded.runbook.agents.get(agent)
    except TetherError:
        return
    if spec is None:
        return
    for ref in spec.secrets.values():
        try:
            redact.register(resolve(ref))
        except Exception:  # not resolvable here (another user's keyring, an unset env:): format redaction only
            continue
