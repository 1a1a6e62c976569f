"""``tether demo``: the README's first command."""

from __future__ import annotations

import contextlib
import signal
import socket
import tempfile
from pathlib import Path

import click

from tether.demo.host import DemoDaemon, wait, wall_for_demo, write_host
from tether.demo.receiver import Receiver
from tether.errors import UsageError
from tether.runbook import load


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Where to put the demo host (default: a new temporary directory).",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (for scripts).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="The daemon's port on 127.0.0.1: dashboard and API (default: any free one).",
)
def demo(directory: str | None, duration: float | None, port: int) -> None:
    """Run a demo host: four scripted agents under a real daemon, every feature live, no setup.

    A repo maintainer opens a cleanup PR and waits for approval to merge; a flaky worker crashes and
    is restarted; one agent goes stuck; one tries to delete data and is blocked. Ctrl-C stops it.
    """
    if port:
        _port_free(port)
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="tether-demo-"))
    click.echo(f"[1/3] writing the demo host in {root} (runbook, git repo, scripted agents)")
    no_wall = wall_for_demo()
    if no_wall is not None:
        click.echo(f"      the agents run without the wall (sandbox: off): {no_wall}")
    root.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(root / "notifications.jsonl")  # the owner's and backup's "phone"
    runbook = write_host(root, sandbox=no_wall is None, port=port, notify_port=receiver.port)
    loaded = load(runbook)
    click.echo(f"[2/3] runbook valid: {len(loaded.runbook.agents)} agents: {', '.join(loaded.runbook.agents)}")
    click.echo("[3/3] starting the daemon")
    _signals_stop()
    daemon = DemoDaemon(runbook)
    try:
        _run(daemon, runbook, loaded.state.root, duration, receiver)
    except (KeyboardInterrupt, Stop) as why:
        _say(f"\nstopping the demo ({why or 'Ctrl-C'})")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # stopping is bounded: let it finish
            signal.signal(sig, signal.SIG_IGN)
        forced = daemon.stop()
        receiver.close()
    if forced:
        _say(f"demo stopped; {', '.join(forced)} outlived the daemon and were killed; its files stay in {root}")
    else:
        _say(f"demo stopped (the daemon and its agents); its files stay in {root}")


class Stop(Exception):
    """SIGTERM or SIGHUP (a closed terminal) asked the demo to stop."""


def _signals_stop() -> None:
    def stop(signum: int, _frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


def _say(text: str) -> None:
    """Print, unless the terminal is gone (SIGHUP): the demo still stops."""
    with contextlib.suppress(OSError):
        click.echo(text)


def _port_free(port: int) -> None:
    """Refuse a --port something already listens on, before anything is written or started."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            raise UsageError(
                f"--port {port}: 127.0.0.1:{port} is taken ({err.strerror}); pick another port, "
                "or leave --port out for any free one"
            ) from None


def _run(daemon: DemoDaemon, runbook: Path, state: Path, duration: float | None, receiver: Receiver) -> None:
    info = daemon.ready()
    import shutil
    import sys

    local = Path(sys.executable).parent / "tether"  # ./scripts/demo runs from .venv, which may not be on PATH
    tether = "tether" if not local.exists() or shutil.which("tether") == str(local) else str(local)
    token = (state / "admin.token").read_text().strip()
    _say(f"""
tether is supervising the demo host.
  dashboard  {info["url"]}/   (sign in with the admin token: {token})
  API docs   {info["url"]}/v1/docs
  notices    the owner's and backup's notifications arrive at 127.0.0.1:{receiver.port}, kept in
             {receiver.log}

In another shell, point tether at the demo and try:
  export TETHER_RUNBOOK={runbook}
  {tether} status                 # every agent: running, stuck, blocked, waiting for approval
  {tether} approvals              # repo-maintainer waits to merge its PR
  {tether} approve <ID>           # ... and merges once you approve
  {tether} explain -- rm -rf data # why data-deleter was blocked
  {tether} kill flaky-worker      # the kill switch; `{tether} resume flaky-worker` lifts it
  {tether} events -F              # everything, as it happens
  {tether} logs repo-maintainer
  {tether} audit verify

{"Stopping in " + format(duration, "g") + "s." if duration else "Ctrl-C stops the demo (the daemon and its agents)."}
""")
    wait(duration)
