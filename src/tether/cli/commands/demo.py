"""``tether demo``: the README's first command."""

from __future__ import annotations

import tempfile
from importlib.resources import files
from pathlib import Path

import click


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where to put the demo host (default: a new temporary directory).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (for scripts).")
def demo(directory: str | None, duration: float | None) -> None:
    """Run a demo host: a runbook with four scripted agents, its store and status, no setup needed."""
    from tether.demo.history import fill
    from tether.runbook import load
    from tether.store import open_store

    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="tether-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    runbook = root / "tether.yaml"
    runbook.write_text(files("tether.demo").joinpath("runbook.yaml").read_text(encoding="utf-8"))
    loaded = load(runbook)
    click.echo(f"demo host in {root}")
    click.echo(f"runbook {runbook}: valid, {len(loaded.runbook.agents)} agents: {', '.join(loaded.runbook.agents)}")
    store = open_store(loaded.store_url)
    from tether import status_file

    def write_status(names: set[str]) -> None:
        for row in store.agents():
            if row["name"] in names:
                status_file.write(loaded.state, row)

    store.on_change(write_status)
    fill(store, loaded)
    store.close()
    click.echo(f"store {loaded.store_url} filled with the host's history\n")
    from tether.cli.main import run

    try:
        run(["--home", str(loaded.state.root), "status"])
    except SystemExit:
        pass
    click.echo(f"\ntry: tether --home {loaded.state.root} status   |   tether --home {loaded.state.root} events")
