"""Build systems and task runners: make (its Makefile read through ``scripts``), just, task, mage, invoke,
earthly; maven, gradle and their kin, bazel, cmake, ninja, meson; git-hook managers (pre-commit, husky,
lefthook); database migration tools (prisma, alembic, flyway...)."""

from __future__ import annotations

from typing import Final

from tether.classify import scripts
from tether.classify.argv import first_positional, parse
from tether.classify.paths import PH
from tether.classify.pkg.verbs import (
    DELETE,
    DEPLOY,
    DEPLOY_WORDS,
    DEPS,
    DRAFT,
    NO_OPTS,
    READ,
    TESTS,
    UNKNOWN,
    run_script,
)
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.scripts.make import make_plan


def _targets(scan: Scan, cmd: Cmd, targets: list[str], default: str, tool: str) -> None:
    if not targets:
        scan.add(default, f"{tool} builds the default target", cmd.text)
        return
    for t in targets:
        run_script(scan, cmd, tool, t)


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
    plan = make_plan(scan, cmd, targets, directory, files, cmdline)
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
    if verb == "run" and any(any(w in t.lower() for w in DEPLOY_WORDS) for t in targets):
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


HANDLERS: Final[dict[str, Handler]] = {
    "make": _make,
    "gmake": _make,
    "just": _task_runner("fd", frozenset({"--justfile", "--working-directory", "--set", "--shell"}),
                         frozenset({"--list", "-l", "--summary", "--show", "-s", "--dump", "--evaluate"})),
    "task": _task_runner("dt", frozenset({"--dir", "--taskfile"}), frozenset({"--list", "-l", "--list-all", "-a"})),
    "mage": _task_runner("d", NO_OPTS, frozenset({"-l"})),
    "invoke": _task_runner("c", NO_OPTS, frozenset({"--list", "-l"})),
    "inv": _task_runner("c", NO_OPTS, frozenset({"--list", "-l"})),
    "earthly": _task_runner("", NO_OPTS, frozenset({"--ls"})),
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
    "pre-commit": _pre_commit,
    "prek": _pre_commit,
    "husky": _hooks_manager,
    "lefthook": _hooks_manager,
    "prisma": _prisma,
    **{n: _migrator for n in ("alembic", "flyway", "liquibase", "dbmate", "goose", "migrate", "knex", "sequelize",
                              "typeorm", "drizzle-kit", "sqlx", "diesel", "atlas", "sqitch", "yoyo", "refinery")},
}
