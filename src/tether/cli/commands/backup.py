"""``tether backup PATH``."""

from __future__ import annotations

import click

from tether.cli.context import Context


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_obj
def backup(obj: Context, path: str) -> None:
    """Write a consistent copy of the store to PATH (SQLite's online backup; safe while the daemon runs)."""
    store = obj.store(readonly=True)
    store.backup(path)
    click.echo(f"backed up {obj.state.db} to {path}")
