"""Shells, interpreters and builtins that run code: bash -c, eval, source, python, node, awk, cd.

Nested shell text is classified recursively; inline code in any other language is ``unknown``.
"""

from __future__ import annotations

import os
import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.perlsub import edit_args, substitutes_only
from tether.classify.programs import read_text, unreadable
from tether.classify.pyinert import not_inert
from tether.classify.scan import Cmd, Handler, Scan

_SHELL_VALUE_OPTS: Final = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
#: A script argument that is the shell's own input.
_STDIN_FILES: Final = frozenset({"/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"})


def run_script(scan: Scan, cmd: Cmd, path: str, what: str) -> None:
    """Classify the shell script at ``path`` by its content; ``unknown`` when it cannot be read."""
    text = cmd.text
    if PH in path:
        scan.add("unknown", f"{what} runs a script only known at run time", text)
        return
    p = scan.path(path, "exec", text, kind="script")
    if p is None:
        scan.add("unknown", f"{what} runs a script only known at run time", text)
    elif scan.wrote(p):
        scan.add("unknown", f"{what} runs {path}, which this command writes first", text)
    else:
        code = read_text(p)
        if code is None:
            scan.add("unknown", f"{what} runs {path}, which the classifier could not read: {unreadable(p)}", text)
        else:
            scan.shell(code, text)


def _stdin_shell(scan: Scan, cmd: Cmd, what: str) -> None:
    stdin = cmd.stdin
    if stdin is None:
        scan.add("unknown", f"{what} reads commands from the terminal", cmd.text)
    elif PH in stdin:
        scan.add("unknown", f"{what} runs commands piped in from another command", cmd.text)
    else:
        scan.shell(stdin, cmd.text)


def _shell(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    i = 0
    inline = False
    from_stdin = False
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a in _SHELL_VALUE_OPTS:
            i += 2
            continue
        if a.startswith("--"):
            if a == "--command":
                inline = True
            i += 1
            continue
        if a[:1] in ("-", "+") and len(a) > 1:
            if a[0] == "-" and "c" in a[1:]:
                inline = True
            if "s" in a[1:]:
                from_stdin = True
            i += 1
            continue
        break
    if inline:
        if i < len(args):
            scan.shell(args[i], text)
        else:
            scan.fail(f"{cmd.name} -c without a command", text)
    elif i < len(args) and not from_stdin and args[i] not in _STDIN_FILES:
        if cmd.name in ("fish", "csh", "tcsh"):
            scan.add("unknown", f"{cmd.name} runs script {args[i]}", text)
            scan.path(args[i], "exec", text, kind="script")
        else:
            run_script(scan, cmd, args[i], cmd.name)
    else:
        _stdin_shell(scan, cmd, cmd.name)


def _eval(scan: Scan, cmd: Cmd) -> None:
    code = " ".join(cmd.args)
    if not code:
        scan.add("repo.read", "eval of nothing", cmd.text)
    elif PH in code:
        scan.add("unknown", "eval of text only known at run time", cmd.text)
    else:
        scan.shell(code, cmd.text)


def _source(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    if not args:
        scan.fail(f"{cmd.name} without a file", text)
        return
    target = args[0]
    if PH in target:
        scan.add("unknown", f"{cmd.name} runs shell code only known at run time", text)
        return
    if target.endswith(("/bin/activate", "/bin/activate.fish", "/bin/activate.csh")) or target in (
        "activate",
        "/opt/homebrew/bin/brew",
    ):
        scan.path(target, "read", text)
        scan.add("repo.read", "activates a virtual environment", text)
        return
    run_script(scan, cmd, target, cmd.name)


# ------------------------------------------------------------------------------------------ python

#: ``python -m <module>`` -> (class, reason)
_PY_MODULES: Final[dict[str, tuple[str, str]]] = {
    **{
        m: ("tests.run", f"python -m {m} runs tests or linters")
        for m in (
            "pytest",
            "unittest",
            "doctest",
            "mypy",
            "ruff",
            "black",
            "isort",
            "flake8",
            "pylint",
            "coverage",
            "tox",
            "nox",
            "pyright",
            "build",
            "compileall",
            "py_compile",
            "pyflakes",
            "pycodestyle",
            "pydocstyle",
            "bandit",
            "nose",
            "nose2",
            "timeit",
            "tabnanny",
            "pytest_benchmark",
            "hatchling",
            "sphinx",
            "mkdocs",
            "pre_commit",
            "uvicorn",
            "flask",
            "gunicorn",
            "hypercorn",
            "streamlit",
            "jupyter",
            "nbconvert",
            "pdoc",
            "vulture",
            "radon",
        )
    },
    **{
        m: ("deps.install", f"python -m {m} installs packages")
        for m in ("venv", "virtualenv", "ensurepip", "pipx", "uv", "poetry", "pdm", "pipenv", "conda")
    },
    **{m: ("repo.read", f"python -m {m} only prints") for m in ("json.tool", "site", "sysconfig", "platform", "this")},
    "http.server": ("unknown", "python -m http.server serves files over the network"),
    "smtpd": ("message.external", "python -m smtpd relays mail"),
    "twine": ("deploy.production", "twine uploads a package"),
}
_PY_VALUE_OPTS: Final = "WXQ"


def _python(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-V", "--version", "-h", "--help", "-VV"):
            scan.add("repo.read", "python --version", text)
            return
        if a in ("-c",) or (a.startswith("-") and not a.startswith("--") and "c" in a[1:] and "-W" not in a):
            code = args[i + 1] if a == "-c" and i + 1 < len(args) else None
            why = (
                "the code is only known at run time"
                if code is None or PH in code
                else not_inert(code, scan.cwd, _python_path_set(cmd))
            )
            if why is None:
                scan.add("repo.read", "python runs inline code that only computes", text)
            else:
                scan.add("unknown", f"python runs inline code ({why})", text)
            return
        if a == "-m" or (a.startswith("-m") and len(a) > 2):
            mod = a[2:] if len(a) > 2 else (args[i + 1] if i + 1 < len(args) else "")
            rest = args[i + (1 if len(a) > 2 else 2) :]
            _python_module(scan, cmd, mod, rest)
            return
        if a == "-i":
            scan.add("unknown", "python -i opens an interactive interpreter", text)
            return
        if a in ("-W", "-X", "-Q"):
            i += 2
            continue
        if a.startswith("-") and a != "-":
            i += 1
            continue
        break
    if i >= len(args) or args[i] == "-":
        if cmd.stdin is not None and cmd.stdin.strip() == "":
            scan.add("repo.read", "python with empty input", text)
        else:
            scan.add("unknown", "python runs code from its input", text)
        return
    script, rest = args[i], args[i + 1 :]
    base = script.rsplit("/", 1)[-1]
    if base == "manage.py":
        _django(scan, cmd, rest)
        scan.path(script, "exec", text, kind="script")
        return
    if base == "setup.py":
        verb = next((r for r in rest if not r.startswith("-")), "")
        if verb in ("test", "build", "build_ext", "check", "develop", "egg_info", "sdist", "bdist_wheel"):
            scan.add("tests.run", f"setup.py {verb} builds or tests", text)
        elif verb in ("install",):
            scan.add("deps.install", "setup.py install installs a package", text)
        elif "upload" in rest or verb in ("upload", "register"):
            scan.add("deploy.production", "setup.py upload publishes a package", text)
        else:
            scan.add("unknown", f"setup.py {verb}", text)
        return
    p = scan.path(script, "exec", text, kind="script")
    if p is None or PH in p:
        why = "it is only known at run time"
    elif scan.wrote(p):
        why = "this command writes it first"
    else:
        code = read_text(p)
        why = (
            f"the classifier could not read it: {unreadable(p)}"
            if code is None
            else not_inert(code, os.path.dirname(os.path.realpath(p)), _python_path_set(cmd))
        )
    if why is None:
        scan.add("repo.read", f"python runs {script}, which only computes", text)
    else:
        scan.add("unknown", f"python runs script {script} ({why})", text)


def _python_path_set(cmd: Cmd) -> bool:
    """Whether the command sets where Python imports from (so no import is known to be the standard one)."""
    return any(k in ("PYTHONPATH", "PYTHONHOME") for k, _ in cmd.env)


def _python_module(scan: Scan, cmd: Cmd, mod: str, rest: list[str]) -> None:
    text = cmd.text
    if mod == "pip":
        scan.run(cmd.sub(["pip", *rest]))
        return
    if mod == "tether":
        scan.run(cmd.sub(["tether", *rest]))
        return
    if mod == "django":
        _django(scan, cmd, rest)
        return
    if mod == "twine" and rest[:1] == ["check"]:
        scan.add("tests.run", "twine check", text)
        return
    known = _PY_MODULES.get(mod)
    if known is None:
        scan.add("unknown", f"python -m {mod or '?'}", text)
    else:
        scan.add(known[0], known[1], text)


_DJANGO: Final[dict[str, tuple[str, str]]] = {
    **{c: ("tests.run", f"manage.py {c}") for c in ("test", "runserver", "check", "collectstatic", "compilemessages")},
    **{
        c: ("repo.read", f"manage.py {c} only reads")
        for c in ("showmigrations", "sqlmigrate", "diffsettings", "dumpdata", "inspectdb", "help", "version")
    },
    **{c: ("pr.draft", f"manage.py {c} writes project files") for c in ("makemigrations", "startapp", "makemessages")},
    "flush": ("data.delete", "manage.py flush deletes all data"),
    "sqlflush": ("repo.read", "manage.py sqlflush prints SQL"),
    "createsuperuser": ("auth.modify", "manage.py createsuperuser adds an admin user"),
    "changepassword": ("credentials.rotate", "manage.py changepassword changes a password"),
}


def _django(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    sub = next((r for r in rest if not r.startswith("-")), "")
    known = _DJANGO.get(sub)
    if known is None:
        scan.add("unknown", f"manage.py {sub or '?'}", cmd.text)
    else:
        scan.add(known[0], known[1], cmd.text)


# -------------------------------------------------------------------------------- other languages

#: Interpreter -> options that take inline code.
_INLINE: Final[dict[str, frozenset[str]]] = {
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "nodejs": frozenset({"-e", "--eval", "-p", "--print"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "php": frozenset({"-r", "-B", "-R", "-E", "-F"}),
    "lua": frozenset({"-e"}),
    "luajit": frozenset({"-e"}),
    "rscript": frozenset({"-e"}),
    "r": frozenset({"-e"}),
    "julia": frozenset({"-e", "-E", "--eval", "--print"}),
    "osascript": frozenset({"-e"}),
    "pwsh": frozenset({"-c", "-command", "-Command", "-EncodedCommand", "-e", "-enc"}),
    "powershell": frozenset({"-c", "-command", "-Command", "-EncodedCommand", "-e", "-enc"}),
    "tclsh": frozenset(),
    "groovy": frozenset({"-e"}),
    "elixir": frozenset({"-e"}),
    "erl": frozenset({"-eval"}),
    "java": frozenset(),
    "jshell": frozenset(),
    "irb": frozenset(),
    "ipython": frozenset({"-c"}),
    "bpython": frozenset(),
    "tsx": frozenset({"-e", "--eval", "-p"}),
    "ts-node": frozenset({"-e", "--eval", "-p", "--print"}),
}


def _interpreter(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    name = cmd.name
    inline = _INLINE.get(name, frozenset())
    if name == "perl" and _perl_edit(scan, cmd):
        return
    if name in ("node", "nodejs") and len(args) >= 2 and args[0] in ("-e", "--eval", "-p", "--print"):
        # node -e CODE [ARGS]: nothing before the code (-r and --import load modules first), nothing after it
        # that node would read as its own option
        from tether.classify.jsinert import not_inert as js_not_inert  # start-up: its grammar loads on first use

        code = args[1]
        why = (
            "the code is only known at run time"
            if PH in code
            else "node options follow the code"
            if any(a.startswith("-") for a in args[2:])
            else js_not_inert(code)
        )
        if why is None:
            scan.add("repo.read", f"{name} runs inline code that only computes", text)
        else:
            scan.add("unknown", f"{name} runs inline code ({why})", text)
        return
    for a in args:
        if a in ("--version", "-v", "-V", "-version", "--help", "-h") and len(args) == 1:
            scan.add("repo.read", f"{name} --version", text)
            return
        if a in inline or (name in ("perl", "ruby") and a.startswith("-") and ("e" in a[1:] or "E" in a[1:])):
            scan.add("unknown", f"{name} runs inline code (the classifier does not read {name} code)", text)
            return
        if name in ("node", "nodejs") and a == "--test":
            scan.add("tests.run", "node --test runs tests", text)
            return
    script = next((a for a in args if not a.startswith("-")), None)
    if script is None:
        scan.add("unknown", f"{name} runs code from its input", text)
        return
    scan.add("unknown", f"{name} runs {script} (the classifier does not read {name} scripts)", text)
    scan.path(script, "exec", text, kind="script")


def _perl_edit(scan: Scan, cmd: Cmd) -> bool:
    """``perl -pi -e 's/a/b/g' FILES``: only substitutions (``perlsub``) edit the files, like ``sed -i``."""
    parsed = edit_args(cmd.args)
    if parsed is None:
        return False
    code, files, inplace = parsed
    if not all(PH not in c and substitutes_only(c) for c in code):
        return False
    for f in files:
        scan.path(f, "write" if inplace else "read", cmd.text)
    if inplace and cmd.tail:
        scan.path(PH, "write", cmd.text)
    if inplace:
        scan.add("pr.draft", "perl -i edits files with substitutions only", cmd.text)
    else:
        scan.add("repo.read", "perl prints text with substitutions only", cmd.text)
    return True


# ------------------------------------------------------------------------------------------ awk


_AWK_OUTPUT: Final = re.compile(r"\bprintf?\b[^;}\n]*>|\bsystem\s*\(|\|\s*getline|\|\s*\"|\bclose\s*\(")


def _awk(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "fvFiWE", frozenset({"--file", "--assign", "--field-separator", "--include"}))
    text = cmd.text
    progfiles = o.all("-f", "--file", "-E")
    pos = o.pos
    if progfiles:
        for f in progfiles:
            scan.path(f, "read", text)
        scan.add("unknown", f"{cmd.name} runs a program from a file", text)
    else:
        prog = pos[0] if pos else ""
        pos = pos[1:]
        if PH in prog:
            scan.add("unknown", f"{cmd.name} program only known at run time", text)
        elif _AWK_OUTPUT.search(prog.replace("||", " ")):
            scan.add("unknown", f"{cmd.name} program runs commands or writes files", text)
    inplace = "inplace" in o.all("-i", "--include")
    for p in pos:
        if "=" in p and p.split("=", 1)[0].isidentifier():
            continue
        scan.path(p, "write" if inplace else "read", text)
    scan.add("pr.draft" if inplace else "repo.read", f"{cmd.name} {'edits' if inplace else 'reads'} files", text)


# ------------------------------------------------------------------------------------- builtins


def _cd(scan: Scan, cmd: Cmd) -> None:
    args = [a for a in cmd.args if a not in ("-L", "-P", "-e", "-@", "--")]
    text = cmd.text
    if cmd.name == "popd":
        scan.cwd = PH
    elif not args or args[0] == "~":
        scan.cwd = scan.home
    elif args[0] == "-" or PH in args[0]:
        scan.cwd = PH
    else:
        p = scan.path(args[0], "read", text)
        scan.cwd = p or PH
    scan.add("repo.read", f"{cmd.name} changes directory", text)


def _alias(scan: Scan, cmd: Cmd) -> None:
    defined = False
    for a in cmd.args:
        name, eq, value = a.partition("=")
        if eq:
            defined = True
            if PH in value:
                scan.add("unknown", f"alias {name} runs text only known at run time", cmd.text)
            else:
                scan.shell(value, cmd.text)
    if not defined:
        scan.add("repo.read", "alias lists aliases", cmd.text)


def _trap(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    if not args or args[0] in ("-l", "-p", "--"):
        scan.add("repo.read", "trap lists traps", cmd.text)
        return
    handler = args[0]
    if handler in ("", "-") or handler.isdigit():
        scan.add("repo.read", "trap resets a handler", cmd.text)
    else:
        scan.shell(handler, cmd.text)


def _busybox(scan: Scan, cmd: Cmd) -> None:
    if cmd.args:
        scan.run(cmd.sub(cmd.args))
    else:
        scan.add("repo.read", "busybox lists applets", cmd.text)


def _coproc(scan: Scan, cmd: Cmd) -> None:
    if cmd.args:
        scan.run(cmd.sub(cmd.args))


HANDLERS: Final[dict[str, Handler]] = {
    **{n: _shell for n in ("bash", "sh", "zsh", "dash", "ksh", "ash", "mksh", "fish", "rbash", "yash", "csh", "tcsh")},
    "eval": _eval,
    "source": _source,
    ".": _source,
    "python": _python,
    "pypy": _python,
    "python3": _python,
    "py": _python,
    **{n: _interpreter for n in _INLINE},
    **{n: _awk for n in ("awk", "gawk", "mawk", "nawk")},
    "cd": _cd,
    "pushd": _cd,
    "popd": _cd,
    "chdir": _cd,
    "alias": _alias,
    "trap": _trap,
    "busybox": _busybox,
    "coproc": _coproc,
}
