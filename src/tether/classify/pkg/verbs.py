"""The package-manager families' shared vocabulary: the classes, ``verb -> class`` tables and the
handler made from one (``table``), and project scripts judged by their definition (``scripts``) or, with
none, by their name (``script_class``).

A table's value is a class or a special verb: ``@run`` classifies the command that follows, ``@script``
classifies a project script by its name, ``@dlx`` fetches and runs a package (deps.install plus the command).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tether.classify import scripts
from tether.classify.argv import first_positional
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

NO_OPTS: Final[frozenset[str]] = frozenset()

READ: Final = "repo.read"
TESTS: Final = "tests.run"
DEPS: Final = "deps.install"
DRAFT: Final = "pr.draft"
DEPLOY: Final = "deploy.production"
DELETE: Final = "data.delete"
UNKNOWN: Final = "unknown"
RUN: Final = "@run"
SCRIPT: Final = "@script"
DLX: Final = "@dlx"


def each(klass: str, *verbs: str) -> dict[str, str]:
    """``verbs`` all mapped to ``klass``: a table's entries, spread into it."""
    return dict.fromkeys(verbs, klass)


# ------------------------------------------------------------------------------- script names

_TEST_WORDS: Final = (
    "test", "lint", "build", "check", "typecheck", "type-check", "types", "tsc", "format", "fmt", "prettier",
    "eslint", "stylelint", "compile", "coverage", "cov", "e2e", "ci", "verify", "validate", "bench", "storybook",
    "docs", "doc", "dev", "start", "serve", "preview", "watch", "clean", "generate", "codegen", "gen", "spec",
    "unit", "integration", "all", "default", "pytest", "mypy", "ruff", "vet", "tidy", "style", "analyze",
    "audit", "size", "package", "dist", "bundle", "prebuild", "postbuild", "pretest", "posttest", "jest",
    "vitest", "mocha", "cypress", "playwright", "smoke", "perf", "benchmark", "fix", "prepare", "assets",
    "css", "js", "proto", "schema", "story", "site", "html", "pdf", "run", "local", "debug", "help", "list",
)
DEPLOY_WORDS: Final = ("deploy", "release", "publish", "ship", "upload", "prod", "promote", "rollout", "push")
_DEPS_WORDS: Final = ("install", "setup", "bootstrap", "deps", "dependencies", "vendor", "update-deps", "upgrade")
_DATA_WORDS: Final = ("migrate", "migration", "seed", "db", "database", "reset", "drop", "flush", "restore")


def script_class(name: str) -> str:
    """Class of a project script or make target, from its name (``test:unit``, ``deploy-prod``)."""
    n = name.lower()
    if not n or PH in n:
        return UNKNOWN
    words = n.replace(":", " ").replace("-", " ").replace("_", " ").replace(".", " ").replace("/", " ").split()
    if any(w.startswith(DEPLOY_WORDS) for w in words):
        return DEPLOY
    if any(w.startswith(_DATA_WORDS) for w in words):
        return UNKNOWN
    if words and words[0].startswith(_DEPS_WORDS):
        return DEPS
    if words and words[0].startswith(_TEST_WORDS):
        return TESTS
    return UNKNOWN


_WORKSPACE_FLAGS: Final = frozenset({"-w", "--workspace", "--workspaces", "-ws", "-r", "--recursive", "--filter",
                                     "-F", "--include-workspace-root"})


def run_script(scan: Scan, cmd: Cmd, tool: str, name: str, args: list[str] | None = None,
               where: str | None = None) -> None:
    """A project script: what its definition runs (``scripts``), or, with no definition file, its name."""
    if args is not None and name and PH not in name:
        if PH in scan.cwd and where is None:
            scan.add(UNKNOWN, f"{tool} runs script {name} of a folder only known at run time", cmd.text)
            return
        rest = args[1:] if args[:1] == ["--"] else args
        workspaces = tool in scripts.PKG_TOOLS and any(
            a in _WORKSPACE_FLAGS or a.startswith(("--workspace=", "--filter=")) for a in cmd.args)
        if workspaces and scripts.plan_for(scan, cmd, tool, name, rest, where) is not None:
            scan.add(UNKNOWN, f"{tool} runs script {name} of other workspace packages", cmd.text)
            return
        if scripts.run(scan, cmd, tool, name, rest, where):
            return
    klass = script_class(name)
    if klass == UNKNOWN:
        scan.add(UNKNOWN, f"{tool} runs project script {name or '?'}", cmd.text)
    else:
        scan.add(klass, f"{tool} runs project script {name}", cmd.text)


# ----------------------------------------------------------------------------- table machinery


def apply(scan: Scan, cmd: Cmd, tool: str, klass: str, verb: str, rest: list[str]) -> None:
    text = cmd.text
    if klass == RUN:
        if rest:
            scan.run(cmd.sub(rest))
        else:
            scan.add(UNKNOWN, f"{tool} {verb} without a command", text)
    elif klass == SCRIPT:
        k = next((i for i, r in enumerate(rest) if not r.startswith("-")), -1)
        if k < 0:
            scan.add(READ, f"{tool} {verb} lists scripts", text)
        else:
            run_script(scan, cmd, tool, rest[k], rest[k + 1 :], folder_option(cmd))
    elif klass == DLX:
        scan.add(DEPS, f"{tool} {verb} downloads and runs a package", text)
        if rest:
            scan.run(cmd.sub(rest))
    else:
        scan.add(klass, f"{tool} {verb}".strip(), text)


def table(
    rows: dict[str, str],
    default: str,
    short_val: str = "",
    long_val: Iterable[str] = NO_OPTS,
    empty: str = READ,
    run_opts: tuple[str, frozenset[str]] = ("", NO_OPTS),
) -> Handler:
    """A handler looking the first positional argument up in ``rows``.

    ``default`` may be a class, ``@script`` (the verb is a script name) or ``@run``. ``empty`` is
    the class when there is no verb. ``run_opts`` are the options of ``@run`` verbs taking a value.
    """
    longs = frozenset(long_val)

    def handle(scan: Scan, cmd: Cmd) -> None:
        args = cmd.args
        idx = first_positional(args, short_val, longs)
        for a in args[:idx]:
            if a in ("--version", "-v", "-V", "--help", "-h") and idx >= len(args):
                scan.add(READ, f"{cmd.name} {a}", cmd.text)
                return
        if idx >= len(args):
            scan.add(empty, f"{cmd.name} without a subcommand", cmd.text)
            return
        verb = args[idx]
        rest = args[idx + 1 :]
        klass = rows.get(verb)
        if klass is None:
            if default == SCRIPT:
                run_script(scan, cmd, cmd.name, verb, rest, folder_option(cmd))
                return
            if default == RUN:
                scan.run(cmd.sub(args[idx:]))
                return
            klass = default
        if klass in (RUN, DLX):
            ridx = first_positional(rest, run_opts[0], run_opts[1])
            rest = rest[ridx:]
        apply(scan, cmd, cmd.name, klass, verb, rest)

    return handle


_WHERE: Final = {"npm": ("--prefix",), "yarn": ("--cwd",), "yarnpkg": ("--cwd",), "pnpm": ("-C", "--dir"),
                 "bun": ("--cwd",), "composer": ("-d", "--working-dir"), "pdm": ("-p", "--project")}


def folder_option(cmd: Cmd) -> str | None:
    """The folder a package manager is pointed at (``npm --prefix DIR``), if any."""
    opts = _WHERE.get(cmd.name)
    if not opts:
        return None
    args = cmd.args
    for k, a in enumerate(args):
        for o in opts:
            if a == o and k + 1 < len(args):
                return args[k + 1]
            if a.startswith(o + "="):
                return a[len(o) + 1 :]
    return None


def install_places(scan: Scan, cmd: Cmd, specs: list[str], folders: list[str], user: bool) -> None:
    """Where an install fetches from and writes to: a requirement given as a URL (``git+https://...``) is a
    host the policy checks against ``scope.hosts``; ``--target``/``--prefix`` folders are written (the policy
    checks them against the scope); ``--user`` installs into the home directory, outside the project."""
    for spec in specs:
        url_text = spec.split("@", 1)[1].strip() if " @ " in spec or "@ " in spec else spec
        if "://" in url_text:
            u = scan.parse_url(url_text.split("+", 1)[1] if url_text.startswith(("git+", "hg+", "svn+", "bzr+"))
                               else url_text)
            if u:
                scan.url(u)
            else:
                scan.add(UNKNOWN, f"{cmd.name} installs from a location it cannot read: {spec[:80]}", cmd.text)
    for f in folders:
        scan.path(f, "write", cmd.text)
    if user:
        scan.add(UNKNOWN, f"{cmd.name} install --user installs into the home directory, outside the project",
                 cmd.text)
