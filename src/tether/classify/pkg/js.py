"""JavaScript's package managers and toolchains: npm, npx, yarn, pnpm, bun, deno; monorepo runners (lerna,
nx, turbo), front-end frameworks' CLIs, Expo's eas, playwright and cypress."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import first_positional, parse
from tether.classify.pkg.verbs import (
    DELETE,
    DEPLOY,
    DEPS,
    DLX,
    DRAFT,
    READ,
    RUN,
    SCRIPT,
    TESTS,
    UNKNOWN,
    apply,
    each,
    folder_option,
    install_places,
    run_script,
    table,
)
from tether.classify.scan import Cmd, Handler, Scan

_NPM: Final[dict[str, str]] = {
    **each(DEPS, "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "add", "ci",
         "clean-install", "install-clean", "ic", "uninstall", "un", "unlink", "remove", "rm", "r", "update", "up",
         "upgrade", "udpate", "dedupe", "ddp", "link", "ln", "prune", "rebuild", "rb"),
    **each(READ, "ls", "list", "la", "ll", "outdated", "view", "v", "info", "show", "search", "s", "se", "find",
         "help", "doctor", "whoami", "ping", "root", "bin", "prefix", "explain", "why", "fund", "docs", "home",
         "bugs", "repo", "query", "sbom", "diff", "completion", "get", "help-search"),
    **each(TESTS, "test", "t", "tst", "tests", "start", "stop", "restart", "it", "cit", "install-test",
         "install-ci-test"),
    **each(SCRIPT, "run", "run-script", "rum", "urn"),
    **each(RUN, "exec", "x"),
    **each(DEPLOY, "publish", "deprecate", "dist-tag", "dist-tags", "star", "unstar", "undeprecate"),
    "unpublish": DELETE,
    **each("auth.modify", "owner", "author", "access", "team", "org"),
    **each("credentials.rotate", "token", "login", "adduser", "add-user", "logout"),
    **each(DRAFT, "version", "init", "create", "innit", "pkg", "pack", "set-script", "shrinkwrap"),
    **each(UNKNOWN, "edit", "explore", "set", "hook"),
}


_NPM_SCRIPTS: Final = {"test": "test", "t": "test", "tst": "test", "tests": "test", "start": "start",
                        "stop": "stop", "restart": "restart"}


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
        run_script(scan, cmd, "npm", _NPM_SCRIPTS[verb], rest, folder_option(cmd))
    else:
        klass = _NPM.get(verb, UNKNOWN)
        if klass in (DEPS,) and any(a in ("-g", "--global", "--location=global") for a in args):
            scan.add(UNKNOWN, f"npm {verb} -g installs into the global prefix, outside the project", text)
        if klass in (DEPS,):
            install_places(scan, cmd, [r for r in rest if "://" in r], [], False)
        apply(scan, cmd, "npm", klass, verb, rest)


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
    **each(DEPS, "add", "install", "remove", "upgrade", "up", "upgrade-interactive", "dedupe", "link", "unlink",
         "import", "autoclean", "global", "patch-commit", "rebuild", "set"),
    **each(READ, "why", "info", "list", "bin", "licenses", "owner-list", "outdated", "audit", "explain",
         "versions", "help", "constraints"),
    **each(TESTS, "test", "start"),
    "run": SCRIPT,
    "exec": RUN,
    "dlx": DLX,
    "node": UNKNOWN,
    **each(DEPLOY, "publish"),
    **each(DRAFT, "init", "version", "pack", "patch", "create"),
    **each("credentials.rotate", "login", "logout"),
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
            run_script(scan, cmd, "yarn", verb, rest, folder_option(cmd))
        else:
            apply(scan, cmd, "yarn", klass, verb, rest)


_PNPM: Final[dict[str, str]] = {
    **each(DEPS, "add", "i", "install", "remove", "rm", "un", "uninstall", "up", "update", "upgrade", "link", "ln",
         "unlink", "import", "rebuild", "rb", "prune", "fetch", "dedupe", "install-test", "it", "setup", "env"),
    **each(READ, "list", "ls", "ll", "la", "why", "outdated", "audit", "licenses", "root", "bin", "store", "help",
         "view", "info", "doctor", "config"),
    **each(TESTS, "t", "tst"),
    "run": SCRIPT,
    "exec": RUN,
    "dlx": DLX,
    "create": DLX,
    "publish": DEPLOY,
    **each(DRAFT, "init", "pack", "patch", "patch-commit", "version"),
}
_BUN: Final[dict[str, str]] = {
    **each(DEPS, "install", "i", "add", "a", "remove", "rm", "update", "upgrade", "link", "unlink", "pm", "outdated"),
    **each(TESTS, "test", "build"),
    "x": DLX,
    "publish": DEPLOY,
    **each(DRAFT, "init", "create"),
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
        run_script(scan, cmd, "bun", target, rest[1:], folder_option(cmd))
    elif verb in _BUN:
        apply(scan, cmd, "bun", _BUN[verb], verb, rest)
    else:
        run_script(scan, cmd, "bun", verb, rest, folder_option(cmd))


_PLAYWRIGHT: Final[dict[str, str]] = {
    "test": TESTS,
    **each(DEPS, "install", "install-deps", "uninstall"),
    **each(UNKNOWN, "codegen", "open", "cr", "ff", "wk", "screenshot", "pdf", "run-server"),
    **each(READ, "show-report", "show-trace", "merge-reports", "--version"),
}
_CYPRESS: Final[dict[str, str]] = {
    "run": TESTS,
    **each(DEPS, "install"),
    **each(READ, "verify", "version", "info", "cache"),
    "open": UNKNOWN,
}


_LERNA: Final[dict[str, str]] = {
    "run": SCRIPT,
    "exec": RUN,
    "publish": DEPLOY,
    "version": DRAFT,
    **each(DEPS, "bootstrap", "add", "link", "clean", "import"),
    **each(READ, "list", "ls", "la", "ll", "changed", "diff", "info"),
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
                run_script(scan, cmd, "nx", part)
    elif ":" in verb:
        run_script(scan, cmd, "nx", verb.rsplit(":", 1)[-1])
    else:
        run_script(scan, cmd, "nx", verb)


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
            run_script(scan, cmd, "turbo", t)


_FRAMEWORK: Final[dict[str, str]] = {
    **each(TESTS, "build", "dev", "start", "lint", "test", "serve", "preview", "check", "export", "e2e",
         "extract-i18n", "typegen", "sync", "info", "telemetry", "analyze", "prepare", "generate"),
    **each(DEPLOY, "deploy", "publish"),
    **each(DEPS, "add", "update", "install", "upgrade"),
    **each(DRAFT, "new", "g", "init", "create"),
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
            run_script(scan, cmd, "deno task", name, rest[k + 1 :])
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


HANDLERS: Final[dict[str, Handler]] = {
    "npm": _npm,
    "npx": _npx,
    "pnpx": _npx,
    "bunx": _npx,
    "yarn": _yarn,
    "yarnpkg": _yarn,
    "pnpm": table(_PNPM, SCRIPT, "FC", frozenset({"--filter", "--dir", "--workspace-dir", "--reporter"}),
                  empty=DEPS),
    "bun": _bun,
    "playwright": table(_PLAYWRIGHT, UNKNOWN),
    "cypress": table(_CYPRESS, UNKNOWN),
    "lerna": table(_LERNA, UNKNOWN),
    "nx": _nx,
    "turbo": _turbo,
    **{n: table(_FRAMEWORK, UNKNOWN) for n in ("next", "nuxt", "nuxi", "astro", "ng", "remix", "svelte-kit",
                                                 "gatsby", "vue-cli-service", "react-scripts", "ember", "expo",
                                                 "quasar", "solid-start", "tauri", "electron-forge",
                                                 "electron-builder")},
    "eas": _cloud_builder,
    "deno": _deno,
}
