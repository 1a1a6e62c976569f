"""Other languages' toolchains: cargo, go, gem and bundler, composer, dotnet, swift, mix, rake and rails."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import first_positional
from tether.classify.pkg.verbs import (
    DELETE,
    DEPLOY,
    DEPS,
    DRAFT,
    NO_OPTS,
    READ,
    RUN,
    SCRIPT,
    TESTS,
    UNKNOWN,
    each,
    run_script,
    table,
)
from tether.classify.scan import Cmd, Handler, Scan

_CARGO: Final[dict[str, str]] = {
    **each(TESTS, "build", "b", "check", "c", "test", "t", "clippy", "fmt", "bench", "doc", "d", "run", "r",
         "nextest", "miri", "llvm-cov", "tarpaulin", "expand", "udeps", "audit", "deny", "machete", "clean",
         "rustc", "rustdoc", "fix", "watch", "hack", "semver-checks", "insta", "mutants", "msrv", "outdated",
         "criterion", "flamegraph", "zigbuild", "xwin", "leptos", "make", "component"),
    **each(DEPS, "add", "remove", "rm", "install", "uninstall", "update", "fetch", "generate-lockfile", "vendor",
         "binstall", "upgrade"),
    **each(READ, "tree", "metadata", "search", "pkgid", "locate-project", "read-manifest", "verify-project",
         "version", "help", "info", "report", "config"),
    **each(DEPLOY, "publish", "yank", "release"),
    "owner": "auth.modify",
    **each("credentials.rotate", "login", "logout"),
    **each(DRAFT, "new", "init", "package"),
}
_GO: Final[dict[str, str]] = {
    **each(TESTS, "build", "test", "vet", "fmt", "run", "generate", "fix", "tool", "bug", "telemetry", "clean"),
    **each(DEPS, "get", "install"),
    **each(READ, "list", "version", "doc", "help"),
    "env": READ,
    "mod": READ,
    "work": READ,
}
_GO_TABLE: Final = table(_GO, UNKNOWN, "C", NO_OPTS)


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


_GEM: Final[dict[str, str]] = {
    **each(DEPS, "install", "i", "uninstall", "update", "cleanup", "pristine", "sources"),
    **each(READ, "list", "search", "info", "query", "specification", "contents", "environment", "which",
         "dependency", "outdated", "help", "fetch"),
    "build": TESTS,
    **each(DEPLOY, "push", "yank"),
    "owner": "auth.modify",
    **each("credentials.rotate", "signin", "signout"),
}
_BUNDLE: Final[dict[str, str]] = {
    **each(DEPS, "install", "update", "add", "remove", "lock", "package", "cache", "binstubs", "clean", "pack",
         "init", "plugin"),
    **each(READ, "check", "list", "show", "outdated", "info", "doctor", "platform", "version", "licenses", "viz",
         "help"),
    "exec": RUN,
    "config": UNKNOWN,
    "open": UNKNOWN,
    "console": UNKNOWN,
}
_COMPOSER: Final[dict[str, str]] = {
    **each(DEPS, "install", "i", "require", "update", "u", "upgrade", "remove", "rm", "reinstall", "global",
         "create-project", "dump-autoload", "dumpautoload", "bump"),
    **each(READ, "show", "info", "outdated", "validate", "diagnose", "why", "depends", "why-not", "prohibits",
         "licenses", "audit", "check-platform-reqs", "list", "search", "fund", "status", "help", "suggests"),
    "run-script": SCRIPT,
    "run": SCRIPT,
    "exec": RUN,
    "test": TESTS,
    "config": UNKNOWN,
    "init": DRAFT,
}


_DOTNET: Final[dict[str, str]] = {
    **each(TESTS, "build", "test", "run", "format", "pack", "watch", "clean", "msbuild", "vstest", "publish",
         "build-server", "dev-certs"),
    **each(DEPS, "restore", "add", "remove", "tool", "workload"),
    **each(READ, "list", "--info", "--version", "--list-sdks", "--list-runtimes", "help", "sdk"),
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


_SWIFT: Final[dict[str, str]] = {
    **each(TESTS, "build", "test", "run", "format"),
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
            run_script(scan, cmd, name, t)


HANDLERS: Final[dict[str, Handler]] = {
    "cargo": table(_CARGO, UNKNOWN, "Z", frozenset({"--config", "--color", "--manifest-path"})),
    "go": _go,
    "gem": table(_GEM, UNKNOWN),
    "bundle": table(_BUNDLE, UNKNOWN, "", NO_OPTS, empty=DEPS),
    "bundler": table(_BUNDLE, UNKNOWN, "", NO_OPTS, empty=DEPS),
    "composer": table(_COMPOSER, SCRIPT, "d", frozenset({"--working-dir"})),
    "dotnet": _dotnet,
    "swift": _swift,
    "mix": _mix,
    "rake": _rake,
    "rails": _rake,
}
