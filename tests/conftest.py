from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "classifier_errors: the test expects classifier errors (exceptions)")
    config.addinivalue_line("markers", "wall: the test runs agents inside the wall (TETHER_SANDBOX not off)")


@pytest.fixture(autouse=True)
def _sandbox_off(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents of tests not marked ``wall`` run without the wall (as before it: as the daemon's user or their
    run_as), through the host-wide switch TETHER_SANDBOX=off, which daemons started by the test inherit."""
    if request.node.get_closest_marker("wall") is None:
        monkeypatch.setenv("TETHER_SANDBOX", "off")
    else:
        monkeypatch.delenv("TETHER_SANDBOX", raising=False)


def _classifier_errors() -> int:
    api = sys.modules.get("tether.classify.api")  # not imported yet: none so far
    return int(api.errors_total()) if api is not None else 0


@pytest.fixture(autouse=True)
def _no_classifier_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """A classifier exception (answered ``unknown``, logged, counted) is a bug: it fails the test."""
    before = _classifier_errors()
    yield
    if request.node.get_closest_marker("classifier_errors") is None:
        n = _classifier_errors() - before
        assert n == 0, f"{n} classifier error(s) during this test: see the captured tether.classify log"


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


TEST_USER = "tether-test-agent"


@pytest.fixture(scope="session")
def test_user() -> Iterator[str]:
    """A system user for run_as tests, created once and removed at the end if this run created it.

    Skipped unless the suite runs as root with useradd."""
    import pwd

    if os.geteuid() != 0:
        pytest.skip("run_as needs root")
    try:
        pwd.getpwnam(TEST_USER)
        created = False
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("no useradd to create the agent's user")
        subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", TEST_USER], check=True, capture_output=True)
        created = True
    try:
        yield TEST_USER
    finally:
        if created:
            # Processes a test left behind as this user would make userdel refuse: end them first.
            subprocess.run(["pkill", "-KILL", "-u", TEST_USER], check=False, capture_output=True)
            subprocess.run(["userdel", TEST_USER], check=False, capture_output=True)
