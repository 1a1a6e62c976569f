"""``tether backup PATH``."""

from __future__ import annotations

import time

import click

from tether.cli.context import Context
from tether.durations import parse_duration
from tether.errors import UsageError


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_obj
def backup(obj: Context, path: str) -> None:
    """Write a consistent copy of the store to PATH (SQLite's online backup; safe while the daemon runs)."""
    store = obj.store(readonly=True)
    store.backup(path)
    click.echo(f"backed up {obj.state.db} to {path}")


@click.command()
@click.option("--older-than", "older_than", metavar="DURATION",
              help="Delete events older than this (default: the runbook's host.retention.events).")
@click.pass_obj
def prune(obj: Context, older_than: str | None) -> None:
    """Apply the event retention: delete events older than the runbook says (the daemon runs this daily)."""
    if older_than is not None:
        try:
            keep = parse_duration(older_than)
        except ValueError:
            raise UsageError(f'--older-than: expected a duration like "30d", got {older_than!r}') from None
    else:
        keep = obj.loaded.runbook.host.retention.events
    count = obj.store().prune(time.time() - keep)
    click.echo(f"deleted {count} event(s) older than {older_than or keep}")
