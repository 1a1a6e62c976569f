"""The boot service: the unit as real ``systemd-analyze verify`` and ``systemctl`` read it, the plist through
``plistlib``, and install/remove/status on real files. Linux only for the systemd parts (skipped where the
systemd tools are missing); nothing here loads a plist into launchd."""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.errors import TetherError
from tether.host import service as svc
from tether.host.service import ServiceSpec, render_launchd, render_systemd


def make_spec(tmp_path: Path, **kw: Any) -> ServiceSpec:
    args: dict[str, Any] = {"runbook": tmp_path / "tether.yaml", "state_dir": tmp_path / "state",
                            "python": sys.executable, **kw}
    return ServiceSpec(**args)


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (keys may repeat, so not configparser)."""
    out: dict[str, dict[str, list[str]]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            out[current] = {}
            continue
        key, _, value = line.partition("=")
        out[current].setdefault(key, []).append(value)
    return out


# --- systemd-analyze verify ------------------------------------------------------------------------------------


def _analyze(unit: Path, user: bool, level: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    assert exe is not None
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": level}
    if user:  # a user manager wants a runtime dir; give it a private one
        run_dir = tmp_path / "xdg-runtime"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(run_dir)
    return subprocess.run([exe, *(["--user"] if user else []), "verify", str(unit)], env=env,
                          capture_output=True, text=True, timeout=60)


def verify(text: str, tmp_path: Path, user: bool = False) -> None:
    """Assert ``systemd-analyze verify`` accepts the unit: exit 0 at SYSTEMD_LOG_LEVEL=err, and no line of its
    warnings names one of the unit's keys or a FILE:LINE of it. Skip when the tool cannot run here at all (shown
    by a trivial unit failing too)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    folder = tmp_path / ("user-units" if user else "units")
    folder.mkdir(exist_ok=True)
    control = folder / "tether-control.service"
    control.write_text(f"[Service]\nType=oneshot\nExecStart={shutil.which('true')}\n")
    probe = _analyze(control, user, "err", tmp_path)
    if probe.returncode != 0:
        pytest.skip(f"systemd-analyze verify cannot run here: {probe.stderr.strip().splitlines()[:1]}")
    unit = folder / "tether.service"
    unit.write_text(text)
    strict = _analyze(unit, user, "err", tmp_path)
    assert strict.returncode == 0, strict.stderr
    chatty = _analyze(unit, user, "warning", tmp_path)
    keys = {line.partition("=")[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    for line in chatty.stderr.splitlines():
        assert not re.search(r"tether\.service:\d+:", line), line
        assert not any(re.search(rf"\b{k}\b", line) for k in keys), line


def test_the_harness_sees_a_bad_key(tmp_path: Path) -> None:
    """verify() must fail on a unit systemd would half-ignore, or its passing means nothing."""
    text = render_systemd(make_spec(tmp_path)).replace("RestartSec=1", "RestartSec=1\nRestartSecs=2")
    with pytest.raises(AssertionError):
        verify(text, tmp_path)


def test_system_unit_verifies(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, home=tmp_path / "home", path_env="/usr/local/bin:/usr/bin:/bin")
    text = render_systemd(spec)
    verify(text, tmp_path)
    unit = sections(text)
    service = unit["Service"]
    assert service["Type"] == ["notify"]
    assert service["ExecStart"] == [
        f"{sys.executable} -m tether -f {tmp_path / 'tether.yaml'} --home {tmp_path / 'home'} up --foreground"
    ], "--home outranks the runbook's state_dir; TETHER_HOME would not"
    assert service["Restart"] == ["always"]
    assert service["RestartSec"] == ["1"]
    assert service["WatchdogSec"] == ["30"]
    assert service["NotifyAccess"] == ["main"]
    assert service["KillMode"] == ["process"]
    assert f"TETHER_HOME={tmp_path / 'home'}" in service["Environment"]
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in service["Environment"]
    assert unit["Unit"]["After"] == ["network-online.target"]
    assert unit["Unit"]["Wants"] == ["network-online.target"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    lines = text.splitlines()
    above = lines[: lines.index("KillMode=process")]
    comment = " ".join(reversed([x for x in reversed(above) if x.startswith("#")][:5]))
    assert "re-adopts" in comment and "keeper" in comment  # why agents survive a daemon restart


def test_no_tether_home_no_environment_line(tmp_path: Path) -> None:
    text = render_systemd(make_spec(tmp_path))
    assert "Environment=" not in text


def test_user_unit_verifies(tmp_path: Path) -> None:
    text = render_systemd(make_spec(tmp_path, user=True))
    verify(text, tmp_path, user=True)
    unit = sections(text)
    assert unit["Install"]["WantedBy"] == ["default.target"]
    assert "Wants" not in unit["Unit"]  # a user manager has no network-online.target to pull in


def test_awkward_paths_are_quoted_as_systemd_reads_them(tmp_path: Path) -> None:
    """Spaces, % and $ in the interpreter's path (verify checks that it exists, so misquoting it fails there);
    quotes and backslashes too in the arguments (checked by unquoting them as a shell would)."""
    odd = tmp_path / "py dir %i $HOME"
    odd.mkdir()
    python = odd / "python3"
    python.symlink_to(sys.executable)
    runbook = tmp_path / 'my "runbooks" %n' / "tether $USER \\b.yaml"
    spec = make_spec(tmp_path, python=str(python), runbook=runbook, home=tmp_path / "state 100%")
    text = render_systemd(spec)
    verify(text, tmp_path)
    exec_start = sections(text)["Service"]["ExecStart"][0]
    words = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(exec_start)]
    assert words == spec.argv()
    env = sections(text)["Service"]["Environment"][0]
    assert [w.replace("%%", "%") for w in shlex.split(env)] == [f"TETHER_HOME={tmp_path / 'state 100%'}"]


def test_paths_systemd_cannot_hold_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TetherError, match="newline"):
        render_systemd(make_spec(tmp_path, runbook=tmp_path / "a\nb.yaml"))
    with pytest.raises(TetherError, match="quotes or backslashes"):  # systemd: "contains special characters"
        render_systemd(make_spec(tmp_path, python=str(tmp_path / "it's" / "python3")))


# --- launchd (content only: tested on Linux through plistlib) ------------------------------------------------------


def test_launchd_plist_round_trips(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, home=tmp_path / "home", path_env="/usr/bin:/bin")
    data = render_launchd(spec)
    assert data.startswith(b"<?xml")
    doc = plistlib.loads(data)
    assert doc["Label"] == "dev.tether.daemon"
    assert doc["ProgramArguments"] == [sys.executable, "-m", "tether", "-f", str(tmp_path / "tether.yaml"),
                                       "--home", str(tmp_path / "home"), "up", "--foreground"]
    assert doc["KeepAlive"] is True
    assert doc["RunAtLoad"] is True
    assert doc["AbandonProcessGroup"] is True
    assert doc["StandardOutPath"] == doc["StandardErrorPath"] == str(tmp_path / "state" / "daemon.log")
    assert doc["EnvironmentVariables"] == {"TETHER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}


def test_launchd_plist_escapes_xml(tmp_path: Path) -> None:
    runbook = tmp_path / "a & b <c>" / "tether.yaml"
    doc = plistlib.loads(render_launchd(make_spec(tmp_path, runbook=runbook)))
    assert doc["ProgramArguments"][4] == str(runbook)
    assert "EnvironmentVariables" not in doc


def test_launchd_install_writes_the_plist_and_the_log_folder(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    agents = tmp_path / "LaunchAgents"
    result = svc.install(spec, "launchd", agents)
    assert result.path == agents / "dev.tether.daemon.plist"
    assert plistlib.loads(result.path.read_bytes())["Label"] == "dev.tether.daemon"
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert result.commands == [f"launchctl load -w {result.path}"]
    with pytest.raises(TetherError, match="--user"):
        svc.install(make_spec(tmp_path, user=True), "launchd", agents)


# --- install, status, remove on real files -------------------------------------------------------------------------


def systemctl(*args: str) -> None:
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    subprocess.run(["systemctl", *args], check=True, capture_output=True, timeout=30)


def test_install_status_remove_under_a_root(tmp_path: Path) -> None:
    """A unit under ROOT/etc/systemd/system: systemctl --root=ROOT reads and enables it, no running systemd needed."""
    root = tmp_path / "root"
    unit_dir = root / "etc/systemd/system"
    spec = make_spec(tmp_path)

    dry = svc.install(spec, "systemd", unit_dir, dry_run=True)
    assert not dry.written and not dry.path.exists()
    assert dry.content == render_systemd(spec).encode()

    first = svc.install(spec, "systemd", unit_dir)
    assert first.written and not first.replaced
    assert first.path.read_text() == render_systemd(spec)
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o644
    assert first.commands == [f"systemctl --root={root} enable tether"]
    assert not svc.install(spec, "systemd", unit_dir).written  # idempotent

    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    st = svc.status("systemd", False, unit_dir)
    assert st.installed and st.enabled == "disabled" and st.starts_at_boot is False

    systemctl(f"--root={root}", "enable", "tether.service")
    st = svc.status("systemd", False, unit_dir)
    assert st.enabled == "enabled" and st.starts_at_boot is True
    with pytest.raises(TetherError, match=r"is enabled; run `systemctl --root=\S+ disable tether` first"):
        svc.remove("systemd", False, unit_dir)
    assert first.path.exists()

    systemctl(f"--root={root}", "disable", "tether.service")
    removed = svc.remove("systemd", False, unit_dir)
    assert removed.existed and not first.path.exists()
    assert not svc.status("systemd", False, unit_dir).installed
    assert not svc.remove("systemd", False, unit_dir).existed


def test_a_changed_unit_is_replaced(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    svc.install(make_spec(tmp_path), "systemd", unit_dir)
    again = svc.install(make_spec(tmp_path, home=tmp_path / "elsewhere"), "systemd", unit_dir)
    assert again.written and again.replaced
    assert f"TETHER_HOME={tmp_path / 'elsewhere'}" in again.path.read_text()


def test_a_unit_outside_the_search_path_says_so(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    result = svc.install(make_spec(tmp_path, user=True), "systemd", unit_dir)
    assert result.commands[0] == f"systemctl --user link {result.path}"
    assert result.commands[1] == "systemctl --user daemon-reload && systemctl --user enable --now tether"
    assert result.commands[2] == 'loginctl enable-linger "$USER"'
    st = svc.status("systemd", True, unit_dir)
    assert st.installed and st.enabled == "unknown" and "does not read units" in st.detail
    assert st.starts_at_boot is None
    removed = svc.remove("systemd", True, unit_dir)  # unknown: the commands undo an enable, if there was one
    assert removed.commands == ["systemctl --user disable --now tether", "systemctl --user daemon-reload"]


def test_default_locations() -> None:
    assert svc.default_unit_dir("systemd", False) == Path("/etc/systemd/system")
    assert svc.default_unit_dir("systemd", True) == Path.home() / ".config/systemd/user"
    assert svc.default_unit_dir("launchd", False) == Path.home() / "Library/LaunchAgents"
    assert svc.enable_commands("systemd", Path("/etc/systemd/system/tether.service"), False) == [
        "systemctl daemon-reload && systemctl enable --now tether"
    ]


def test_an_unwritable_unit_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TetherError, match="cannot write") as err:
        svc.install(make_spec(tmp_path), "systemd", blocker / "units")
    assert "\n" not in str(err.value)
