"""Python's package managers and runners: pip, uv, uvx, pipx, poetry, pipenv, pdm, hatch, rye, conda; pytest,
tox (its environments' commands from tox.ini), twine."""

from __future__ import annotations

from typing import Final

from tether.classify import scripts
from tether.classify.argv import first_positional, parse
from tether.classify.paths import PH
from tether.classify.pkg.verbs import (
    DEPLOY,
    DEPS,
    DLX,
    DRAFT,
    READ,
    RUN,
    SCRIPT,
    TESTS,
    UNKNOWN,
    each,
    install_places,
    table,
)
from tether.classify.scan import Cmd, Handler, Scan

_PIP: Final[dict[str, str]] = {
    **each(DEPS, "install", "uninstall", "download", "wheel"),
    **each(READ, "list", "show", "freeze", "check", "help", "debug", "inspect", "index", "hash", "search",
         "completion"),
}


def _pip(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    o = parse(args, "rcieft", frozenset({"--requirement", "--constraint", "--index-url", "--extra-index-url",
                                           "--editable", "--find-links", "--target", "--prefix", "--root",
                                           "--python", "--log", "--cache-dir", "--trusted-host", "--src"}))
    verb = o.pos[0] if o.pos else ""
    for r in o.all("-r", "--requirement", "-c", "--constraint"):
        scan.path(r, "read", text)
    for u in o.all("-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
        url = scan.parse_url(u)
        if url:
            scan.url(url)
    if verb in ("install", "download", "wheel"):
        install_places(scan, cmd, o.pos[1:], o.all("-t", "--target", "--prefix", "--root"),
                        o.has("--user") and verb == "install")
    if verb in ("config", "cache"):
        sub = o.pos[1] if len(o.pos) > 1 else ""
        klass = READ if sub in ("list", "get", "debug", "dir", "info", "") else (DRAFT if verb == "cache" else UNKNOWN)
        scan.add(klass, f"{cmd.name} {verb} {sub}", text)
    elif not verb:
        scan.add(READ, f"{cmd.name} without a command", text)
    else:
        scan.add(_PIP.get(verb, UNKNOWN), f"{cmd.name} {verb}", text)


_UV: Final[dict[str, str]] = {
    **each(DEPS, "add", "remove", "sync", "lock", "venv", "self"),
    **each(READ, "tree", "help", "version", "export"),
    **each(TESTS, "build", "format"),
    "run": RUN,
    "publish": DEPLOY,
    "init": DRAFT,
}
_UV_RUN_OPTS: Final = (
    "pw",
    frozenset({"--with", "--with-editable", "--with-requirements", "--python", "--project", "--directory",
               "--package", "--extra", "--group", "--env-file", "--index", "--from", "--only-group",
               "--no-group", "--default-index", "--index-url", "--extra-index-url"}),
)


def _uv(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    idx = first_positional(args, "p", frozenset({"--directory", "--project", "--python", "--cache-dir",
                                                  "--config-file", "--color"}))
    verb = args[idx] if idx < len(args) else ""
    rest = args[idx + 1 :]
    if verb == "pip":
        _pip(scan, cmd.sub(["uv-pip", *rest]))
    elif verb in ("tool", "python", "cache"):
        sub = rest[0] if rest else ""
        if verb == "tool" and sub == "run":
            _uvx(scan, cmd.sub(["uvx", *rest[1:]]))
        elif sub in ("list", "dir", "find", ""):
            scan.add(READ, f"uv {verb} {sub}", text)
        elif verb == "cache":
            scan.add(DRAFT, f"uv cache {sub}", text)
        else:
            scan.add(DEPS, f"uv {verb} {sub}", text)
    elif verb == "run":
        j = first_positional(rest, _UV_RUN_OPTS[0], _UV_RUN_OPTS[1])
        inner = rest[j:]
        if "-m" in rest[:j] or "--module" in rest[:j]:
            inner = ["python", "-m", *inner]
        if not inner:
            scan.add(UNKNOWN, "uv run without a command", text)
        elif inner[0].endswith(".py"):
            scan.run(cmd.sub(["python", *inner]))
        else:
            scan.run(cmd.sub(inner))
        if any(a.startswith("--with") for a in rest[:j]):
            scan.add(DEPS, "uv run --with installs packages", text)
    elif not verb:
        scan.add(READ, "uv without a command", text)
    else:
        scan.add(_UV.get(verb, UNKNOWN), f"uv {verb}", text)


def _uvx(scan: Scan, cmd: Cmd) -> None:
    rest = cmd.args
    j = first_positional(rest, _UV_RUN_OPTS[0], _UV_RUN_OPTS[1])
    inner = rest[j:]
    if any(a in ("--version", "--help", "-h") for a in rest[:j]) and not inner:
        scan.add(READ, f"{cmd.name} --version", cmd.text)
        return
    scan.add(DEPS, f"{cmd.name} fetches and runs a tool", cmd.text)
    if inner:
        tool = inner[0].split("@", 1)[0].split("==", 1)[0]
        scan.run(cmd.sub([tool, *inner[1:]]))


_POETRY: Final[dict[str, str]] = {
    **each(DEPS, "install", "add", "remove", "update", "lock", "sync", "self", "env", "source"),
    **each(READ, "show", "check", "about", "search", "list", "help", "export", "debug"),
    **each(TESTS, "build"),
    "run": RUN,
    "shell": UNKNOWN,
    "publish": DEPLOY,
    **each(DRAFT, "init", "new", "version"),
    "config": UNKNOWN,
}
_PIPENV: Final[dict[str, str]] = {
    **each(DEPS, "install", "uninstall", "update", "upgrade", "lock", "sync", "clean"),
    **each(READ, "graph", "check", "requirements", "scripts", "verify", "audit"),
    "run": RUN,
    "shell": UNKNOWN,
    "open": UNKNOWN,
}
_PDM: Final[dict[str, str]] = {
    **each(DEPS, "add", "remove", "install", "sync", "update", "lock", "use", "venv", "self", "import"),
    **each(READ, "list", "show", "info", "search", "config", "outdated", "completion", "export", "fix"),
    **each(TESTS, "build"),
    "run": SCRIPT,
    "publish": DEPLOY,
    "init": DRAFT,
}
_HATCH: Final[dict[str, str]] = {
    **each(TESTS, "test", "build", "fmt", "clean"),
    "run": SCRIPT,
    "env": DEPS,
    "dep": READ,
    "status": READ,
    "project": READ,
    "shell": UNKNOWN,
    "publish": DEPLOY,
    **each(DRAFT, "new", "version"),
    "python": DEPS,
}
_RYE: Final[dict[str, str]] = {
    **each(DEPS, "sync", "add", "remove", "lock", "install", "fetch", "pin", "toolchain", "tools", "self"),
    **each(TESTS, "test", "lint", "fmt", "build"),
    "run": SCRIPT,
    "publish": DEPLOY,
    **each(READ, "show", "list", "version"),
    "init": DRAFT,
    "shell": UNKNOWN,
}
_CONDA: Final[dict[str, str]] = {
    **each(DEPS, "install", "create", "update", "upgrade", "remove", "uninstall", "env", "self-update"),
    **each(READ, "list", "info", "search", "activate", "deactivate", "doctor", "compare", "notices"),
    "clean": DRAFT,
    "run": RUN,
    "config": UNKNOWN,
    "init": UNKNOWN,
    "shell": UNKNOWN,
}
_PIPX: Final[dict[str, str]] = {
    **each(DEPS, "install", "uninstall", "upgrade", "upgrade-all", "inject", "uninject", "reinstall",
         "reinstall-all", "uninstall-all", "install-all"),
    **each(READ, "list", "environment", "completions"),
    "ensurepath": UNKNOWN,
    "run": DLX,
}


def _pytest(scan: Scan, cmd: Cmd) -> None:
    """pytest writes (and empties) ``--basetemp``; otherwise it works in the agent's TMPDIR."""
    for a in cmd.args:
        if a.startswith("--basetemp="):
            scan.path(a.split("=", 1)[1], "write", cmd.text)
    if "--basetemp" in cmd.args:
        k = cmd.args.index("--basetemp")
        if k + 1 < len(cmd.args):
            scan.path(cmd.args[k + 1], "write", cmd.text)
    scan.add(TESTS, f"{cmd.name} runs tests", cmd.text)


def _tox(scan: Scan, cmd: Cmd) -> None:
    """``tox [-e ENVS] [-- ARGS]``: the environments' commands from tox.ini."""
    args = cmd.args
    sep = args.index("--") if "--" in args else len(args)
    o = parse(args[:sep], "ecnpx", frozenset({"--conf", "--workdir", "--root", "-f", "--override", "--parallel"}))
    if o.has("-l", "--listenvs", "-a", "--listenvs-all", "--version", "--help", "-h", "--showconfig") or (
        o.pos[:1] in (["list"], ["config"], ["l"], ["c"])
    ):
        scan.add(READ, "tox lists its environments", cmd.text)
        return
    envs = o.all("-e") or [v for k, v in cmd.env if k == "TOXENV" and PH not in v]
    if o.get("-c", "--conf") is not None:
        scan.add(UNKNOWN, "tox reads a configuration named on the command line", cmd.text)
    elif not scripts.run(scan, cmd, "tox", ",".join(envs), [*envs, *args[sep:]]):
        scan.add(TESTS, "tox runs tests", cmd.text)


def _twine(scan: Scan, cmd: Cmd) -> None:
    verb = cmd.args[0] if cmd.args else ""
    if verb == "upload" or verb == "register":
        scan.add(DEPLOY, f"twine {verb} publishes a package", cmd.text)
    elif verb == "check":
        scan.add(TESTS, "twine check", cmd.text)
    else:
        scan.add(READ if verb in ("--version", "--help", "-h", "") else UNKNOWN, f"twine {verb}".strip(), cmd.text)


HANDLERS: Final[dict[str, Handler]] = {
    "twine": _twine,
    "pytest": _pytest,
    "py.test": _pytest,
    "tox": _tox,
    "pip": _pip,
    "pip3": _pip,
    "uv-pip": _pip,
    "uv": _uv,
    "uvx": _uvx,
    "pipx": table(_PIPX, UNKNOWN, "", frozenset({"--python", "--spec"}),
                  run_opts=("", frozenset({"--spec", "--python", "--pip-args"}))),
    "poetry": table(_POETRY, UNKNOWN, "C", frozenset({"--directory", "--project"})),
    "pipenv": table(_PIPENV, UNKNOWN, "", frozenset({"--python"}), empty=DEPS),
    "pdm": table(_PDM, SCRIPT, "p", frozenset({"--project"})),
    "hatch": table(_HATCH, UNKNOWN, "e", frozenset({"--env"})),
    "rye": table(_RYE, UNKNOWN),
    **{
        n: table(_CONDA, UNKNOWN, "np", frozenset({"--name", "--prefix"}),
                 run_opts=("np", frozenset({"--name", "--prefix", "--cwd"})))
        for n in ("conda", "mamba", "micromamba")
    },
}
