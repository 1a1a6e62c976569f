"""The system's package managers (apt, brew, dnf, pacman, rpm, dpkg, nix...) and the version managers of
languages and tools (rustup, nvm, asdf, mise, pyenv, corepack...)."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.pkg.verbs import DEPS, DRAFT, READ, RUN, TESTS, UNKNOWN, each, table
from tether.classify.scan import Cmd, Handler, Scan

_SYSPKG: Final[dict[str, str]] = {
    **each(DEPS, "install", "remove", "purge", "autoremove", "upgrade", "full-upgrade", "dist-upgrade", "update",
         "reinstall", "build-dep", "source", "download", "clean", "autoclean", "satisfy", "mark", "erase",
         "add", "del", "fix", "tap", "untap", "link", "unlink", "pin", "unpin", "cleanup", "bundle", "uninstall",
         "rm", "downgrade", "groupinstall", "localinstall", "makecache", "distro-sync", "swap", "refresh",
         "in", "up", "dup", "ar", "addrepo", "rr", "removerepo", "patch", "switch", "revert", "enable",
         "disable", "cache", "selfupdate", "self-update", "sync"),
    **each(READ, "list", "search", "show", "policy", "depends", "rdepends", "changelog", "info", "desc", "deps",
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
    **each(DEPS, "install", "i", "uninstall", "update", "upgrade", "default", "use", "pin", "enable", "prepare",
         "global", "local", "shell", "set", "add", "remove", "target", "component", "toolchain", "self", "alias",
         "unalias", "plugin", "reshim", "rehash", "fetch", "prune", "deactivate", "activate", "trust"),
    **each(READ, "show", "which", "ls", "list", "current", "ls-remote", "version", "versions", "where", "doctor",
         "env", "completions", "help", "check", "latest", "outdated", "root", "prefix", "info", "status",
         "whence", "--version", "settings", "config", "bin-paths"),
    **each(RUN, "exec", "x", "run"),
}


HANDLERS: Final[dict[str, Handler]] = {
    **{
        n: table(_SYSPKG, UNKNOWN, "ocCtr", frozenset({"--option", "--config-file", "--target-release"}))
        for n in ("apt", "apt-get", "aptitude", "brew", "dnf", "yum", "microdnf", "zypper", "apk", "port", "snap",
                  "flatpak", "pkg", "winget", "choco", "scoop", "spack", "opam", "xbps-install", "emerge",
                  "tdnf", "add-apt-repository", "apt-add-repository", "mas", "softwareupdate")
    },
    "apt-cache": table({}, READ),
    "dpkg-query": table({}, READ),
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
    "corepack": table(_VERSION_MGR, UNKNOWN),
    **{
        n: table(_VERSION_MGR, UNKNOWN)
        for n in ("rustup", "nvm", "asdf", "mise", "rtx", "volta", "fnm", "pyenv", "rbenv", "goenv", "nodenv",
                  "jenv", "sdk", "n", "proto", "ghcup", "juliaup", "tfenv", "tfswitch")
    },
}
