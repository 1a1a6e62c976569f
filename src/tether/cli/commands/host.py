"""``tether service install|remove|status`` and ``tether doctor``: thin commands over ``tether.host``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tether.checks import Check
from tether.cli.context import Context
from tether.errors import RunbookError, UsageError
from tether.host import service as svc
from tether.host.service import Manager
from tether.paths import default_state_dir

_user = click.option("--user", is_flag=True,
                     help="A systemd user unit (~/.config/systemd/user) instead of a system unit.")
_unit_dir = click.option("--unit-dir", type=click.Path(file_okay=False), metavar="DIR",
                         help="The folder for the unit file instead of the usual one (packaging, tests).")
_manager = click.option("--manager", type=click.Choice(["systemd", "launchd"]),
                        help="The service manager (default: systemd on Linux, launchd on macOS).")


def _dir(value: str | None) -> Path | None:
    return Path(value).expanduser().absolute() if value else None


def _home(obj: Context) -> Path | None:
    return Path(obj.home_arg).expanduser().absolute() if obj.home_arg else None


@click.group()
def service() -> None:
    """Install, remove or inspect the service that starts the daemon at boot (systemd or launchd)."""


@service.command("install")
@_user
@click.option("--runbook", type=click.Path(dir_okay=False), metavar="PATH",
              help="The runbook the service runs (default: -f RUNBOOK, else ./tether.yaml).")
@click.option("--dry-run", is_flag=True, help="Print the unit file and where it would go; write nothing.")
@_unit_dir
@_manager
@click.pass_obj
def install(obj: Context, user: bool, runbook: str | None, dry_run: bool, unit_dir: str | None,
            manager: Manager | None) -> None:
    """Write the boot unit (systemd) or plist (launchd) and print how to enable it.

    The service runs `tether -f RUNBOOK up --foreground` with this Python, restarts it when it exits or stops
    answering the watchdog, and leaves the agents running across a daemon restart (they are re-adopted).
    """
    from tether.runbook import load  # its models: +110 ms to tether service remove|status

    loaded = load(runbook) if runbook else obj.loaded  # an invalid runbook is refused here, not at boot
    home = _home(obj)
    spec = svc.ServiceSpec(runbook=loaded.path, state_dir=home or loaded.state.root, home=home,
                           path_env=os.environ.get("PATH"), user=user)
    result = svc.install(spec, manager, _dir(unit_dir), dry_run)
    if dry_run:
        click.echo(f"# {result.path} (dry run: nothing written)")
        click.echo(result.content.decode(), nl=False)
    elif result.written:
        click.echo(f"{'updated' if result.replaced else 'wrote'} {result.path}")
    else:
        click.echo(f"{result.path} is already up to date")
    click.echo("to start the daemon now and at every boot, run:")
    for command in result.commands:
        click.echo(f"  {command}")


@service.command("remove")
@_user
@_unit_dir
@_manager
@click.pass_obj
def remove(obj: Context, user: bool, unit_dir: str | None, manager: Manager | None) -> None:
    """Delete the unit file (refused while it is enabled: the message says how to disable it)."""
    result = svc.remove(manager, user, _dir(unit_dir))
    if not result.existed:
        click.echo(f"nothing to remove: {result.path} does not exist")
        return
    click.echo(f"removed {result.path}")
    if result.commands:
        click.echo("then run:")
        for command in result.commands:
            click.echo(f"  {command}")


@service.command("status")
@_user
@_unit_dir
@_manager
@click.option("--json", "json_", is_flag=True, help="Print JSON.")
@click.pass_obj
def service_status(obj: Context, user: bool, unit_dir: str | None, manager: Manager | None, json_: bool) -> None:
    """Is the unit installed, and does the service manager start it at boot?"""
    import json

    st = svc.status(manager, user, _dir(unit_dir))
    if json_:
        sys.stdout.write(json.dumps(st.as_dict(), indent=2) + "\n")
        return
    kind = f"{st.manager}, {'user' if st.user else 'system'}" if st.manager == "systemd" else st.manager
    click.echo(f"unit:      {st.path} ({kind})")
    click.echo(f"installed: {'yes' if st.installed else 'no'}")
    if st.installed:
        click.echo(f"enabled:   {st.enabled}{f' ({st.detail})' if st.detail else ''}")
    else:
        click.echo(f"install:   tether service install{' --user' if st.user else ''}")


@click.command()
@click.option("--json", "json_", is_flag=True, help="Print JSON: {ok, checks: [{name, status, detail, fix}]}.")
@click.option("--unit-dir", type=click.Path(file_okay=False), metavar="DIR", hidden=True,
              help="Look for the unit file here instead of the usual folders (tests).")
@click.pass_obj
def doctor(obj: Context, json_: bool, unit_dir: str | None) -> None:
    """Check this host for unattended agents: service, sleep, state dir, disk, clock, storage, agent users.

    Prints one line per check (ok, warn, fail or unknown) with what to do; exits 1 when any check fails.
    """
    from tether.host import doctor as doc  # +17 ms to tether service

    loaded = None
    try:
        loaded = obj.loaded
        agents = len(loaded.runbook.agents)
        runbook_check = Check("runbook", "ok", f"{loaded.path} is valid ({agents} agent(s))")
    except RunbookError as err:
        if obj.runbook_arg is None and not obj.runbook_path.exists():
            runbook_check = Check("runbook", "warn", f"no {obj.runbook_path} here: checked the host only",
                                      "tether -f RUNBOOK doctor, or tether init")
        else:
            more = f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
            runbook_check = Check("runbook", "fail", f"{err.problems[0] if err.problems else err}{more}",
                                      "tether check")
    home = _home(obj)
    state_root = home or (loaded.state.root if loaded is not None else default_state_dir())
    services: list[svc.ServiceStatus] = []
    try:
        if unit_dir is not None:
            services = [svc.status(None, False, _dir(unit_dir))]
        elif svc.default_manager() == "launchd":
            services = [svc.status("launchd")]
        else:
            services = [svc.status("systemd", False), svc.status("systemd", True)]
    except UsageError:
        pass  # no service manager we support: check_service says so
    checks = doc.run(loaded, state_root, services, runbook_check)
    if json_:
        sys.stdout.write(doc.as_json(checks))
    else:
        for check in checks:
            click.echo(check.line())
    if doc.failed(checks):
        raise SystemExit(1)
