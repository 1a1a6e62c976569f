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
    "import sys; print(sys.version)",
    "import sys\nprint(sys.version_info >= (3, 8), sys.platform, sys.implementation.name, sys.maxsize)",
    "from sys import version as v, getsizeof\nprint(v, getsizeof(1))",
    "import collections.abc\nprint(collections.abc.Mapping)",
    "import json\nprint(json.decoder.JSONDecodeError)",
    "import textwrap\nprint(textwrap.re.escape('a'))",
    "from __future__ import annotations\nimport typing\nprint(typing.Optional[int])",
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
    # sys: what the interpreter is, nothing more
    "import sys; print(sys.modules['os'])": "reaches sys.modules",
    "import sys; sys.path.insert(0, '.'); import json": "reaches sys.path",
    "import sys; sys.exit(3)": "reaches sys.exit",
    "import sys; sys.setrecursionlimit(10)": "reaches sys.setrecursionlimit",
    "import sys; type(sys.stdout.buffer.raw)('/etc/x', 'w')": "reaches sys.stdout",
    "import sys as s; m = s; m.modules": "uses module s as a value",
    "import sys; print(sys)": "uses module sys as a value",
    "from sys import modules": "reaches sys.modules",
    # modules other modules imported, reached through them
    "import typing; typing.sys.modules['os'].system('id')": "reaches sys.modules",
    "from typing import sys; sys.modules": "reaches sys.modules",
    "import uuid; uuid.os.system('id')": "reaches module os through uuid",
    "import json; json.codecs.open('x', 'w')": "reaches module codecs through json",
    "from json import codecs": "reaches module codecs through json",
    "import dataclasses; dataclasses.builtins.open('x')": "reaches module builtins through dataclasses",
    "import enum; enum.bltns.exec('1')": "reaches module builtins through enum",
    "import re; re.copyreg": "reaches module copyreg through re",
    "import base64; base64.main()": "runs base64.main",
    "import math; math.pi = 3": "changes math.pi",
    "from math import *": "every name of math",
    "import json; json.nosuchthing": "cannot see",
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


def test_a_module_of_the_working_folder_is_imported_first(tmp_path: Path) -> None:
    """``python3 -c`` puts the working folder first on the import path, a script its own folder: a ``json.py``
    there is what ``import json`` runs (shown with the real interpreter), so the code is held."""
    import subprocess
    import sys

    (tmp_path / "json.py").write_text("print('the project json ran')\n")
    proc = subprocess.run(
        [sys.executable, "-c", "import json"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "the project json ran" in proc.stdout
    ctx = Context(cwd=str(tmp_path))
    c = classify_shell("python3 -c 'import json; print(1)'", ctx)
    assert c.classes == {"unknown"}
    assert any(f"imports json, which {tmp_path} has a module of its own" in a.reason for a in c.actions), c.actions
    assert classify_shell("python3 -c 'import sys, itertools; print(sys.version)'", ctx).classes == {"repo.read"}
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "run.py").write_text("import json\nprint(json.dumps(1))\n")
    assert classify_shell("python3 app/run.py", ctx).classes == {"repo.read"}  # its own folder has no json.py
    (tmp_path / "app" / "json").mkdir()  # a package beside the script
    assert "unknown" in classify_shell("python3 app/run.py", ctx).classes
    for cmd in ("PYTHONPATH=/x python3 -c 'import json'", "env PYTHONPATH=/x python3 -c 'import json'"):
        c = classify_shell(cmd, Context(cwd=str(tmp_path / "app")))
        assert any("PYTHONPATH" in a.reason for a in c.actions), (cmd, c.actions)


JS_FREE = [
    "console.log(1)",
    "console.log('hi', 1 + 2, [1, 2], {a: 1, 'b': [null, true]}, undefined, NaN)",
    "console.log(Math.max(1, 2), Math.PI, JSON.stringify({a: [1]}), JSON.parse('[1]'))",
    "console.log(`v=${Math.round(2.5)}`); // a comment",
    "2 ** 10",
    "typeof 1 === 'number' ? console.log('yes') : console.error('no')",
    "console.log('\u00e9t\u00e9')",
]
JS_HELD = {
    "console.log(process.version)": "process.version",
    "require('fs').rmSync('x')": "require",
    "const x = 1; console.log(x)": "uses",
    "console.log(globalThis)": "uses globalThis",
    "new Function('return 1')()": "new Function",
    "new Function('return 1')": "new expression",
    "Math.constructor.constructor('return process')()": "Math.constructor",
    "Math['max'](1)": "calls",
    "console.log({[Math.PI]: 1})": "object key",
    "console.log({a})": "shorthand",
    "delete Math.PI": "delete",
    "Math.PI = 3": "assignment",
    "JSON.parse('{}', (k, v) => v)": "arrow function",
    "import('fs')": "calls import",
    "eval('1')": "calls eval",
    "console.log(/a/)": "regex",
    "console.log`x`": "template",
    "consol\u00e9.log(1)": "does not parse",
    "console.log(": "does not parse",
}


@pytest.mark.parametrize("code", JS_FREE)
def test_javascript_that_only_prints_is_inert(code: str) -> None:
    from tether.classify.jsinert import not_inert as js_not_inert

    assert js_not_inert(code.encode().decode("unicode_escape")) is None


@pytest.mark.parametrize(("code", "why"), JS_HELD.items())
def test_javascript_that_may_do_more_is_not(code: str, why: str) -> None:
    from tether.classify.jsinert import not_inert as js_not_inert

    got = js_not_inert(code.encode().decode("unicode_escape"))
    assert got is not None and why in got, got


def test_node_inline_code_is_judged_by_its_content(tmp_path: Path) -> None:
    ctx = Context(cwd=str(tmp_path))
    for free in ("node -e 'console.log(1)'", "node --eval 'console.log(1)'", "node -p '1 + 1'", "nodejs -e 'Math.PI'"):
        assert classify_shell(free, ctx).classes == {"repo.read"}, free
    for held in (
        "node -e 'console.log(process.env)'",
        "node -r ./x.js -e 'console.log(1)'",
        "node -e 'console.log(1)' --require ./x.js",
        'node -e "$CODE"',
        "node --import ./x.mjs -p 1",
        "NODE_OPTIONS=--require=./x.js node -e 'console.log(1)'",
    ):
        assert "unknown" in classify_shell(held, ctx).classes, held
