"""The wheel a user installs (pipx, uv tool, pip) carries the license, the typing marker and honest metadata.

Built from the checkout with the project's own build backend, offline (``--no-build-isolation``: hatchling
is a dev dependency), and read back as the zip file an installer would unpack.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *offline, str(ROOT), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("tether-*.whl")
    return zipfile.ZipFile(built)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_ships_the_apache_license_text(wheel: zipfile.ZipFile) -> None:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    text = wheel.read(name).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert text == (ROOT / "LICENSE").read_text()
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_the_wheel_is_typed_and_carries_its_data_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "tether/py.typed" in names
    # Files the code opens at run time, not imports: without them the installed tool breaks.
    for data in ("tether/process/keeper.sh", "tether/runbook/example.yaml", "tether/runbook/kinds/codex.yaml"):
        assert data in names, data
    assert any(n.startswith("tether/web/templates/") for n in names)
    assert not [n for n in names if "__pycache__" in n]
    (entry,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "tether = tether.cli.entry:main" in wheel.read(entry).decode()
    # the agents' `tether` (daemon/agentpath.py): an executable an installer keeps executable
    assert wheel.getinfo("tether/bin/tether").external_attr >> 16 & 0o111 == 0o111


def test_supported_pythons_are_declared_and_agree(wheel: zipfile.ZipFile) -> None:
    meta = _metadata(wheel)
    assert meta["Requires-Python"] == ">=3.11"
    versions = [
        tuple(int(p) for p in c.rsplit(" :: ", 1)[1].split("."))
        for c in meta.get_all("Classifier") or []
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert versions and min(versions) == (3, 11)
    assert sys.version_info[:2] in versions, "the Python the tests run on is not declared as supported"
    assert "Typing :: Typed" in (meta.get_all("Classifier") or [])
