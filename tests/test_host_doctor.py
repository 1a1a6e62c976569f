"""``tether doctor``'s checks against real conditions: directory modes and owners, a tmpfs mounted by the test,
real users, real settings files, unit files systemctl reads. Linux only (the macOS branches are untested)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tether.checks import Check
from tether.host import doctor
from tether.host import service as svc
from tether.runbook import LoadedRunbook, load
from tether.runbook.load import resolve_path

STATUSES = {"ok", "warn", "fail", "unknown"}


def write_runbook(tmp_path: Path, *, state: Path | None = None, workspace: Path | None = None,
                  agent: dict[str, object] | None = None, agents: dict[str, dict[str, object]] | None = None
                  ) -> LoadedRunbook:
    """A runbook file (JSON is YAML) with one agent ``worker`` running as ``nobody`` unless told otherwise;
    a field set to None is left out."""
    base: dict[str, object] = {
        "owner": {"name": "Ana", "contact": "mailto://ana@example.com"},
        "backup": {"name": "Bo", "contact": "mailto://bo@example.com"},
        "command": "python worker.py",
        "run_as": "nobody",
    }
    doc = {
        "version": 1,
        "host": {"state_dir": str(state or tmp_path / "state"), "workspace_root": str(workspace or tmp_path / "ws")},
        "agents": agents if agents is not None else {"worker": {**base, **(agent or {})}},
    }
    for body in doc["agents"].values():  # type: ignore[attr-defined]
        for key, value in base.items():
            body.setdefault(key, value)
        for key in [k for k, v in body.items() if v is None]:  # None: leave the field out
            del body[key]
    path = tmp_path / "tether.yaml"
    path.write_text(json.dumps(doc, indent=2))
    return load(path)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def need_nobody() -> None:
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this host")


# --- the state directory and the disk ------------------------------------------------------------------------------


def test_state_dir_mode_0755_fails(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    check = doctor.check_state_dir(state)
    assert check.status == "fail"
    assert "0755" in check.detail and check.fix == f"chmod 700 {state}"
    assert check.line().startswith("fail    state dir: ")
    assert f"-> chmod 700 {state}" in check.line()


def test_state_dir_0700_is_ok_and_missing_is_a_warning(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    assert doctor.check_state_dir(state).status == "ok"
    assert doctor.check_state_dir(tmp_path / "not-yet").status == "warn"
    (tmp_path / "a-file").write_text("")
    assert doctor.check_state_dir(tmp_path / "a-file").status == "fail"


def test_state_dir_owned_by_someone_else_fails(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    check = doctor.check_state_dir(state)
    assert check.status == "fail" and "owned by" in check.detail and check.fix.startswith("sudo chown")


def test_disk_nearly_full_fails(tiny_disk: Path) -> None:
    """A 512 KiB tmpfs: far below 200 MiB free."""
    check = doctor.check_disk(tiny_disk / "state")  # does not exist: measured at the nearest parent
    assert check.status == "fail"
    assert str(tiny_disk) in check.detail


def test_disk_thresholds(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    assert doctor.check_disk(tmp_path, warn_below=free * 2, fail_below=0).status == "warn"
    assert doctor.check_disk(tmp_path, warn_below=0, fail_below=0).status == "ok"
    assert doctor.check_disk(tmp_path, warn_below=free * 4, fail_below=free * 2).status == "fail"


# --- persistent storage --------------------------------------------------------------------------------------------


def test_a_workspace_on_tmpfs_fails(tmp_path: Path, tiny_disk: Path) -> None:
    loaded = write_runbook(tmp_path, workspace=tiny_disk / "ws",
                           agent={"rollback": {"snapshot": [str(tiny_disk / "notes")]}})
    check = doctor.check_storage(loaded)
    assert check.status == "fail"
    assert f"host.workspace_root {tiny_disk / 'ws'}" in check.detail
    assert f"agents.worker.rollback.snapshot {tiny_disk / 'notes'}" in check.detail
    assert f"agents.worker.cwd {tiny_disk / 'ws' / 'worker'}" in check.detail
    assert "host.state_dir" not in check.detail  # that one is on disk


def test_every_named_path_is_checked(tmp_path: Path) -> None:
    loaded = write_runbook(tmp_path, agent={
        "cwd": "./here", "scope": {"folders": ["./data"], "repos": ["./repo", "https://github.com/acme/app"]},
        "rollback": {"snapshot": ["./notes"]},
    })
    labels = dict((str(p), label) for label, p in doctor.persistent_paths(loaded))
    base = loaded.path.parent
    assert labels[str(loaded.state.root)] == "host.state_dir"
    assert labels[str(loaded.workspace_root)] == "host.workspace_root"
    assert labels[str(loaded.state.db)] == "host.store"
    assert labels[str(resolve_path(base, "./here"))] == "agents.worker.cwd"
    assert labels[str(resolve_path(base, "./data"))] == "agents.worker.scope.folders"
    assert labels[str(resolve_path(base, "./repo"))] == "agents.worker.scope.repos"
    assert labels[str(resolve_path(base, "./notes"))] == "agents.worker.rollback.snapshot"
    assert not any("github.com" in p for p in labels)


# --- agents' users -------------------------------------------------------------------------------------------------


def test_agent_users(tmp_path: Path) -> None:
    need_nobody()
    loaded = write_runbook(tmp_path, agents={
        "own-user": {"run_as": "nobody"},
        "implicit": {"run_as": None},
        "accepted": {"run_as": None, "same_user": True},
        "ghost": {"run_as": "no-such-user-tether"},
    })
    checks = by_name(doctor.check_agent_users(loaded))
    me = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        assert checks["agent own-user"].status == "ok"
    else:
        assert checks["agent own-user"].status == "fail" and "root" in checks["agent own-user"].detail
    assert checks["agent implicit"].status == "fail"
    assert f"would run as {me}" in checks["agent implicit"].detail and "same_user" in checks["agent implicit"].fix
    assert checks["agent accepted"].status == "warn" and "advisory" in checks["agent accepted"].detail
    assert checks["agent ghost"].status == "fail" and "does not exist" in checks["agent ghost"].detail


def test_another_user_needs_a_root_daemon(tmp_path: Path) -> None:
    loaded = write_runbook(tmp_path, agent={"run_as": "root"})
    (check,) = doctor.check_agent_users(loaded, daemon_uid=65534)
    assert check.status == "fail" and "needs the daemon to run as root" in check.detail


# --- Claude Code managed hooks -------------------------------------------------------------------------------------


def test_claude_code_managed_hooks(tmp_path: Path) -> None:
    loaded = write_runbook(tmp_path, agent={"kind": "claude-code", "command": None, "prompt": "keep the docs tidy"})
    settings = tmp_path / "managed-settings.json"
    missing = doctor.check_claude_hooks(loaded, settings)
    assert missing is not None and missing.status == "warn"
    assert "settings.local.json" in missing.detail and missing.fix == "tether integrate claude-code --managed"
    settings.write_text(json.dumps({"allowManagedHooksOnly": False, "hooks": {}}))
    lacking = doctor.check_claude_hooks(loaded, settings)
    assert lacking is not None and lacking.status == "warn" and "lacks allowManagedHooksOnly" in lacking.detail
    settings.write_text("{not json")
    broken = doctor.check_claude_hooks(loaded, settings)
    assert broken is not None and broken.status == "warn"
    settings.write_text(json.dumps({"allowManagedHooksOnly": True}))
    good = doctor.check_claude_hooks(loaded, settings)
    assert good is not None and good.status == "ok"


def test_no_claude_code_agent_no_hooks_check(tmp_path: Path) -> None:
    assert doctor.check_claude_hooks(write_runbook(tmp_path), tmp_path / "none.json") is None


# --- sleep, clock --------------------------------------------------------------------------------------------------


def test_sleep_needs_masking_when_the_kernel_can_suspend(tmp_path: Path) -> None:
    if sys.platform != "linux" or shutil.which("systemctl") is None:
        pytest.skip("Linux with systemctl only")
    power = tmp_path / "state"
    power.write_text("")
    assert doctor.check_sleep(power).status == "ok"  # nothing to suspend into
    power.write_text("freeze mem disk\n")
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    check = doctor.check_sleep(power, root)
    if check.status == "ok":  # only an inhibitor held on this host can make an unmasked host ok
        assert "inhibitor" in check.detail
    else:
        assert check.status == "warn" and "freeze mem disk" in check.detail and "mask sleep.target" in check.fix
    subprocess.run(["systemctl", f"--root={root}", "mask", "sleep.target"], check=True, capture_output=True)
    masked = doctor.check_sleep(power, root)
    assert masked.status == "ok" and "masked" in masked.detail


def test_this_hosts_sleep_and_clock_answer() -> None:
    for check in (doctor.check_sleep(), doctor.check_clock()):
        assert check.status in STATUSES and check.detail
        assert check.status != "fail"  # neither is ever a failure, only a warning
    if sys.platform == "linux":
        assert doctor._kernel_clock_synced() in (True, False)


# --- the service ---------------------------------------------------------------------------------------------------


def test_service_check(tmp_path: Path) -> None:
    unit_dir = tmp_path / "root/etc/systemd/system"
    assert doctor.check_service([svc.status("systemd", False, unit_dir)]).status == "warn"  # not installed
    svc.install(svc.ServiceSpec(runbook=tmp_path / "tether.yaml", state_dir=tmp_path / "state"), "systemd", unit_dir)
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    disabled = doctor.check_service([svc.status("systemd", False, unit_dir)])
    assert disabled.status == "warn" and "disabled" in disabled.detail and "enable" in disabled.fix
    subprocess.run(["systemctl", f"--root={tmp_path / 'root'}", "enable", "tether.service"], check=True,
                   capture_output=True)
    assert doctor.check_service([svc.status("systemd", False, unit_dir)]).status == "ok"


def test_a_user_unit_without_lingering_stops_at_logout(tmp_path: Path) -> None:
    st = svc.ServiceStatus("systemd", True, tmp_path / "tether.service", True, "enabled")
    linger = tmp_path / "linger"
    linger.mkdir()
    check = doctor.check_service([st], linger)
    assert check.status == "warn" and "enable-linger" in check.fix
    (linger / pwd.getpwuid(os.getuid()).pw_name).write_text("")
    assert doctor.check_service([st], linger).status == "ok"


# --- all together --------------------------------------------------------------------------------------------------


def test_a_fine_setup_has_no_failure(tmp_path: Path) -> None:
    need_nobody()
    if os.geteuid() != 0:
        pytest.skip("an agent running as another user needs root")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    loaded = write_runbook(tmp_path, state=state)
    from tether.process.platform import is_tmpfs

    if is_tmpfs(tmp_path):
        pytest.skip("the test's temporary folder is a tmpfs here")
    unit_dir = tmp_path / "root/etc/systemd/system"
    svc.install(svc.ServiceSpec(runbook=loaded.path, state_dir=state), "systemd", unit_dir)
    checks = doctor.run(loaded, state, [svc.status("systemd", False, unit_dir)])
    named = by_name(checks)
    for name in ("state dir", "storage", "agent worker"):
        assert named[name].status == "ok", named[name]
    assert named["disk"].status in ("ok", "warn")
    assert not doctor.failed(checks)
    data = json.loads(doctor.as_json(checks))
    assert data["ok"] is True and {c["status"] for c in data["checks"]} <= STATUSES
