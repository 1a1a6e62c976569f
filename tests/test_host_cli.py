"""``tether service`` and ``tether doctor`` as a user runs them: a real process through the console script's
error handling (``tether.cli.entry.run``), so typed errors must come out as one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_env, one_line_error

#: Runs the CLI with the host commands in the COMMANDS table (a no-op once cli/main.py lists them).
RUNNER = (
    "import sys\n"
    "from tether.cli import main\n"
    "main.COMMANDS.setdefault('service', ('host', 'Install, remove or inspect the boot service.'))\n"
    "main.COMMANDS.setdefault('doctor', ('host', 'Check this host for unattended agents.'))\n"
    "from tether.cli.entry import run\n"
    "sys.exit(run(sys.argv[1:]))\n"
)

RUNBOOK = """\
version: 1
host:
  state_dir: {state}
  workspace_root: {workspace}
agents:
  worker:
    owner: {{name: Ana, contact: "mailto://ana@example.com"}}
    backup: {{name: Bo, contact: "mailto://bo@example.com"}}
    command: python worker.py
    run_as: {run_as}
"""


def tether(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=cwd, env=cli_env(env), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def runbook(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path = tmp_path / "tether.yaml"
    path.write_text(RUNBOOK.format(state=state, workspace=tmp_path / "ws", run_as="nobody"))
    return path


def test_install_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path, runbook: Path) -> None:
    unit_dir = tmp_path / "units"
    proc = tether("--home", str(tmp_path / "home"), "service", "install", "--dry-run", "--manager", "systemd",
                  "--unit-dir", str(unit_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"# {unit_dir / 'tether.service'} (dry run: nothing written)\n")
    home = tmp_path / "home"
    assert f"ExecStart={sys.executable} -m tether -f {runbook} --home {home} up --foreground\n" in proc.stdout
    assert f"Environment=TETHER_HOME={home}\n" in proc.stdout
    assert "systemctl daemon-reload && systemctl enable --now tether" in proc.stdout
    assert not unit_dir.exists()


def test_install_takes_the_runbook_option(tmp_path: Path, runbook: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = tether("service", "install", "--dry-run", "--manager", "launchd", "--runbook", str(runbook),
                  "--unit-dir", str(tmp_path / "agents"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert f"<string>{runbook}</string>" in proc.stdout
    assert f"launchctl load -w {tmp_path / 'agents' / 'dev.tether.daemon.plist'}" in proc.stdout


def test_install_status_remove(tmp_path: Path, runbook: Path) -> None:
    root = tmp_path / "root"
    unit_dir = root / "etc/systemd/system"
    where = ["--manager", "systemd", "--unit-dir", str(unit_dir)]
    proc = tether("service", "install", *where, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"wrote {unit_dir / 'tether.service'}"
    assert f"systemctl --root={root} enable tether" in proc.stdout
    assert "already up to date" in tether("service", "install", *where, cwd=tmp_path).stdout

    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    subprocess.run(["systemctl", f"--root={root}", "enable", "tether.service"], check=True, capture_output=True)
    status = tether("service", "status", *where, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {
        "manager": "systemd", "user": False, "path": str(unit_dir / "tether.service"), "installed": True,
        "enabled": "enabled", "starts_at_boot": True, "detail": "",
    }
    refused = tether("service", "remove", *where, cwd=tmp_path)
    assert refused.returncode == 1
    assert one_line_error(refused) == (
        f"tether: error: tether.service is enabled; run `systemctl --root={root} disable tether` first, "
        "then `tether service remove`"
    )
    subprocess.run(["systemctl", f"--root={root}", "disable", "tether.service"], check=True, capture_output=True)
    removed = tether("service", "remove", *where, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[0] == f"removed {unit_dir / 'tether.service'}"
    text = tether("service", "status", *where, cwd=tmp_path).stdout
    assert "installed: no" in text


def test_an_invalid_runbook_is_not_installed(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("version: 1\nagents:\n  Bad Name: {}\n")
    proc = tether("service", "install", "--manager", "systemd", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "tether.yaml:" in proc.stderr
    assert not (tmp_path / "units").exists()


def test_doctor_fails_on_an_open_state_dir(tmp_path: Path, runbook: Path) -> None:
    (tmp_path / "state").chmod(0o755)
    proc = tether("doctor", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ok      runbook: {runbook} is valid (1 agent(s))"
    assert f"fail    state dir: {tmp_path / 'state'} has mode 0755" in proc.stdout
    assert f"-> chmod 700 {tmp_path / 'state'}" in proc.stdout
    assert any(line.startswith("warn    service: no tether service installed") for line in lines)
    assert all(line.split()[0] in ("ok", "warn", "fail", "unknown") for line in lines)

    as_json = tether("doctor", "--json", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    state = next(c for c in data["checks"] if c["name"] == "state dir")
    assert state["status"] == "fail" and state["fix"] == f"chmod 700 {tmp_path / 'state'}"


def test_doctor_passes_a_fine_host(tmp_path: Path, runbook: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("an agent running as another user needs a root daemon")
    proc = tether("doctor", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "fail" not in proc.stdout.split()


def test_doctor_without_a_runbook_checks_the_host(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    proc = tether("--home", str(home), "doctor", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[0].startswith("warn    runbook: no tether.yaml here")
    assert f"ok      state dir: {home} is owned by" in proc.stdout


def test_doctor_reports_an_invalid_runbook_as_a_failed_check(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("version: 1\nhost: {listen: nowhere}\n")
    proc = tether("--home", str(tmp_path), "doctor", "--unit-dir", str(tmp_path / "units"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("fail    runbook: tether.yaml:2: host.listen")
    assert "Traceback" not in proc.stderr
