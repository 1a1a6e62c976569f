"""spawn records the run before the keeper starts and waits for the disk only after (process/keeper.py): the
two fsyncs of ``run.json`` (milliseconds, tens under I/O load) are not on the way to the agent's start, and
the record is on disk by the time ``spawn`` returns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tether import process
from tether.process.rundir import RUN_JSON, read_run_info


def test_run_json_written_before_the_keeper_and_synced_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, started, synced = tmp_path / "run", [], []
    real_popen, real_fsync = subprocess.Popen, os.fsync

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        argv = args[0] if args else kwargs.get("args")
        if isinstance(argv, list) and str(argv[1:2]).find("keeper.sh") >= 0:  # not the launchers' probes
            started.append((run_dir / RUN_JSON).exists())  # recorded before the keeper starts
        return real_popen(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    def fsync(fd: int) -> None:
        synced.append(bool(started))  # True: after the keeper's start
        real_fsync(fd)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(os, "fsync", fsync)
    handle = process.spawn(
        process.Spec(agent="a", argv=[sys.executable, "-c", "pass"], run_dir=run_dir, log_dir=tmp_path / "logs",
                     env={"PATH": "/usr/bin:/bin"}, cgroup="none")
    )
    assert started == [True], "run.json is there before the keeper starts"
    assert len(synced) >= 2 and all(synced), "the file and its folder synced, both once the keeper started"
    info = read_run_info(run_dir)
    assert info is not None and info.agent == "a"
    assert handle.wait_exit(timeout=10) == 0
