"""Package managers, language toolchains, build systems and task runners.

Most tools are a table ``verb -> class``; a few verbs are special: ``@run`` classifies the command
that follows, ``@script`` classifies a project script by its name, ``@dlx`` fetches and runs a
package (deps.install plus the command).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tether.classify import scripts
from tether.classify.argv import first_positional, parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_E: Final[frozenset[str]] = frozenset()

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


def _t(klass: str, *verbs: str) -> dict[str, str]:
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
_DEPLOY_WORDS: Final = ("deploy", "release", "publish", "ship", "upload", "prod", "promote", "rollout", "push")
_DEPS_WORDS: Final = ("install", "setup", "bootstrap", "deps", "dependencies", "vendor", "update-deps", "upgrade")
_DATA_WORDS: Final = ("migrate", "migration", "seed", "db", "database", "reset", "drop", "flush", "restore")


def script_class(name: str) -> str:
    """Class of a project script or make target, from its name (``test:unit``, ``deploy-prod``)."""
    n = name.lower()
    if not n or PH in n:
        return UNKNOWN
    words = n.replace(":", " ").replace("-", " ").replace("_", " ").replace(".", " ").replace("/", " ").split()
    if any(w.startswith(_DEPLOY_WORDS) for w in words):
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


def _script(scan: Scan, cmd: Cmd, tool: str, name: str, args: list[str] | None = None,
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


def _apply(scan: Scan, cmd: Cmd, tool: str, klass: str, verb: str, rest: list[str]) -> None:
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
            _script(scan, cmd, tool, rest[k], rest[k + 1 :], _where(cmd))
    elif klass == DLX:
        scan.add(DEPS, f"{tool} {verb} downloads and runs a package", text)
        if rest:
            scan.run(cmd.sub(rest))
    else:
        scan.add(klass, f"{tool} {verb}".strip(), text)


def _table(
    table: dict[str, str],
    default: str,
    short_val: str = "",
    long_val: Iterable[str] = _E,
    empty: str = READ,
    run_opts: tuple[str, frozenset[str]] = ("", _E),
) -> Handler:
    """A handler looking the first positional argument up in ``table``.

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
        klass = table.get(verb)
        if klass is None:
            if default == SCRIPT:
                _script(scan, cmd, cmd.name, verb, rest, _where(cmd))
                return
            if default == RUN:
                scan.run(cmd.sub(args[idx:]))
                return
            klass = default
        if klass in (RUN, DLX):
            ridx = first_positional(rest, run_opts[0], run_opts[1])
            rest = rest[ridx:]
        _apply(scan, cmd, cmd.name, klass, verb, rest)

    return handle


# ---------------------------------------------------------------------------------- javascript

_NPM: Final[dict[str, str]] = {
    **_t(DEPS, "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "add", "ci",
         "clean-install", "install-clean", "ic", "uninstall", "un", "unlink", "remove", "rm", "r", "update", "up",
         "upgrade", "udpate", "dedupe", "ddp", "link", "ln", "prune", "rebuild", "rb"),
    **_t(READ, "ls", "list", "la", "ll", "outdated", "view", "v", "info", "show", "search", "s", "se", "find",
         "help", "doctor", "whoami", "ping", "root", "bin", "prefix", "explain", "why", "fund", "docs", "home",
         "bugs", "repo", "query", "sbom", "diff", "completion", "get", "help-search"),
    **_t(TESTS, "test", "t", "tst", "tests", "start", "stop", "restart", "it", "cit", "install-test",
         "install-ci-test"),
    **_t(SCRIPT, "run", "run-script", "rum", "urn"),
    **_t(RUN, "exec", "x"),
    **_t(DEPLOY, "publish", "deprecate", "dist-tag", "dist-tags", "star", "unstar", "undeprecate"),
    "unpublish": DELETE,
    **_t("auth.modify", "owner", "author", "access", "team", "org"),
    **_t("credentials.rotate", "token", "login", "adduser", "add-user", "logout"),
    **_t(DRAFT, "version", "init", "create", "innit", "pkg", "pack", "set-script", "shrinkwrap"),
    **_t(UNKNOWN, "edit", "explore", "set", "hook"),
}


_NPM_SCRIPTS: Final = {"test": "test", "t": "test", "tst": "test", "tests": "test", "start": "start",
                        "stop": "stop", "restart": "restart"}
_WHERE: Final = {"npm": ("--prefix",), "yarn": ("--cwd",), "yarnpkg": ("--cwd",), "pnpm": ("-C", "--dir"),
                 "bun": ("--cwd",), "composer": ("-d", "--working-dir"), "pdm": ("-p", "--project")}


def _where(cmd: Cmd) -> str | None:
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


def _npm(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    longs = frozenset({"--prefix", "--workspace", "--loglevel", "--registry", "--userconfig", "--cache", "--tag"})
    o = parse(args, "wC", longs, stop_at_positional=True)
    registry = o.get("--registry")
    if registry:
        u = scan.parse_url(registry)
        if u:
            scan.url(u)
    verb = o.pos[0] if o.pos else ""
    rest = o.pos[1:]
    text = cmd.text
    if verb == "config" or verb == "c":
        sub = rest[0] if rest else ""
        scan.add(READ if sub in ("get", "list", "ls", "") else UNKNOWN, f"npm config {sub}", text)
    elif verb == "cache":
        sub = rest[0] if rest else ""
        scan.add(DRAFT if sub in ("clean", "clear", "rm", "add") else READ, f"npm cache {sub}", text)
    elif verb == "audit":
        scan.add(DEPS if "fix" in rest else READ, "npm audit", text)
    elif verb in ("exec", "x"):
        _npx(scan, cmd.sub(["npx", *rest]))
    elif not verb:
        scan.add(READ, "npm without a command", text)
    elif verb in _NPM_SCRIPTS:
        _script(scan, cmd, "npm", _NPM_SCRIPTS[verb], rest, _where(cmd))
    else:
        klass = _NPM.get(verb, UNKNOWN)
        if klass in (DEPS,) and any(a in ("-g", "--global", "--location=global") for a in args):
            scan.add(UNKNOWN, f"npm {verb} -g installs into the global prefix, outside the project", text)
        if klass in (DEPS,):
            _install_places(scan, cmd, [r for r in rest if "://" in r], [], False)
        _apply(scan, cmd, "npm", klass, verb, rest)


def _npx(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    o = parse(args, "pc", frozenset({"--package", "--call", "--cache", "--registry"}), stop_at_positional=True)
    c = o.get("-c", "--call")
    if c is not None:
        scan.shell(c, text)
        return
    if o.all("-p", "--package"):
        scan.add(DEPS, f"{cmd.name} --package fetches packages", text)
    if o.pos:
        scan.run(cmd.sub(o.pos))
    else:
        scan.add(UNKNOWN, f"{cmd.name} without a command", text)


_YARN: Final[dict[str, str]] = {
    **_t(DEPS, "add", "install", "remove", "upgrade", "up", "upgrade-interactive", "dedupe", "link", "unlink",
         "import", "autoclean", "global", "patch-commit", "rebuild", "set"),
    **_t(READ, "why", "info", "list", "bin", "licenses", "owner-list", "outdated", "audit", "explain",
         "versions", "help", "constraints"),
    **_t(TESTS, "test", "start"),
    "run": SCRIPT,
    "exec": RUN,
    "dlx": DLX,
    "node": UNKNOWN,
    **_t(DEPLOY, "publish"),
    **_t(DRAFT, "init", "version", "pack", "patch", "create"),
    **_t("credentials.rotate", "login", "logout"),
    "config": READ,
    "cache": DRAFT,
    "plugin": DEPS,
}


def _yarn(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    idx = first_positional(args, "", frozenset({"--cwd", "--modules-folder", "--cache-folder"}))
    if idx >= len(args):
        if any(a in ("--version", "-v", "--help", "-h") for a in args):
            scan.add(READ, "yarn --version", text)
        else:
            scan.add(DEPS, "yarn installs dependencies", text)
        return
    verb, rest = args[idx], args[idx + 1 :]
    if verb == "workspace" and len(rest) > 1:
        scan.run(cmd.sub(["yarn", *rest[1:]]))
    elif verb == "workspaces" and rest[:1] == ["foreach"]:
        j = first_positional(rest[1:], "", frozenset({"--include", "--exclude", "--from", "--jobs", "-j"}))
        scan.run(cmd.sub(["yarn", *rest[1 + j :]]))
    elif verb == "npm" and rest[:1] == ["publish"]:
        scan.add(DEPLOY, "yarn npm publish", text)
    elif verb == "config" and rest[:1] == ["set"]:
        scan.add(UNKNOWN, "yarn config set", text)
    else:
        klass = _YARN.get(verb)
        if klass is None or verb in ("test", "start"):
            _script(scan, cmd, "yarn", verb, rest, _where(cmd))
        else:
            _apply(scan, cmd, "yarn", klass, verb, rest)


_PNPM: Final[dict[str, str]] = {
    **_t(DEPS, "add", "i", "install", "remove", "rm", "un", "uninstall", "up", "update", "upgrade", "link", "ln",
         "unlink", "import", "rebuild", "rb", "prune", "fetch", "dedupe", "install-test", "it", "setup", "env"),
    **_t(READ, "list", "ls", "ll", "la", "why", "outdated", "audit", "licenses", "root", "bin", "store", "help",
         "view", "info", "doctor", "config"),
    **_t(TESTS, "t", "tst"),
    "run": SCRIPT,
    "exec": RUN,
    "dlx": DLX,
    "create": DLX,
    "publish": DEPLOY,
    **_t(DRAFT, "init", "pack", "patch", "patch-commit", "version"),
}
_BUN: Final[dict[str, str]] = {
    **_t(DEPS, "install", "i", "add", "a", "remove", "rm", "update", "upgrade", "link", "unlink", "pm", "outdated"),
    **_t(TESTS, "test", "build"),
    "x": DLX,
    "publish": DEPLOY,
    **_t(DRAFT, "init", "create"),
    "repl": UNKNOWN,
}


def _bun(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    idx = first_positional(args, "", frozenset({"--cwd", "--config"}))
    if idx >= len(args):
        scan.add(READ if args else UNKNOWN, "bun without a command", text)
        return
    verb, rest = args[idx], args[idx + 1 :]
    target = rest[0] if verb == "run" and rest else verb
    if verb == "run" and not rest:
        scan.add(READ, "bun run lists scripts", text)
    elif target.endswith((".js", ".ts", ".mjs", ".cjs", ".tsx", ".jsx")) or "/" in target:
        scan.add(UNKNOWN, f"bun runs {target}", text)
        scan.path(target, "exec", text, kind="script")
    elif verb == "run":
        _script(scan, cmd, "bun", target, rest[1:], _where(cmd))
    elif verb in _BUN:
        _apply(scan, cmd, "bun", _BUN[verb], verb, rest)
    else:
        _script(scan, cmd, "bun", verb, rest, _where(cmd))


# -------------------------------------------------------------------------------------- python

_PIP: Final[dict[str, str]] = {
    **_t(DEPS, "install", "uninstall", "download", "wheel"),
    **_t(READ, "list", "show", "freeze", "check", "help", "debug", "inspect", "index", "hash", "search",
         "completion"),
}


def _install_places(scan: Scan, cmd: Cmd, specs: list[str], folders: list[str], user: bool) -> None:
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
        _install_places(scan, cmd, o.pos[1:], o.all("-t", "--target", "--prefix", "--root"),
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
    **_t(DEPS, "add", "remove", "sync", "lock", "venv", "self"),
    **_t(READ, "tree", "help", "version", "export"),
    **_t(TESTS, "build", "format"),
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
    **_t(DEPS, "install", "add", "remove", "update", "lock", "sync", "self", "env", "source"),
    **_t(READ, "show", "check", "about", "search", "list", "help", "export", "debug"),
    **_t(TESTS, "build"),
    "run": RUN,
    "shell": UNKNOWN,
    "publish": DEPLOY,
    **_t(DRAFT, "init", "new", "version"),
    "config": UNKNOWN,
}
_PIPENV: Final[dict[str, str]] = {
    **_t(DEPS, "install", "uninstall", "update", "upgrade", "lock", "sync", "clean"),
    **_t(READ, "graph", "check", "requirements", "scripts", "verify", "audit"),
    "run": RUN,
    "shell": UNKNOWN,
    "open": UNKNOWN,
}
_PDM: Final[dict[str, str]] = {
    **_t(DEPS, "add", "remove", "install", "sync", "update", "lock", "use", "venv", "self", "import"),
    **_t(READ, "list", "show", "info", "search", "config", "outdated", "completion", "export", "fix"),
    **_t(TESTS, "build"),
    "run": SCRIPT,
    "publish": DEPLOY,
    "init": DRAFT,
}
_HATCH: Final[dict[str, str]] = {
    **_t(TESTS, "test", "build", "fmt", "clean"),
    "run": SCRIPT,
    "env": DEPS,
    "dep": READ,
    "status": READ,
    "project": READ,
    "shell": UNKNOWN,
    "publish": DEPLOY,
    **_t(DRAFT, "new", "version"),
    "python": DEPS,
}
_RYE: Final[dict[str, str]] = {
    **_t(DEPS, "sync", "add", "remove", "lock", "install", "fetch", "pin", "toolchain", "tools", "self"),
    **_t(TESTS, "test", "lint", "fmt", "build"),
    "run": SCRIPT,
    "publish": DEPLOY,
    **_t(READ, "show", "list", "version"),
    "init": DRAFT,
    "shell": UNKNOWN,
}
_CONDA: Final[dict[str, str]] = {
    **_t(DEPS, "install", "create", "update", "upgrade", "remove", "uninstall", "env", "self-update"),
    **_t(READ, "list", "info", "search", "activate", "deactivate", "doctor", "compare", "notices"),
    "clean": DRAFT,
    "run": RUN,
    "config": UNKNOWN,
    "init": UNKNOWN,
    "shell": UNKNOWN,
}
_PIPX: Final[dict[str, str]] = {
    **_t(DEPS, "install", "uninstall", "upgrade", "upgrade-all", "inject", "uninject", "reinstall",
         "reinstall-all", "uninstall-all", "install-all"),
    **_t(READ, "list", "environment", "completions"),
    "ensurepath": UNKNOWN,
    "run": DLX,
}

# --------------------------------------------------------------------------------- other langs

_CARGO: Final[dict[str, str]] = {
    **_t(TESTS, "build", "b", "check", "c", "test", "t", "clippy", "fmt", "bench", "doc", "d", "run", "r",
         "nextest", "miri", "llvm-cov", "tarpaulin", "expand", "udeps", "audit", "deny", "machete", "clean",
         "rustc", "rustdoc", "fix", "watch", "hack", "semver-checks", "insta", "mutants", "msrv", "outdated",
         "criterion", "flamegraph", "zigbuild", "xwin", "leptos", "make", "component"),
    **_t(DEPS, "add", "remove", "rm", "install", "uninstall", "update", "fetch", "generate-lockfile", "vendor",
         "binstall", "upgrade"),
    **_t(READ, "tree", "metadata", "search", "pkgid", "locate-project", "read-manifest", "verify-project",
         "version", "help", "info", "report", "config"),
    **_t(DEPLOY, "publish", "yank", "release"),
    "owner": "auth.modify",
    **_t("credentials.rotate", "login", "logout"),
    **_t(DRAFT, "new", "init", "package"),
}
_GO: Final[dict[str, str]] = {
    **_t(TESTS, "build", "test", "vet", "fmt", "run", "generate", "fix", "tool", "bug", "telemetry", "clean"),
    **_t(DEPS, "get", "install"),
    **_t(READ, "list", "version", "doc", "help"),
    "env": READ,
    "mod": READ,
    "work": READ,
}
_GO_TABLE: Final = _table(_GO, UNKNOWN, "C", _E)


#: ``go mod`` subcommands that download modules (and rewrite go.mod, go.sum or vendor/): installs, logged.
_GO_MOD_FETCH: Final = frozenset({"tidy", "download", "vendor"})


def _go(scan: Scan, cmd: Cmd) -> None:
    """``go run MODULE@VERSION`` fetches and runs remote code; ``go mod tidy|download|vendor`` install; otherwise
    the table."""
    args = cmd.args
    idx = first_positional(args, "C")
    if args[idx : idx + 1] == ["mod"] and _GO_MOD_FETCH.intersection(args[idx + 1 : idx + 2]):
        scan.add(DEPS, f"go mod {args[idx + 1]} downloads modules", cmd.text)
        return
    if args[idx : idx + 1] == ["run"]:
        rest = args[idx + 1 :]
        j = first_positional(rest, "", frozenset({"-exec", "-mod", "-tags", "-ldflags", "-gcflags", "-o", "-p",
                                                  "-modfile", "-overlay", "-pkgdir", "-toolexec"}))
        target = rest[j] if j < len(rest) else ""
        if "@" in target:
            scan.add(DEPS, f"go run {target} downloads a module", cmd.text)
            scan.add(UNKNOWN, f"go run {target} runs code fetched from outside the project", cmd.text)
            return
        if any(a == "-exec" or a.startswith(("-exec=", "-toolexec")) for a in rest[:j]):
            scan.add(UNKNOWN, "go run -exec runs the program through another command", cmd.text)
            return
    _GO_TABLE(scan, cmd)


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


_GEM: Final[dict[str, str]] = {
    **_t(DEPS, "install", "i", "uninstall", "update", "cleanup", "pristine", "sources"),
    **_t(READ, "list", "search", "info", "query", "specification", "contents", "environment", "which",
         "dependency", "outdated", "help", "fetch"),
    "build": TESTS,
    **_t(DEPLOY, "push", "yank"),
    "owner": "auth.modify",
    **_t("credentials.rotate", "signin", "signout"),
}
_BUNDLE: Final[dict[str, str]] = {
    **_t(DEPS, "install", "update", "add", "remove", "lock", "package", "cache", "binstubs", "clean", "pack",
         "init", "plugin"),
    **_t(READ, "check", "list", "show", "outdated", "info", "doctor", "platform", "version", "licenses", "viz",
         "help"),
    "exec": RUN,
    "config": UNKNOWN,
    "open": UNKNOWN,
    "console": UNKNOWN,
}
_COMPOSER: Final[dict[str, str]] = {
    **_t(DEPS, "install", "i", "require", "update", "u", "upgrade", "remove", "rm", "reinstall", "global",
         "create-project", "dump-autoload", "dumpautoload", "bump"),
    **_t(READ, "show", "info", "outdated", "validate", "diagnose", "why", "depends", "why-not", "prohibits",
         "licenses", "audit", "check-platform-reqs", "list", "search", "fund", "status", "help", "suggests"),
    "run-script": SCRIPT,
    "run": SCRIPT,
    "exec": RUN,
    "test": TESTS,
    "config": UNKNOWN,
    "init": DRAFT,
}

# ------------------------------------------------------------------------------ system packages

_SYSPKG: Final[dict[str, str]] = {
    **_t(DEPS, "install", "remove", "purge", "autoremove", "upgrade", "full-upgrade", "dist-upgrade", "update",
         "reinstall", "build-dep", "source", "download", "clean", "autoclean", "satisfy", "mark", "erase",
         "add", "del", "fix", "tap", "untap", "link", "unlink", "pin", "unpin", "cleanup", "bundle", "uninstall",
         "rm", "downgrade", "groupinstall", "localinstall", "makecache", "distro-sync", "swap", "refresh",
         "in", "up", "dup", "ar", "addrepo", "rr", "removerepo", "patch", "switch", "revert", "enable",
         "disable", "cache", "selfupdate", "self-update", "sync"),
    **_t(READ, "list", "search", "show", "policy", "depends", "rdepends", "changelog", "info", "desc", "deps",
         "uses", "leaves", "outdated", "config", "doctor", "home", "log", "cat", "commands", "shellenv",
         "provides", "whatprovides", "repolist", "history", "check-update", "se", "if", "pa", "packages",
         "repos", "lr", "which", "query", "versions", "help", "--prefix", "--cellar", "--repository", "--repo",
         "--version", "-v", "stats", "audit", "deptree"),
    "services": UNKNOWN,
    "edit-sources": UNKNOWN,
    "shell": UNKNOWN,
    "run": UNKNOWN,
}


def _pacman(scan: Scan, cmd: Cmd) -> None:
    ops = "".join(a[1:] for a in cmd.args if a.startswith("-") and not a.startswith("--"))
    longs = {a for a in cmd.args if a.startswith("--")}
    if "Q" in ops or "--query" in longs or ("S" in ops and ("s" in ops or "i" in ops) and "y" not in ops):
        scan.add(READ, f"{cmd.name} queries packages", cmd.text)
    elif ops or longs:
        scan.add(DEPS, f"{cmd.name} changes packages", cmd.text)
    else:
        scan.add(DEPS if cmd.name in ("yay", "paru") else READ, f"{cmd.name} without options", cmd.text)


def _rpm_dpkg(scan: Scan, cmd: Cmd) -> None:
    flags = {a for a in cmd.args if a.startswith("-")}
    text = cmd.text
    if cmd.name == "rpm":
        if any(f.startswith("-q") or f in ("--query", "-V", "--verify", "--checksig", "-K") for f in flags):
            scan.add(READ, "rpm queries packages", text)
        else:
            scan.add(DEPS, "rpm changes packages", text)
        return
    if flags & {"-i", "--install", "-r", "--remove", "-P", "--purge", "--configure", "-a", "--unpack",
                "--set-selections", "--clear-selections", "--add-architecture", "--remove-architecture"}:
        scan.add(DEPS, "dpkg changes packages", text)
    else:
        scan.add(READ, "dpkg queries packages", text)


def _nix(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    name = cmd.name
    if name == "nix-shell" or (name == "nix" and args[:1] in (["shell"], ["develop"])):
        o = parse(args, "pEAI", frozenset({"--run", "--command", "--packages", "--expr", "--attr", "-c"}))
        scan.add(DEPS, f"{name} provides packages", text)
        for c in o.all("--run", "--command", "-c"):
            scan.shell(c, text)
        if "--command" in args or "-c" in args:
            k = args.index("--command") if "--command" in args else args.index("-c")
            if name == "nix":
                scan.run(cmd.sub(args[k + 1 :]))
        return
    if name == "nix-build":
        scan.add(TESTS, "nix-build builds", text)
        return
    if name == "nix-env":
        if any(a in ("-q", "--query") for a in args):
            scan.add(READ, "nix-env -q", text)
        else:
            scan.add(DEPS, "nix-env changes packages", text)
        return
    if name == "nix-collect-garbage":
        scan.add(DRAFT, "nix-collect-garbage", text)
        return
    verb = args[0] if args else ""
    sub = args[1] if len(args) > 1 else ""
    if verb in ("build", "flake") and sub not in ("update", "lock", "init", "new"):
        scan.add(TESTS if verb == "build" or sub == "check" else READ, f"nix {verb} {sub}".strip(), text)
    elif verb in ("eval", "search", "show-config", "path-info", "why-depends", "log", "hash", "--version", "repl"):
        scan.add(READ if verb != "repl" else UNKNOWN, f"nix {verb}", text)
    elif verb == "run":
        scan.add(UNKNOWN, "nix run runs a package", text)
    elif verb in ("profile", "flake", "upgrade-nix", "store", "registry", "copy"):
        scan.add(DEPS, f"nix {verb} {sub}".strip(), text)
    else:
        scan.add(UNKNOWN, f"nix {verb}", text)


_VERSION_MGR: Final[dict[str, str]] = {
    **_t(DEPS, "install", "i", "uninstall", "update", "upgrade", "default", "use", "pin", "enable", "prepare",
         "global", "local", "shell", "set", "add", "remove", "target", "component", "toolchain", "self", "alias",
         "unalias", "plugin", "reshim", "rehash", "fetch", "prune", "deactivate", "activate", "trust"),
    **_t(READ, "show", "which", "ls", "list", "current", "ls-remote", "version", "versions", "where", "doctor",
         "env", "completions", "help", "check", "latest", "outdated", "root", "prefix", "info", "status",
         "whence", "--version", "settings", "config", "bin-paths"),
    **_t(RUN, "exec", "x", "run"),
}
_DOTNET: Final[dict[str, str]] = {
    **_t(TESTS, "build", "test", "run", "format", "pack", "watch", "clean", "msbuild", "vstest", "publish",
         "build-server", "dev-certs"),
    **_t(DEPS, "restore", "add", "remove", "tool", "workload"),
    **_t(READ, "list", "--info", "--version", "--list-sdks", "--list-runtimes", "help", "sdk"),
    "new": DRAFT,
    "sln": DRAFT,
    "user-secrets": "secrets.modify",
}


def _dotnet(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    verb = args[0] if args else ""
    if verb == "nuget":
        sub = args[1] if len(args) > 1 else ""
        scan.add(DEPLOY if sub == "push" else DELETE if sub == "delete" else READ, f"dotnet nuget {sub}", text)
    elif verb == "ef":
        rest = " ".join(args[1:3])
        if rest.startswith("database drop"):
            scan.add(DELETE, "dotnet ef database drop", text)
        elif rest.startswith("migrations add") or rest.startswith("migrations remove"):
            scan.add(DRAFT, f"dotnet ef {rest}", text)
        elif rest.startswith(("migrations list", "dbcontext")):
            scan.add(READ, f"dotnet ef {rest}", text)
        else:
            scan.add(UNKNOWN, f"dotnet ef {rest}", text)
    elif verb.endswith((".dll", ".exe")):
        scan.add(UNKNOWN, f"dotnet runs {verb}", text)
    elif verb:
        scan.add(_DOTNET.get(verb, UNKNOWN), f"dotnet {verb}", text)
    else:
        scan.add(READ, "dotnet", text)


# ------------------------------------------------------------------------------- build systems


def _targets(scan: Scan, cmd: Cmd, targets: list[str], default: str, tool: str) -> None:
    if not targets:
        scan.add(default, f"{tool} builds the default target", cmd.text)
        return
    for t in targets:
        _script(scan, cmd, tool, t)


def _make(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "CfjlIoWE", frozenset({"--directory", "--file", "--makefile", "--jobs", "--load-average",
                                                 "--include-dir", "--old-file", "--what-if", "--eval"}))
    text = cmd.text
    if o.has("-n", "--dry-run", "--just-print", "--recon", "-q", "--question", "-p", "--print-data-base"):
        scan.add(READ, "make --dry-run", text)
        return
    if o.has("--eval", "-E"):
        scan.add(UNKNOWN, "make --eval runs inline make code", text)
    files = o.all("-f", "--file", "--makefile")
    for f in files:
        scan.path(f, "read", text)
    assigns = [t for t in o.pos if "=" in t and t.split("=", 1)[0].replace("_", "").isalnum()]
    targets = [t for t in o.pos if t not in assigns]
    cmdline = dict(a.split("=", 1) for a in assigns)
    for k, v in cmd.env:
        cmdline.setdefault(k, v)
    directory = o.get("-C", "--directory")
    if (PH in scan.cwd and directory is None) or any(PH in x for x in (directory or "", *files, *targets)):
        scan.add(UNKNOWN, f"{cmd.name} runs a makefile or target only known at run time", text)
        return
    plan = scripts.make_plan(scan, cmd, targets, directory, files, cmdline)
    if plan is None:
        _targets(scan, cmd, targets, TESTS, cmd.name)
    else:
        scripts.run(scan, cmd, cmd.name, " ".join(targets), [], plan=plan)


def _task_runner(short_val: str, long_val: frozenset[str], listing: frozenset[str]) -> Handler:
    def handle(scan: Scan, cmd: Cmd) -> None:
        o = parse(cmd.args, short_val, long_val)
        if o.names() & listing:
            scan.add(READ, f"{cmd.name} lists tasks", cmd.text)
            return
        targets = [t for t in o.pos if "=" not in t]
        if cmd.name in ("just", "task"):
            where = o.get("-d", "--dir", "--working-directory")
            if o.get("-f", "--justfile", "-t", "--taskfile") is not None:
                scan.add(UNKNOWN, f"{cmd.name} reads a task file named on the command line", cmd.text)
                return
            if cmd.name == "task" and "--" in cmd.args:
                targets = [t for t in o.pos[: o.pos.index("--")] if "=" not in t] if "--" in o.pos else targets
            if cmd.name == "just" or len(targets) <= 1:
                name = targets[0] if targets else ""
                _just_or_task(scan, cmd, name, targets[1:] if cmd.name == "just" else [], where)
                return
            for t in targets:
                _just_or_task(scan, cmd, t, [], where)
            return
        _targets(scan, cmd, targets, TESTS, cmd.name)

    return handle


def _just_or_task(scan: Scan, cmd: Cmd, name: str, args: list[str], where: str | None) -> None:
    if (PH in scan.cwd and where is None) or PH in name:
        scan.add(UNKNOWN, f"{cmd.name} runs a recipe only known at run time", cmd.text)
    elif not scripts.run(scan, cmd, cmd.name, name, args, where):
        _targets(scan, cmd, [name] if name else [], TESTS, cmd.name)


def _gradle_like(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    tasks = [a for a in args if not a.startswith("-")]
    if not tasks:
        scan.add(TESTS, f"{cmd.name} builds", text)
        return
    for t in tasks:
        low = t.lower().rsplit(":", 1)[-1]
        if "flywayclean" in low or low in ("clean-db", "dropdb") or low == "flyway:clean" or t.lower().endswith(
            "flyway:clean"
        ):
            scan.add(DELETE, f"{cmd.name} {t} drops a database", text)
        elif any(w in low for w in ("publish", "deploy", "release", "upload")):
            scan.add(DEPLOY, f"{cmd.name} {t} publishes", text)
        elif any(w in low for w in ("migrate", "flyway", "liquibase", "update-db")):
            scan.add(UNKNOWN, f"{cmd.name} {t} changes a database", text)
        elif low.startswith(("dependency:resolve", "go-offline", "dependency:purge", "dependencies")) or (
            low.startswith("dependency:") and "tree" not in low
        ):
            scan.add(DEPS, f"{cmd.name} {t} fetches dependencies", text)
        elif low.startswith("exec:") or low in ("run", "bootrun", "runserver"):
            scan.add(TESTS, f"{cmd.name} {t} runs the project", text)
        else:
            scan.add(TESTS, f"{cmd.name} {t}", text)


def _bazel(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    idx = first_positional(args)
    verb = args[idx] if idx < len(args) else ""
    targets = [a for a in args[idx + 1 :] if not a.startswith("-")]
    text = cmd.text
    if verb == "run" and any(any(w in t.lower() for w in _DEPLOY_WORDS) for t in targets):
        scan.add(DEPLOY, f"{cmd.name} run of a deploy target", text)
    elif verb == "fetch" or verb == "sync":
        scan.add(DEPS, f"{cmd.name} {verb}", text)
    else:
        scan.add(TESTS, f"{cmd.name} {verb}".strip(), text)


def _cmake(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    if "-P" in args:
        scan.add(UNKNOWN, "cmake -P runs a script", text)
    elif "--install" in args:
        scan.add(DEPS, "cmake --install installs build outputs", text)
    elif "-E" in args:
        sub = args[args.index("-E") + 1 : args.index("-E") + 2]
        if sub and sub[0] in ("rm", "remove", "remove_directory", "rmdir"):
            scan.add(DELETE, "cmake -E rm deletes files", text)
        else:
            scan.add(TESTS, "cmake -E", text)
    else:
        scan.add(TESTS, "cmake configures or builds", text)


def _install_target(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    if "install" in args:
        scan.add(DEPS, f"{cmd.name} install installs build outputs", cmd.text)
    else:
        scan.add(TESTS, f"{cmd.name} builds", cmd.text)


_SWIFT: Final[dict[str, str]] = {
    **_t(TESTS, "build", "test", "run", "format"),
    "package": DEPS,
    "--version": READ,
}


def _swift(scan: Scan, cmd: Cmd) -> None:
    verb = cmd.args[0] if cmd.args else ""
    if verb.endswith(".swift"):
        scan.add(UNKNOWN, f"swift runs {verb}", cmd.text)
        scan.path(verb, "exec", cmd.text, kind="script")
    elif verb == "package" and cmd.args[1:2] in (["describe"], ["dump-package"], ["show-dependencies"]):
        scan.add(READ, "swift package describe", cmd.text)
    elif not verb:
        scan.add(UNKNOWN, "swift REPL", cmd.text)
    else:
        scan.add(_SWIFT.get(verb, UNKNOWN), f"swift {verb}", cmd.text)


def _mix(scan: Scan, cmd: Cmd) -> None:
    verb = cmd.args[0] if cmd.args else ""
    text = cmd.text
    if verb in ("ecto.drop", "ecto.reset"):
        scan.add(DELETE, f"mix {verb} drops the database", text)
    elif verb.startswith("ecto.") and verb not in ("ecto.gen.migration", "ecto.migrations"):
        scan.add(UNKNOWN, f"mix {verb} changes a database", text)
    elif verb.startswith(("deps.", "archive.install", "local.")):
        scan.add(DEPS, f"mix {verb}", text)
    elif verb in ("hex.publish", "hex.retire"):
        scan.add(DEPLOY, f"mix {verb}", text)
    elif verb in ("test", "compile", "format", "credo", "dialyzer", "docs", "phx.server", "release", "coveralls",
                  "check", "xref", "deps.tree", "hex.info", "help", "phx.routes", "sobelow", "") or verb.startswith(
        "phx.gen"
    ):
        scan.add(TESTS, f"mix {verb}".strip(), text)
    else:
        scan.add(UNKNOWN, f"mix {verb}", text)


def _rake(scan: Scan, cmd: Cmd) -> None:
    args = [a for a in cmd.args if not a.startswith("-")]
    text = cmd.text
    name = cmd.name
    if name == "rails" and args[:1] and args[0] in ("generate", "g", "new", "destroy", "d"):
        scan.add(DRAFT, f"rails {args[0]} writes project files", text)
        return
    if name == "rails" and args[:1] and args[0] in ("server", "s", "test", "t"):
        scan.add(TESTS, f"rails {args[0]}", text)
        return
    if name == "rails" and args[:1] and args[0] in ("console", "c", "runner", "r", "dbconsole", "db"):
        scan.add(UNKNOWN, f"rails {args[0]} runs code", text)
        return
    if not args:
        scan.add(TESTS, f"{name} default task", text)
        return
    for t in args:
        low = t.lower()
        if low in ("db:drop", "db:reset", "db:schema:load", "db:truncate_all", "db:purge", "db:drop:all",
                   "db:test:purge"):
            scan.add(DELETE, f"{name} {t} deletes data", text)
        elif low.startswith("credentials") or low.startswith("secret"):
            scan.add("secrets.modify", f"{name} {t}", text)
        elif low.startswith(("test", "spec", "rubocop", "assets:", "routes", "about", "stats", "notes", "lint",
                             "build", "default", "standard", "yard", "rdoc", "zeitwerk", "log:clear", "tmp:")):
            scan.add(TESTS, f"{name} {t}", text)
        else:
            _script(scan, cmd, name, t)


def _pre_commit(scan: Scan, cmd: Cmd) -> None:
    verb = next((a for a in cmd.args if not a.startswith("-")), "run")
    text = cmd.text
    if verb in ("install", "uninstall", "install-hooks", "init-templatedir"):
        scan.add("tether.control", f"pre-commit {verb} changes git hooks", text)
    elif verb in ("run", "try-repo", "hook-impl"):
        scan.add(TESTS, "pre-commit runs the hooks", text)
    elif verb in ("autoupdate", "gc", "clean"):
        scan.add(DEPS, f"pre-commit {verb}", text)
    elif verb in ("validate-config", "validate-manifest", "sample-config", "help", "migrate-config"):
        scan.add(READ, f"pre-commit {verb}", text)
    else:
        scan.add(UNKNOWN, f"pre-commit {verb}", text)


def _hooks_manager(scan: Scan, cmd: Cmd) -> None:
    verb = next((a for a in cmd.args if not a.startswith("-")), "install" if cmd.name == "husky" else "")
    text = cmd.text
    if verb in ("run", "validate", "dump", "version", "check-install", "") and cmd.name == "lefthook":
        scan.add(TESTS if verb == "run" else READ, f"lefthook {verb}", text)
    else:
        scan.add("tether.control", f"{cmd.name} {verb} changes git hooks", text)


_PLAYWRIGHT: Final[dict[str, str]] = {
    "test": TESTS,
    **_t(DEPS, "install", "install-deps", "uninstall"),
    **_t(UNKNOWN, "codegen", "open", "cr", "ff", "wk", "screenshot", "pdf", "run-server"),
    **_t(READ, "show-report", "show-trace", "merge-reports", "--version"),
}
_CYPRESS: Final[dict[str, str]] = {
    "run": TESTS,
    **_t(DEPS, "install"),
    **_t(READ, "verify", "version", "info", "cache"),
    "open": UNKNOWN,
}
_PRISMA_RULES: Final[tuple[tuple[str, str], ...]] = (
    ("migrate reset", DELETE),
    ("migrate deploy", DEPLOY),
    ("migrate status", READ),
    ("migrate diff", READ),
    ("migrate resolve", UNKNOWN),
    ("migrate dev", UNKNOWN),
    ("db pull", DRAFT),
    ("db push", UNKNOWN),
    ("db seed", UNKNOWN),
    ("db execute", UNKNOWN),
    ("generate", TESTS),
    ("validate", TESTS),
    ("format", TESTS),
    ("init", DRAFT),
    ("version", READ),
    ("studio", UNKNOWN),
)


def _prisma(scan: Scan, cmd: Cmd) -> None:
    words = " ".join(a for a in cmd.args if not a.startswith("-"))
    text = cmd.text
    if any(a in ("--force-reset", "--accept-data-loss") for a in cmd.args):
        scan.add(DELETE, "prisma may drop data", text)
    for prefix, klass in _PRISMA_RULES:
        if words.startswith(prefix):
            scan.add(klass, f"prisma {prefix}", text)
            return
    scan.add(UNKNOWN, f"prisma {words}".strip(), text)


def _migrator(scan: Scan, cmd: Cmd) -> None:
    """alembic, flyway, liquibase, dbmate, goose, migrate, knex, sequelize, typeorm, drizzle-kit."""
    words = [a.lower() for a in cmd.args if not a.startswith("-")]
    text = cmd.text
    joined = " ".join(words)
    if any(w in ("clean", "drop", "reset", "dropdb", "db:drop", "drop-all", "dropall") or w.endswith(":drop")
           for w in words):
        scan.add(DELETE, f"{cmd.name} {joined} drops data", text)
    elif any(w in ("current", "history", "heads", "show", "branches", "check", "status", "info", "validate",
                   "version", "list", "help", "dump") for w in words[:1]):
        scan.add(READ, f"{cmd.name} {joined}", text)
    elif any(w in ("revision", "generate", "create", "new", "make", "migration:generate", "migration:create",
                   "migrate:make", "init") for w in words[:1]):
        scan.add(DRAFT, f"{cmd.name} {joined} writes a migration", text)
    elif any(w in ("downgrade", "down", "undo", "rollback", "migrate:rollback", "db:migrate:undo",
                   "migration:revert", "redo") for w in words[:1]):
        scan.add(DELETE, f"{cmd.name} {joined} rolls a database back", text)
    else:
        scan.add(UNKNOWN, f"{cmd.name} {joined} changes a database".replace("  ", " "), text)


_LERNA: Final[dict[str, str]] = {
    "run": SCRIPT,
    "exec": RUN,
    "publish": DEPLOY,
    "version": DRAFT,
    **_t(DEPS, "bootstrap", "add", "link", "clean", "import"),
    **_t(READ, "list", "ls", "la", "ll", "changed", "diff", "info"),
    "init": DRAFT,
    "create": DRAFT,
}


def _nx(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    pos = [a for a in args if not a.startswith("-")]
    verb = pos[0] if pos else ""
    if verb in ("release",):
        scan.add(DEPLOY, "nx release publishes", text)
    elif verb in ("migrate", "add"):
        scan.add(DEPS, f"nx {verb}", text)
    elif verb in ("graph", "show", "list", "report", "print-affected", "daemon", "repair", "view-logs"):
        scan.add(READ, f"nx {verb}", text)
    elif verb in ("g", "generate"):
        scan.add(DRAFT, f"nx {verb}", text)
    elif verb in ("run", "run-many", "affected", "exec"):
        targets = [a.split("=", 1)[1] for a in args if a.startswith(("--target=", "-t=", "--targets="))]
        targets += [p.rsplit(":", 1)[-1] for p in pos[1:] if ":" in p]
        if "-t" in args:
            k = args.index("-t")
            targets += args[k + 1 : k + 2]
        if not targets:
            targets = ["build"]
        for t in targets:
            for part in t.split(","):
                _script(scan, cmd, "nx", part)
    elif ":" in verb:
        _script(scan, cmd, "nx", verb.rsplit(":", 1)[-1])
    else:
        _script(scan, cmd, "nx", verb)


def _turbo(scan: Scan, cmd: Cmd) -> None:
    pos = [a for a in cmd.args if not a.startswith("-")]
    text = cmd.text
    if pos[:1] == ["run"]:
        pos = pos[1:]
    if pos[:1] in (["prune"], ["gen"], ["generate"]):
        scan.add(DRAFT, f"turbo {pos[0]}", text)
    elif pos[:1] in (["login"], ["link"], ["logout"], ["unlink"]):
        scan.add("credentials.rotate", f"turbo {pos[0]}", text)
    elif pos[:1] in (["daemon"], ["ls"], ["info"], ["query"], ["telemetry"]):
        scan.add(READ, f"turbo {pos[0]}", text)
    else:
        for t in pos or ["build"]:
            _script(scan, cmd, "turbo", t)


_FRAMEWORK: Final[dict[str, str]] = {
    **_t(TESTS, "build", "dev", "start", "lint", "test", "serve", "preview", "check", "export", "e2e",
         "extract-i18n", "typegen", "sync", "info", "telemetry", "analyze", "prepare", "generate"),
    **_t(DEPLOY, "deploy", "publish"),
    **_t(DEPS, "add", "update", "install", "upgrade"),
    **_t(DRAFT, "new", "g", "init", "create"),
}


def _cloud_builder(scan: Scan, cmd: Cmd) -> None:
    verb = next((a for a in cmd.args if not a.startswith("-")), "")
    text = cmd.text
    if verb in ("submit", "update", "publish", "deploy"):
        scan.add(DEPLOY, f"{cmd.name} {verb} ships to users", text)
    elif verb in ("start", "run", "export", "doctor", "prebuild", "lint", "customize", "config", "whoami",
                  "diagnostics", "customize"):
        scan.add(TESTS if verb != "whoami" else READ, f"{cmd.name} {verb}", text)
    elif verb == "install":
        scan.add(DEPS, f"{cmd.name} install", text)
    elif verb in ("login", "logout"):
        scan.add("credentials.rotate", f"{cmd.name} {verb}", text)
    else:
        scan.add(UNKNOWN, f"{cmd.name} {verb}", text)


def _deno(scan: Scan, cmd: Cmd) -> None:
    verb = cmd.args[0] if cmd.args else ""
    rest = cmd.args[1:]
    text = cmd.text
    if verb in ("test", "lint", "fmt", "check", "bench", "doc", "coverage", "compile", "bundle"):
        scan.add(TESTS, f"deno {verb}", text)
    elif verb in ("info", "--version", "-V", "help", "types", "completions"):
        scan.add(READ, f"deno {verb}", text)
    elif verb in ("install", "add", "remove", "cache", "upgrade", "uninstall", "outdated", "vendor"):
        scan.add(DEPS, f"deno {verb}", text)
    elif verb == "task":
        name = next((r for r in rest if not r.startswith("-")), "")
        if name:
            k = rest.index(name)
            _script(scan, cmd, "deno task", name, rest[k + 1 :])
        else:
            scan.add(READ, "deno task lists tasks", text)
    elif verb in ("publish",):
        scan.add(DEPLOY, "deno publish", text)
    elif verb in ("run", "serve", "eval", "repl", "jupyter", "x") or not verb:
        script = next((r for r in rest if not r.startswith("-")), "")
        scan.add(UNKNOWN, f"deno {verb or 'repl'} runs code", text)
        if script and verb in ("run", "serve"):
            scan.path(script, "exec", text, kind="script")
    else:
        scan.add(UNKNOWN, f"deno runs {verb}", text)


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
    "npm": _npm,
    "npx": _npx,
    "pnpx": _npx,
    "bunx": _npx,
    "yarn": _yarn,
    "yarnpkg": _yarn,
    "pnpm": _table(_PNPM, SCRIPT, "FC", frozenset({"--filter", "--dir", "--workspace-dir", "--reporter"}),
                   empty=DEPS),
    "bun": _bun,
    "corepack": _table(_VERSION_MGR, UNKNOWN),
    "pip": _pip,
    "pip3": _pip,
    "uv-pip": _pip,
    "uv": _uv,
    "uvx": _uvx,
    "pipx": _table(_PIPX, UNKNOWN, "", frozenset({"--python", "--spec"}),
                   run_opts=("", frozenset({"--spec", "--python", "--pip-args"}))),
    "poetry": _table(_POETRY, UNKNOWN, "C", frozenset({"--directory", "--project"})),
    "pipenv": _table(_PIPENV, UNKNOWN, "", frozenset({"--python"}), empty=DEPS),
    "pdm": _table(_PDM, SCRIPT, "p", frozenset({"--project"})),
    "hatch": _table(_HATCH, UNKNOWN, "e", frozenset({"--env"})),
    "rye": _table(_RYE, UNKNOWN),
    **{
        n: _table(_CONDA, UNKNOWN, "np", frozenset({"--name", "--prefix"}),
                  run_opts=("np", frozenset({"--name", "--prefix", "--cwd"})))
        for n in ("conda", "mamba", "micromamba")
    },
    "cargo": _table(_CARGO, UNKNOWN, "Z", frozenset({"--config", "--color", "--manifest-path"})),
    "go": _go,
    "gem": _table(_GEM, UNKNOWN),
    "bundle": _table(_BUNDLE, UNKNOWN, "", _E, empty=DEPS),
    "bundler": _table(_BUNDLE, UNKNOWN, "", _E, empty=DEPS),
    "composer": _table(_COMPOSER, SCRIPT, "d", frozenset({"--working-dir"})),
    **{
        n: _table(_SYSPKG, UNKNOWN, "ocCtr", frozenset({"--option", "--config-file", "--target-release"}))
        for n in ("apt", "apt-get", "aptitude", "brew", "dnf", "yum", "microdnf", "zypper", "apk", "port", "snap",
                  "flatpak", "pkg", "winget", "choco", "scoop", "spack", "opam", "xbps-install", "emerge",
                  "tdnf", "add-apt-repository", "apt-add-repository", "mas", "softwareupdate")
    },
    "apt-cache": _table({}, READ),
    "dpkg-query": _table({}, READ),
    "pacman": _pacman,
    "yay": _pacman,
    "paru": _pacman,
    "rpm": _rpm_dpkg,
    "dpkg": _rpm_dpkg,
    "nix": _nix,
    "nix-shell": _nix,
    "nix-build": _nix,
    "nix-env": _nix,
    "nix-collect-garbage": _nix,
    **{
        n: _table(_VERSION_MGR, UNKNOWN)
        for n in ("rustup", "nvm", "asdf", "mise", "rtx", "volta", "fnm", "pyenv", "rbenv", "goenv", "nodenv",
                  "jenv", "sdk", "n", "proto", "ghcup", "juliaup", "tfenv", "tfswitch")
    },
    "dotnet": _dotnet,
    "make": _make,
    "gmake": _make,
    "just": _task_runner("fd", frozenset({"--justfile", "--working-directory", "--set", "--shell"}),
                         frozenset({"--list", "-l", "--summary", "--show", "-s", "--dump", "--evaluate"})),
    "task": _task_runner("dt", frozenset({"--dir", "--taskfile"}), frozenset({"--list", "-l", "--list-all", "-a"})),
    "mage": _task_runner("d", _E, frozenset({"-l"})),
    "invoke": _task_runner("c", _E, frozenset({"--list", "-l"})),
    "inv": _task_runner("c", _E, frozenset({"--list", "-l"})),
    "earthly": _task_runner("", _E, frozenset({"--ls"})),
    "mvn": _gradle_like,
    "mvnw": _gradle_like,
    "gradle": _gradle_like,
    "gradlew": _gradle_like,
    "sbt": _gradle_like,
    "lein": _gradle_like,
    "ant": _gradle_like,
    "bazel": _bazel,
    "bazelisk": _bazel,
    "buck": _bazel,
    "buck2": _bazel,
    "pants": _bazel,
    "cmake": _cmake,
    "ninja": _install_target,
    "meson": _install_target,
    "swift": _swift,
    "mix": _mix,
    "rake": _rake,
    "rails": _rake,
    "pre-commit": _pre_commit,
    "prek": _pre_commit,
    "husky": _hooks_manager,
    "lefthook": _hooks_manager,
    "playwright": _table(_PLAYWRIGHT, UNKNOWN),
    "cypress": _table(_CYPRESS, UNKNOWN),
    "prisma": _prisma,
    **{n: _migrator for n in ("alembic", "flyway", "liquibase", "dbmate", "goose", "migrate", "knex", "sequelize",
                              "typeorm", "drizzle-kit", "sqlx", "diesel", "atlas", "sqitch", "yoyo", "refinery")},
    "lerna": _table(_LERNA, UNKNOWN),
    "nx": _nx,
    "turbo": _turbo,
    **{n: _table(_FRAMEWORK, UNKNOWN) for n in ("next", "nuxt", "nuxi", "astro", "ng", "remix", "svelte-kit",
                                                  "gatsby", "vue-cli-service", "react-scripts", "ember", "expo",
                                                  "quasar", "solid-start", "tauri", "electron-forge",
                                                  "electron-builder")},
    "eas": _cloud_builder,
    "deno": _deno,
}
