"""Python that only computes stays free (`python3 -c 'print(1)'`, `python3 script.py` of such a script);
anything that may do more is unknown, never allowed (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.classify import Context, classify_shell
from tether.classify.pyinert import not_inert

FREE = [
    "print(1)",
    "import json, math\nprint(json.dumps({'pi': math.pi}))",
    "from collections import Counter\nprint(Counter('abc'))",
    "def f(x):\n    return x * 2\n\nif __name__ == '__main__':\n    print(f(21))",
]
HELD = {
    "import os\nos.system('rm -rf /')": "imports os",
    "import subprocess": "imports subprocess",
    "open('.env').read()": "uses open",
    "eval('1')": "uses eval",
    "__import__('os')": "uses __import__",
    "print(().__class__.__base__.__subclasses__())": "reaches __",
    "getattr(print, '__self__')": "uses getattr",
    "from . import secrets": "imports project code",
    "import urllib.request": "imports urllib.request",
    "x = [": "does not parse",
    "import random as r; r._inst": "private _inst",
}


@pytest.mark.parametrize("code", FREE)
def test_code_that_only_computes_is_inert(code: str) -> None:
    assert not_inert(code) is None


@pytest.mark.parametrize(("code", "why"), HELD.items())
def test_code_that_may_do_more_is_not(code: str, why: str) -> None:
    got = not_inert(code)
    assert got is not None and why in got, got


def test_scripts_are_judged_by_their_content(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(FREE[1])
    (tmp_path / "evil.py").write_text("import shutil\nshutil.rmtree('/srv')\n")
    ctx = Context(cwd=str(tmp_path))
    assert classify_shell("python3 script.py", ctx).classes == {"repo.read"}
    assert "unknown" in classify_shell("python3 evil.py", ctx).classes
    assert "unknown" in classify_shell("python3 missing.py", ctx).classes
    assert "unknown" in classify_shell("echo 'import os' > script.py; python3 script.py", ctx).classes
    assert classify_shell("python3 -c 'print(1)'", ctx).classes == {"repo.read"}
    assert "unknown" in classify_shell('python3 -c "$CODE"', ctx).classes
