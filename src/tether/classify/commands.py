"""The per-tool dispatcher: argv -> action classes, plus the plain read-only and test-runner tables.

Tools with subcommands or side effects live in their own modules (``files``, ``vcs``, ``pkg``,
``infra``, ``net``, ``db``, ``hostops``, ``interp``, ``wrappers``); each exports ``HANDLERS``.
Anything not known here is ``unknown``.
"""

from __future__ import annotations

from typing import Final

from tether.classify import db, files, gtfo, hostops, infra, interp, net, pkg, vcs, wrappers
from tether.classify.argv import parse
from tether.classify.envvars import SECRET_VAR, env_effects
from tether.classify.paths import PH
from tether.classify.programs import TRACKED, resolve_into, track
from tether.classify.scan import Cmd, Handler, Scan

_E: Final[frozenset[str]] = frozenset()

#: Read-only tools whose positional arguments are files:
#: (short options taking a value, long options taking a value, leading non-path positionals;
#: -1 means "one pattern unless -e/-f gave it").
_READ_PATHS: Final[dict[str, tuple[str, frozenset[str], int]]] = {
    "cat": ("", _E, 0),
    "bat": ("lmHr", frozenset({"--language", "--style", "--theme", "--line-range"}), 0),
    "batcat": ("lmHr", frozenset({"--language", "--style", "--theme", "--line-range"}), 0),
    "less": ("bhjkoOpPtTxyz", _E, 0),
    "more": ("n", _E, 0),
    "head": ("nc", frozenset({"--lines", "--bytes"}), 0),
    "tail": ("ncsF", frozenset({"--lines", "--bytes", "--pid", "--sleep-interval"}), 0),
    "wc": ("", _E, 0),
    "nl": ("bdfhilnsvw", _E, 0),
    "tac": ("s", _E, 0),
    "rev": ("", _E, 0),
    "file": ("fmeFP", _E, 0),
    "stat": ("cf", frozenset({"--format", "--printf"}), 0),
    "du": ("dBtX", frozenset({"--max-depth", "--exclude", "--threshold", "--block-size"}), 0),
    "ls": ("ITw", frozenset({"--ignore", "--hide", "--width", "--tabsize", "--format", "--sort"}), 0),
    "exa": ("LIs", frozenset({"--level", "--ignore-glob", "--sort"}), 0),
    "eza": ("LIs", frozenset({"--level", "--ignore-glob", "--sort"}), 0),
    "lsd": ("I", _E, 0),
    "tree": ("LIPH", frozenset({"--charset", "--filelimit", "--sort"}), 0),
    "od": ("AjNtw", _E, 0),
    "xxd": ("cglos", _E, 0),
    "hexdump": ("esnC", _E, 0),
    "hd": ("esn", _E, 0),
    "strings": ("nt", _E, 0),
    "md5sum": ("", _E, 0),
    "sha1sum": ("", _E, 0),
    "sha256sum": ("", _E, 0),
    "sha512sum": ("", _E, 0),
    "shasum": ("a", _E, 0),
    "md5": ("s", _E, 0),
    "b2sum": ("l", _E, 0),
    "cksum": ("a", _E, 0),
    "realpath": ("", frozenset({"--relative-to", "--relative-base"}), 0),
    "readlink": ("", _E, 0),
    "diff": ("CUFLIxXS", frozenset({"--label", "--exclude", "--ignore-matching-lines", "--unified"}), 0),
    "colordiff": ("CUFLIxX", _E, 0),
    "cmp": ("in", _E, 0),
    "comm": ("", frozenset({"--output-delimiter"}), 0),
    "cut": ("bcdf", frozenset({"--delimiter", "--fields", "--bytes", "--characters"}), 0),
    "column": ("cstoNRHWEd", _E, 0),
    "paste": ("d", _E, 0),
    "join": ("aejot12", _E, 0),
    "fold": ("w", _E, 0),
    "fmt": ("wgp", _E, 0),
    "expand": ("t", _E, 0),
    "unexpand": ("t", _E, 0),
    "zcat": ("", _E, 0),
    "bzcat": ("", _E, 0),
    "xzcat": ("", _E, 0),
    "zless": ("", _E, 0),
    "lsattr": ("", _E, 0),
    "namei": ("", _E, 0),
    "iconv": ("ft", frozenset({"--from-code", "--to-code"}), 0),
    "base64": ("w", frozenset({"--wrap"}), 0),
    "base32": ("w", _E, 0),
    "jq": (
        "fL",
        frozenset({"--arg", "--argjson", "--slurpfile", "--rawfile", "--indent", "--from-file", "--args"}),
        1,
    ),
    "gron": ("", _E, 0),
    "xmllint": ("", frozenset({"--xpath", "--schema", "--relaxng", "--dtdvalid", "--encode"}), 0),
    "grep": (
        "efmABCdD",
        frozenset(
            {
                "--regexp",
                "--file",
                "--max-count",
                "--include",
                "--exclude",
                "--exclude-dir",
                "--context",
                "--after-context",
                "--before-context",
                "--label",
                "--color",
                "--colour",
                "--binary-files",
                "--devices",
                "--directories",
            }
        ),
        -1,
    ),
    "egrep": ("efmABCdD", frozenset({"--regexp", "--file", "--include", "--exclude", "--exclude-dir"}), -1),
    "fgrep": ("efmABCdD", frozenset({"--regexp", "--file", "--include", "--exclude", "--exclude-dir"}), -1),
    "zgrep": ("efmABC", _E, -1),
    "rg": (
        "efgmABCtTMjE",
        frozenset(
            {
                "--regexp",
                "--file",
                "--glob",
                "--iglob",
                "--max-count",
                "--type",
                "--type-not",
                "--context",
                "--after-context",
                "--before-context",
                "--max-columns",
                "--threads",
                "--max-depth",
                "--encoding",
                "--sort",
                "--sortr",
                "--color",
                "--colors",
                "--type-add",
                "--replace",
                "--max-filesize",
                "--ignore-file",
            }
        ),
        -1,
    ),
    "ag": ("GgmABCp", frozenset({"--ignore", "--file-search-regex", "--depth", "--context"}), 1),
    "ack": ("gABCm", frozenset({"--type", "--ignore-dir", "--match"}), 1),
    "fd": ("etdEcxXjS", frozenset({"--extension", "--type", "--max-depth", "--exclude", "--size"}), 1),
    "fdfind": ("etdEcxXjS", frozenset({"--extension", "--type", "--max-depth", "--exclude"}), 1),
    "source-highlight": ("io", _E, 0),
}

#: Read-only tools whose arguments are not paths worth recording.
_READ_ONLY: Final = frozenset(
    {
        "echo",
        "printf",
        "pwd",
        "whoami",
        "id",
        "groups",
        "uname",
        "uptime",
        "ps",
        "pgrep",
        "pidof",
        "free",
        "df",
        "printenv",
        "nproc",
        "true",
        "false",
        ":",
        "test",
        "[",
        "sleep",
        "seq",
        "yes",
        "expr",
        "bc",
        "dc",
        "man",
        "info",
        "help",
        "history",
        "clear",
        "reset",
        "jobs",
        "wait",
        "read",
        "readarray",
        "mapfile",
        "getopts",
        "shift",
        "set",
        "shopt",
        "type",
        "hash",
        "which",
        "whereis",
        "whatis",
        "apropos",
        "tldr",
        "basename",
        "dirname",
        "tr",
        "locale",
        "cal",
        "tput",
        "stty",
        "tty",
        "umask",
        "ulimit",
        "unset",
        "unalias",
        "return",
        "exit",
        "break",
        "continue",
        "logout",
        "local",
        "declare",
        "typeset",
        "readonly",
        "export",
        "let",
        "lscpu",
        "lsblk",
        "lsusb",
        "lspci",
        "lsof",
        "lsmod",
        "netstat",
        "ss",
        "top",
        "htop",
        "btop",
        "vmstat",
        "iostat",
        "mpstat",
        "sar",
        "w",
        "who",
        "last",
        "users",
        "getconf",
        "getent",
        "arch",
        "sw_vers",
        "system_profiler",
        "sysctl",
        "nvidia-smi",
        "journalctl",
        "dmesg",
        "numfmt",
        "shuf",
        "factor",
        "look",
        "tsort",
        "fc-list",
        "pbpaste",
        "pbcopy",
        "xclip",
        "xsel",
        "wl-copy",
        "wl-paste",
        "notify-send",
        "say",
        "bell",
        "times",
        "dirs",
        "disown",
        "fg",
        "bg",
        "suspend",
        "enable",
        "caller",
        "compgen",
        "complete",
        "bind",
        "fc",
        "ldd",
        "nm",
        "objdump",
        "readelf",
        "size",
        "otool",
        "lipo",
        "mdfind",
        "mdls",
        "whois",
        "emoji",
        "cowsay",
        "figlet",
        "lolcat",
        "gum",
        "fzf",
        "column",
        "uuidgen",
        "mktemp",
        "env_parallel",
    }
)

#: Test runners, linters, type checkers, formatters and compilers (tests.run).
_TESTS: Final = frozenset(
    {
        "pytest",
        "py.test",
        "tox",
        "nox",
        "ruff",
        "black",
        "isort",
        "flake8",
        "pylint",
        "mypy",
        "dmypy",
        "pyright",
        "basedpyright",
        "pyre",
        "pytype",
        "bandit",
        "pydocstyle",
        "pycodestyle",
        "pyflakes",
        "autopep8",
        "yapf",
        "autoflake",
        "pyupgrade",
        "vulture",
        "radon",
        "xenon",
        "interrogate",
        "nosetests",
        "nose2",
        "behave",
        "ward",
        "green",
        "jest",
        "vitest",
        "mocha",
        "ava",
        "karma",
        "jasmine",
        "tap",
        "c8",
        "nyc",
        "eslint",
        "prettier",
        "tsc",
        "vue-tsc",
        "biome",
        "oxlint",
        "stylelint",
        "markdownlint",
        "markdownlint-cli2",
        "shellcheck",
        "shfmt",
        "hadolint",
        "yamllint",
        "actionlint",
        "clang-format",
        "clang-tidy",
        "cppcheck",
        "cpplint",
        "rustfmt",
        "gofmt",
        "goimports",
        "golangci-lint",
        "staticcheck",
        "govulncheck",
        "revive",
        "rubocop",
        "standardrb",
        "rspec",
        "minitest",
        "phpunit",
        "pest",
        "phpstan",
        "psalm",
        "php-cs-fixer",
        "phpcs",
        "swiftlint",
        "swift-format",
        "swiftformat",
        "ktlint",
        "detekt",
        "codespell",
        "typos",
        "vale",
        "taplo",
        "sqlfluff",
        "cspell",
        "commitlint",
        "gcc",
        "g++",
        "cc",
        "c++",
        "clang",
        "clang++",
        "rustc",
        "javac",
        "kotlinc",
        "scalac",
        "ghc",
        "ocamlfind",
        "dune",
        "cmake",
        "ninja",
        "meson",
        "ctest",
        "ant",
        "esbuild",
        "webpack",
        "rollup",
        "parcel",
        "vite",
        "tsup",
        "swc",
        "babel",
        "turbo",
        "stack",
        "cabal",
        "elm",
        "elm-test",
        "zig",
        "valgrind",
        "gdb",
        "lldb",
        "hyperfine",
        "pytest-watch",
        "ptw",
        "coverage",
        "stestr",
        "robot",
        "cucumber",
        "ginkgo",
        "gotestsum",
        "bats",
        "shunit2",
        "lua-language-server",
        "luacheck",
        "stylua",
        "selene",
        "dart",
        "flutter",
        "ts-prune",
        "knip",
        "depcheck",
        "madge",
        "sphinx-build",
        "mkdocs",
        "jekyll",
        "hugo",
        "zola",
        "doxygen",
        "javadoc",
        "pdoc",
        "typedoc",
        "storybook",
        "semgrep",
        "trivy",
        "grype",
        "checkov",
        "tflint",
        "tfsec",
        "kubeconform",
        "kubeval",
        "conftest",
        "opa",
        "cedar",
        "buf",
        "protoc",
        "flatc",
        "thrift",
        "sass",
        "lessc",
        "postcss",
        "tailwindcss",
        "svgo",
        "latexmk",
        "pdflatex",
        "xelatex",
        "lualatex",
        "pandoc",
        "mdbook",
        "asciidoctor",
        "plantuml",
        "dot",
        "mmdc",
    }
)


#: Tools that list or stat paths without reading their contents.
_LISTING: Final = frozenset(
    {"ls", "tree", "du", "stat", "file", "exa", "eza", "lsd", "namei", "lsattr", "realpath", "readlink"}
)


def _generic_read(scan: Scan, cmd: Cmd, spec: tuple[str, frozenset[str], int]) -> None:
    args = cmd.args
    if not args:
        scan.add("repo.read", f"{cmd.name} reads", cmd.text)
        return
    short_val, long_val, skip = spec
    if cmd.name in ("head", "tail"):
        args = [a for a in args if not (a[:1] == "-" and a[1:].isdigit())]
    o = parse(args, short_val, long_val)
    pos = o.pos
    if skip == -1:
        skip = 0 if o.has("-e", "-f", "--regexp", "--file") else 1
    contents = cmd.name not in _LISTING
    for p in pos[skip:]:
        if p != "-":
            scan.path(p, "read", cmd.text, contents=contents)
    for f in o.all("-f", "--file", "--from-file", "--slurpfile", "--rawfile"):
        scan.path(f, "read", cmd.text)
    scan.add("repo.read", f"{cmd.name} reads", cmd.text)


def _read_extra(scan: Scan, cmd: Cmd) -> bool:
    """Side effects hiding in otherwise read-only tools; True when handled."""
    name, args, text = cmd.name, cmd.args, cmd.text
    if name == "sort":
        o = parse(args, "kotST", frozenset({"--output", "--key", "--field-separator", "--buffer-size"}))
        for out in o.all("-o", "--output"):
            scan.path(out, "write", text)
            scan.add("pr.draft", "sort -o writes a file", text)
        for p in o.pos:
            scan.path(p, "read", text)
        scan.add("repo.read", "sort reads", text)
        return True
    if name == "uniq":
        o = parse(args, "fsw", frozenset({"--skip-fields", "--skip-chars", "--check-chars"}))
        if o.pos:
            scan.path(o.pos[0], "read", text)
        if len(o.pos) > 1:
            scan.path(o.pos[1], "write", text)
            scan.add("pr.draft", "uniq writes its output file", text)
        scan.add("repo.read", "uniq reads", text)
        return True
    if name == "tree" and ("-o" in args or any(a.startswith("-o") for a in args)):
        o = parse(args, "LIPHo")
        for out in o.all("-o"):
            scan.path(out, "write", text)
        scan.add("pr.draft", "tree -o writes a file", text)
        return True
    if name == "date" and any(a in ("-s", "--set") or a.startswith(("--set=", "-s")) for a in args):
        scan.add("unknown", "date --set changes the system clock", text)
        return True
    if name == "hostname" and any(not a.startswith("-") or a in ("-F", "--file", "-b") for a in args):
        scan.add("unknown", "hostname changes the host name", text)
        return True
    if name == "sysctl" and any("=" in a or a == "-w" for a in args):
        scan.add("unknown", "sysctl -w changes kernel settings", text)
        return True
    if name in ("less", "more", "man") and any(
        a.startswith("+") or a in ("-P", "--pager", "-H", "--html") or a.startswith(("--pager=", "-P")) for a in args
    ):
        scan.add("unknown", f"{name} runs a command", text)
        return True
    if name in ("xclip", "xsel", "pbcopy", "wl-copy"):
        scan.add("repo.read", "copies to the clipboard", text)
        return True
    if name == "printenv" and any(SECRET_VAR.search(a) for a in args):
        scan.add("secrets.modify", "printenv prints a secret variable", text)
        return True
    if name in ("export", "declare", "typeset", "readonly", "local"):
        if cmd.args and cmd.args[0] in ("-f", "-F") and name in ("declare", "typeset"):
            scan.add("repo.read", f"{name} lists functions", text)
            return True
        scan.add("repo.read", f"{name} sets shell variables", text)
        return True
    return False


def _tests(scan: Scan, cmd: Cmd) -> None:
    scan.add("tests.run", f"{cmd.name} runs tests, linters or builds", cmd.text)


def dispatch(scan: Scan, cmd: Cmd) -> None:
    """Classify one simple command into ``scan``."""
    if cmd.env:
        env_effects(scan, cmd.env, cmd.text, persistent=not cmd.argv)
    if not cmd.argv:
        return
    name = cmd.name
    text = cmd.text
    if not name or PH in name:
        scan.add("unknown", "command name only known at run time", text)
        return
    if "/" in cmd.argv[0] and resolve_into(scan, cmd, name in _TESTS or name in pkg.HANDLERS):
        return
    if name in gtfo.TOOLS:
        gtfo.flag_effects(scan, cmd)
    handler = HANDLERS.get(name)
    if handler is not None:
        handler(scan, cmd)
        if name in TRACKED:
            track(scan, cmd)
        return
    if name in ("less", "more", "man") and _read_extra(scan, cmd):
        return
    spec = _READ_PATHS.get(name)
    if spec is not None:
        _generic_read(scan, cmd, spec)
        return
    if name in _READ_ONLY or name in ("sort", "uniq", "tree", "date", "hostname", "printenv"):
        if not _read_extra(scan, cmd):
            scan.add("repo.read", f"{name} has no side effects", text)
        return
    if name in _TESTS:
        _tests(scan, cmd)
        return
    scan.add("unknown", f"unknown command {name}: the classifier does not know what it does", text)
    if "/" in cmd.argv[0]:
        scan.path(cmd.argv[0], "exec", text, kind="script")


HANDLERS: Final[dict[str, Handler]] = {}
for _mod in (wrappers, interp, files, vcs, pkg, infra, net, db, hostops):
    HANDLERS.update(_mod.HANDLERS)
