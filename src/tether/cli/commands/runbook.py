"""``tether init`` and ``tether check``."""

from __future__ import annotations

from pathlib import Path

import click

from tether.cli.context import Context
from tether.errors import RunbookError, UsageError
from tether.paths import RUNBOOK_NAME
from tether.runbook import load
from tether.runbook.starter import KINDS, runbook_text
from tether.runbook.summary import boundary, summarise


@click.command()
@click.argument("path", default=RUNBOOK_NAME, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--user",
    "user",
    is_flag=False,
    flag_value="tether-agent",
    default=None,
    metavar="[NAME]",
    help="Create the unprivileged user agents run as inside the wall (default tether-agent; needs root).",
)
@click.option(
    "--agent",
    "kind",
    type=click.Choice(KINDS),
    default=None,
    help="Write a runbook with one commented agent of this kind (sdk: a Python agent using tether.Agent).",
)
def init(path: str, force: bool, user: str | None, kind: str | None) -> None:
    """Write a commented example runbook to PATH (default ./tether.yaml); an existing blank file is replaced.
    With --agent, its one agent is of that kind: claude-code, codex, sdk or command.
    With --user, create the agents' user (and write the runbook only if PATH does not exist yet)."""
    target = Path(path)
    if user is not None:
        from tether.wall.users import ensure_user  # the wall: +40 ms to tether check

        got, created = ensure_user(user)
        click.echo(
            f"{'created' if created else 'found'} user {got.name} (uid {got.uid}): agents without run_as "
            "run as it, inside the wall"
        )
        if target.exists():
            return
    blank = target.is_file() and target.stat().st_size < 4096 and not target.read_bytes().strip()
    if target.exists() and not force and not blank:
        raise UsageError(f"{path}: already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(runbook_text(kind), encoding="utf-8")
    click.echo(f"wrote {path}; validate it with `tether check {path}`")
    if kind is not None:
        click.echo(_next_steps(path, user is not None))


_WORK = {"claude-code": "the repository it works on", "codex": "the repository it works on",
         "sdk": "agent.py (the runbook's comments show one)", "command": "run.sh (or change its command:)"}


def _next_steps(path: str, made_user: bool) -> str:
    """What stands between the runbook just written for one agent and its first governed run."""
    import os

    loaded = load(path)
    ((name, spec),) = loaded.runbook.agents.items()
    cwd = loaded.agent_cwd(name)
    where = os.path.relpath(cwd) if cwd.is_relative_to(Path.cwd()) else str(cwd)
    steps = [f"put {_WORK['sdk' if spec.kind == 'python' else spec.kind]} in {where}/",
             f"edit {name}'s scope in {path}: what it may touch, the hosts it may reach"]
    keys = sorted({ref[4:] for ref in spec.secrets.values() if ref.startswith("env:")})
    if keys:
        exports = " ".join(f"{key}=..." for key in keys)
        steps.append(f"export {exports} before `tether up`: the daemon hands it over")
    if os.geteuid() == 0 and not made_user:
        from tether.wall.users import DEFAULT_USER, UserError, lookup  # as in init

        try:
            lookup(DEFAULT_USER)
        except UserError:
            steps.append(f"`tether init --user`: as root, agents run as the {DEFAULT_USER} user")
    file = "" if path == RUNBOOK_NAME else f" -f {path}"
    steps.append(f"`tether{file} check`, then `tether{file} up` (docs/GUIDE.md)")
    return "next:\n" + "\n".join(f"  {step}" for step in steps)


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.pass_obj
def check(obj: Context, path: str | None) -> None:
    """Validate a runbook (default: -f, $TETHER_RUNBOOK or ./tether.yaml) and summarise it.

    Every problem is reported as one line FILE:LINE: FIELD: MESSAGE; the exit status is 2 when
    there are any. An agent whose run_as is the daemon's own user is refused unless it says
    same_user: true; an agent with no run_as (it runs as the daemon's user) is a warning.
    """
    label = str(path or obj.runbook_path)
    loaded = load(label)
    errors, warnings = boundary(loaded, label)
    if errors:
        raise RunbookError(errors)
    click.echo(summarise(loaded))
    for warning in (*loaded.warnings, *warnings):
        click.echo(f"warning: {warning}", err=True)
