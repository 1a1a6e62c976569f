from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import TETHER_VARS

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

EXAMPLE_RUNBOOK = Path(__file__).resolve().parent.parent / "src/tether/runbook/example.yaml"
DEMO_RUNBOOK = Path(__file__).resolve().parent.parent / "src/tether/demo/runbook.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's TETHER_* variables must not change what a test sees."""
    for name in TETHER_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty state directory, set as TETHER_HOME for this process."""
    state = tmp_path / "home"
    state.mkdir()
    monkeypatch.setenv("TETHER_HOME", str(state))
    return state


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_RUNBOOK.read_text(encoding="utf-8")


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 512 KiB tmpfs (room for an empty store and a few events), unmounted afterwards.

    Skipped where mounting is not allowed."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = Path(tempfile.mkdtemp(prefix="tether-tiny-disk-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()
