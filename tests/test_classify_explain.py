"""``tether explain`` says what the classifier could not see (issue 17, Evidence): a script it could not read
(and why: not there, a folder, a pipe, over 256 KiB, binary), a compiled program that is no system binary, a
command it does not know, a script in a language it does not read. Each is ``unknown``, never allowed. Run as
a real process against a runbook and a workspace on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import one_agent_runbook, run_cli


@pytest.fixture(scope="module")
def runbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, ws = one_agent_runbook(tmp_path_factory.mktemp("explain-unseen") / "host")
    (ws / "prog").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)  # no system binary has this content
    (ws / "prog").chmod(0o755)
    (ws / "folder.sh").mkdir()
    os.mkfifo(ws / "pipe.sh")
    (ws / "big.sh").write_text("#!/bin/sh\n" + "#" * (300 * 1024) + "\n")
    (ws / "blob.py").write_bytes(b"print(1)\x00\x01\x02\n")
    (ws / "app.js").write_text("console.log(1)\n")
    return path


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("./prog --all", "runs ./prog, a compiled program that is no system binary: the classifier cannot see what"),
        ("frobnicate --all", "unknown command frobnicate: the classifier does not know what it does"),
        ("bash missing.sh", "bash runs missing.sh, which the classifier could not read: it is not there"),
        ("sh folder.sh", "sh runs folder.sh, which the classifier could not read: it is a folder"),
        ("bash pipe.sh", "which the classifier could not read: it is not a regular file (a pipe, socket or device)"),
        ("bash big.sh", "bash runs big.sh, which the classifier could not read: it is over 256 KiB"),
        ("python3 blob.py", "python runs script blob.py (the classifier could not read it: it is binary)"),
        ("node app.js", "node runs app.js (the classifier does not read node scripts)"),
    ],
)
def test_explain_says_what_it_could_not_see(runbook: Path, command: str, said: str) -> None:
    proc = run_cli("-f", str(runbook), "explain", "--", command, cwd=runbook.parent, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    classes = [line for line in lines if line.startswith("class ")]
    assert any(line.split(None, 2)[1] == "unknown" and said in line for line in classes), proc.stdout
    verdict = next(line for line in lines if line.startswith("verdict "))
    assert "held for a human" in verdict or "blocked" in verdict, proc.stdout
