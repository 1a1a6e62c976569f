"""``tether integrate claude-code|codex|openclaw|git``: install (or ``--remove``) tether's hooks. Thin: the work is in
``tether.integrations``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tether.cli.context import Context
from tether.daemon_state import info
from tether.errors import RunbookError, UsageError


def _base_url(obj: Context, url: str | None) -> str:
    """``--url``, else the running daemon's, else the runbook's ``host.listen``."""
    if url:
        return url.rstrip("/")
    running = None
    try:
        running = info(obj.state.root)
    except RunbookError:
        pass
    if running and running.get("url"):
        return str(running["url"]).rstrip("/")
    try:
        listen = obj.loaded.runbook.host.listen
    except RunbookError:
        listen = "127.0.0.1:7717"
    host, _, port = listen.rpartition(":")
    if port == "0":
        raise UsageError("the runbook listens on port 0 and no daemon runs: give --url")
    return f"http://{host}:{port}"


def _project(obj: Context, agent: str | None, project: str | None) -> Path:
    if project:
        return Path(project).expanduser().absolute()
    if agent:
        try:
            loaded = obj.loaded
        except RunbookError:
            return Path.cwd()
        if agent not in loaded.runbook.agents:
            raise UsageError(f"no agent named {agent!r} in {loaded.path}")
        return loaded.agent_cwd(agent)
    return Path.cwd()


def _scope(user: bool, managed: bool) -> str:
    if user and managed:
        raise UsageError("give one of --project, --user or --managed")
    return "managed" if managed else "user" if user else "project"


_agent = click.option("--agent", metavar="NAME", help="The runbook agent the hooks act for (default: whichever "
                      "agent's token the session has, $TETHER_TOKEN).")
_project_opt = click.option("--project", metavar="DIR", help="The project's settings (default: the agent's "
                            "folder with --agent, else here).")
_user = click.option("--user", is_flag=True, help="The user's settings instead of the project's.")
_managed = click.option("--managed", is_flag=True, help="The system's managed settings (as root): hooks the agent "
                        "cannot switch off. Recommended on an agent host.")
_remove = click.option("--remove", is_flag=True, help="Take out exactly what tether added.")
_url = click.option("--url", metavar="URL", help="The daemon's URL (default: the running daemon's, else the "
                    "runbook's host.listen).")


@click.group()
def integrate() -> None:
    """Install tether's hooks into Claude Code, Codex CLI, OpenClaw or git (and take them out with --remove)."""


@integrate.command("claude-code")
@_agent
@_project_opt
@_user
@_managed
@_remove
@_url
@click.option("--wait", type=float, default=20.0, show_default=True, metavar="SECONDS",
              help="How long an interactive session waits for a human on a held call before asking in the session.")
@click.pass_obj
def claude_code_cmd(obj: Context, agent: str | None, project: str | None, user: bool, managed: bool, remove: bool,
                    url: str | None, wait: float) -> None:
    """Merge tether's hooks into Claude Code's settings, keeping everyone else's hooks.

    PreToolUse goes to the daemon as an http hook that blocks when the daemon does not answer; the other
    events feed monitoring. Running it twice changes nothing.
    """
    from tether.integrations import claude_code  # +45 ms to the other integrate commands

    scope = _scope(user, managed)
    where = _project(obj, agent, project) if scope == "project" else None
    path = claude_code.settings_path(scope, where)
    if remove:
        click.echo(claude_code.remove(path).line())
        return
    change = claude_code.install(path, _base_url(obj, url), agent, managed=managed, wait=wait)
    click.echo(change.line())
    if managed:
        click.echo("allowManagedHooksOnly is on: only managed hooks run, and no agent can switch them off.")
    else:
        click.echo(f"note: an agent can switch these hooks off ({'disableAllHooks'} in its own settings); "
                   "on an agent host run `sudo tether integrate claude-code --managed` instead")
    click.echo("sessions need TETHER_TOKEN (an agent token) in their environment; tether sets it for agents it runs")
    who = agent or "NAME"
    click.echo(f"by hand: export TETHER_TOKEN=$(tether token create --role agent --agent {who}); claude -p \"...\" "
               f"waits up to {wait:g}s on a held call, then asks you; with TETHER_HOLD=defer the held call ends the "
               "session as deferred: `tether approve ID`, then `claude -p --resume SESSION` runs it")


@integrate.command("codex")
@_agent
@_project_opt
@_user
@_managed
@_remove
@_url
@click.option("--wait", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="How long the hook waits for a human on a held command before denying it (retry after approval).")
@click.option("--trust", "do_trust", is_flag=True,
              help="Also trust tether's hooks (only those) in $CODEX_HOME/config.toml, as Codex's /hooks would.")
@click.pass_obj
def codex_cmd(obj: Context, agent: str | None, project: str | None, user: bool, managed: bool, remove: bool,
              url: str | None, wait: float, do_trust: bool) -> None:
    """Install tether's fail-closed command hook for Codex CLI (hooks.json, or requirements.toml with --managed).

    Codex skips hooks that are not managed until they are trusted: --trust does that explicitly for
    tether's hooks, else open /hooks in codex, or run `codex exec --dangerously-bypass-hook-trust`.
    """
    from tether.integrations import codex  # +10 ms to the other integrate commands

    scope = _scope(user, managed)
    where = _project(obj, agent, project) if scope == "project" else None
    path = codex.hooks_path(scope, where)
    if remove:
        click.echo(codex.remove(path, managed=managed).line())
        if do_trust:
            click.echo(codex.untrust(where or Path.cwd()).line())
        return
    click.echo(codex.install(path, _base_url(obj, url), agent, managed=managed, wait=wait).line())
    click.echo(f"by hand: export TETHER_TOKEN=$(tether token create --role agent --agent {agent or 'NAME'}); "
               f"codex exec {' '.join(codex.NO_LOGIN_SHELL)} \"...\" (its commands keep your PATH); a held command "
               "is refused with its approval's id: `tether approve ID`, then the identical retry goes through")
    if managed:
        click.echo("managed hooks run without a trust step; allow_managed_hooks_only = true ignores every other hook")
        return
    if scope == "project":
        click.echo(f"note: Codex loads {path} only in a trusted project (`codex exec --trust` in {where})")
    exe = codex.binary()
    if not do_trust:
        click.echo("Codex skips these hooks until they are trusted: `tether integrate codex --trust` (same "
                   "options), or open /hooks in codex; agents tether runs pass --dangerously-bypass-hook-trust")
        return
    if exe is None:
        raise UsageError("--trust needs the codex CLI (on PATH, or $TETHER_CODEX)")
    change, pending, found = codex.trust(exe, where or Path.cwd())
    if change is not None:
        click.echo(change.line())
    if not found:  # nothing to trust is not "trusted": Codex does not load the file at all
        folder = where or Path.cwd()
        raise UsageError(
            f"Codex lists none of tether's hooks from {folder}: it does not load {path}"
            + (f" while it does not trust the project; trust it first (`codex exec --trust` in {folder}, its "
               f'prompt, or [projects."{folder}"] trust_level = "trusted" in $CODEX_HOME/config.toml), '
               "then run this again" if scope == "project" else "; check $CODEX_HOME and `codex --version`"))
    if pending:
        keys = ", ".join(str(h.get("key")) for h in pending)
        raise UsageError(f"Codex still reports tether's hooks untrusted ({keys}); open /hooks in codex")
    click.echo("Codex reports tether's hooks trusted")


@integrate.command("git")
@click.argument("repo", required=False, default=".")
@_agent
@click.option("--protect", multiple=True, metavar="GLOB", help="A protected branch (repeatable; default: main, "
              "master, trunk, prod, production, release/*).")
@_remove
@_url
@click.option("--wait", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="How long a held push waits for a human before failing (push again after approval).")
@click.pass_obj
def git_cmd(obj: Context, repo: str, agent: str | None, protect: tuple[str, ...], remove: bool, url: str | None,
            wait: float) -> None:
    """Install a pre-push hook: force pushes, deletions and pushes to protected branches are git.push actions."""
    from tether.integrations import git  # +34 ms to the other integrate commands

    where = Path(repo).expanduser().absolute()
    if remove:
        path, _, note = git.remove(where)
        click.echo(f"{path}: {note}")
        return
    base = url
    if base is None:
        try:
            base = _base_url(obj, None)
        except UsageError:
            base = None  # the hook then uses $TETHER_URL
    path, _, note = git.install(where, agent=agent, url=base, protected=protect, wait=wait)
    click.echo(f"{path}: {note}")


@integrate.command("openclaw")
@_agent
@click.option("--config", "config_file", metavar="FILE", help="The OpenClaw config (default: OpenClaw's own: "
              "$OPENCLAW_CONFIG_PATH, else $OPENCLAW_STATE_DIR/openclaw.json, else ~/.openclaw/openclaw.json).")
@_remove
@_url
@click.option("--wait", type=float, default=120.0, show_default=True, metavar="SECONDS",
              help="How long a held tool call waits for a human in tether before it is blocked (at most 280).")
@click.option("--token-file", metavar="FILE", help="A file holding the agent token, read when $TETHER_TOKEN is "
              "empty in the gateway's environment.")
@click.option("--harden", is_flag=True, help="Also set OpenClaw's own exec approvals to safe values (ask on an "
              "allowlist miss, strict inline eval, no askFallback that allows).")
@click.pass_obj
def openclaw_cmd(obj: Context, agent: str | None, config_file: str | None, remove: bool, url: str | None,
                 wait: float, token_file: str | None, harden: bool) -> None:
    """Load tether's plugin into an OpenClaw gateway's config: every tool call is asked of the daemon first.

    The plugin blocks anything tether does not allow, and fails closed (daemon down, no token, a timeout).
    The gateway reloads its config by itself (or restart it). Running it twice changes nothing; --remove
    takes out exactly what tether added (--harden's exec settings stay: they are OpenClaw's own).
    """
    from tether.integrations import openclaw  # +48 ms to the other integrate commands

    path = Path(config_file).expanduser().absolute() if config_file else openclaw.config_path()
    if not 0 <= wait <= openclaw.MAX_WAIT:
        raise UsageError(f"--wait must be between 0 and {openclaw.MAX_WAIT:g} seconds")
    if remove:
        click.echo(openclaw.remove(path).line())
    else:
        if agent is not None:
            try:
                if agent not in obj.loaded.runbook.agents:
                    raise UsageError(f"no agent named {agent!r} in {obj.loaded.path}")
            except RunbookError:
                pass
        token = str(Path(token_file).expanduser().absolute()) if token_file else None
        click.echo(openclaw.install(path, _base_url(obj, url), agent, wait=wait, token_file=token).line())
        click.echo("the gateway needs an agent token: TETHER_TOKEN in its environment"
                   + (f" or {token}" if token else "") + "; tether sets it for gateways it runs")
    if harden:
        state = Path(os.environ.get("OPENCLAW_STATE_DIR") or "~/.openclaw").expanduser()
        for line in _harden_openclaw(path, state):
            click.echo(line)


def _harden_openclaw(path: Path, state: Path) -> list[str]:
    """Safe exec settings in the config at ``path``; the host approvals document of ``state`` changed through
    ``openclaw approvals set`` only when it has an askFallback that allows (the one setting only it holds)."""
    import json
    import subprocess

    from tether.integrations import openclaw, openclaw_policy  # +6 ms to tether integrate openclaw without --harden
    from tether.integrations.settings import dump_json, write_atomic  # as openclaw_policy

    out = []
    before = openclaw.read_config(path)
    try:
        after = openclaw_policy.hardened(before)
    except ValueError as err:
        raise UsageError(f"{path}: {err}; fix it first") from None
    if after != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, dump_json(after), 0o600)
        out.append(f"{path}: exec approvals hardened (ask on an allowlist miss, strictInlineEval on)")
    else:
        out.append(f"{path}: exec approvals already hardened (unchanged)")
    host = openclaw_policy.host_approvals(state)
    fixed = openclaw_policy.hardened_host(host) if host is not None else None
    if fixed is None:
        return out
    exe = openclaw.binary()
    if exe is None:
        raise UsageError(f"{state}: the host approvals allow a prompt nobody answers (askFallback=full) and no "
                         "openclaw is on PATH to change them; run: openclaw approvals set --stdin <<'EOF'\n"
                         f"{json.dumps(fixed)}\nEOF")
    proc = subprocess.run([*exe, "approvals", "set", "--stdin"], input=json.dumps(fixed), text=True,
                          capture_output=True, timeout=180, env={**os.environ, "OPENCLAW_STATE_DIR": str(state)})
    if proc.returncode != 0:
        raise UsageError(f"openclaw approvals set failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    out.append(f"{state}: host approvals hardened (askFallback=deny)")
    return out
