"""Commands that run another command: sudo, env, xargs, timeout, nice, watch, su, flock, ...

Each strips its own options and classifies the wrapped argv (or shell string) recursively.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Final

from tether.classify.argv import Opts, first_positional, parse
from tether.classify.envvars import env_effects
from tether.classify.paths import PH
from tether.classify.programs import SHELLS
from tether.classify.scan import Cmd, Handler, Scan, command_name


def _inner(scan: Scan, cmd: Cmd, idx: int, tail: bool | None = None) -> bool:
    """Classify ``argv[idx:]`` of ``cmd``; False when there is no wrapped command."""
    rest = cmd.argv[idx:]
    if not rest:
        return False
    scan.run(cmd.sub(rest, tail))
    return True


def _simple(short_val: str = "", long_val: frozenset[str] = frozenset()) -> Handler:
    """A wrapper whose first positional argument starts the wrapped command."""

    def handle(scan: Scan, cmd: Cmd) -> None:
        idx = 1 + first_positional(cmd.args, short_val, long_val)
        if not _inner(scan, cmd, idx):
            scan.add("repo.read", f"{cmd.name} without a command", cmd.text)

    return handle


def _sudo(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    longs = frozenset(
        {
            "--user",
            "--group",
            "--chdir",
            "--host",
            "--prompt",
            "--role",
            "--type",
            "--other-user",
            "--close-from",
            "--command-timeout",
        }
    )
    idx = first_positional(args, "ugCDhpRrtTU", longs)
    o = parse(args[:idx], "ugCDhpRrtTU", longs)
    text = cmd.text
    if o.has("-e", "--edit") or cmd.name == "sudoedit":
        for p in args[idx:]:
            scan.path(p, "write", text)
        scan.add("pr.draft", "sudoedit edits files", text)
        return
    chdir = o.get("-D", "--chdir")
    if chdir:
        scan.cwd = scan.path(chdir, "read", text) or scan.cwd
    rest = idx
    assigns: list[tuple[str, str]] = []
    while rest < len(args):
        name, eq, value = args[rest].partition("=")
        if not eq or not name.isidentifier():
            break
        assigns.append((name, value))
        rest += 1
    if assigns:
        env_effects(scan, assigns, text, persistent=False)
    if rest < len(args):
        scan.run(cmd.sub(args[rest:]))
    elif o.has("-i", "-s", "--login", "--shell"):
        scan.add("unknown", "sudo opens a root shell", text)
    elif o.has("-l", "-v", "-k", "-K", "--list", "--validate", "-V", "--version", "-h", "--help"):
        scan.add("repo.read", "sudo without a command", text)
    else:
        scan.add("unknown", "sudo without a command", text)


def _doas(scan: Scan, cmd: Cmd) -> None:
    idx = 1 + first_positional(cmd.args, "uC")
    if not _inner(scan, cmd, idx):
        scan.add("unknown", "doas opens a root shell", cmd.text)


def _env(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    i = 0
    assigns: list[tuple[str, str]] = []
    while i < len(args):
        a = args[i]
        if a in ("-S", "--split-string") or a.startswith(("--split-string=", "-S")):
            if a in ("-S", "--split-string"):
                s = args[i + 1] if i + 1 < len(args) else ""
                i += 2
            else:
                s = a.split("=", 1)[1] if a.startswith("--") else a[2:]
                i += 1
            if assigns:
                env_effects(scan, assigns, text, persistent=False)
            rest = " ".join(args[i:])
            scan.shell((s + " " + rest).strip(), text)
            return
        if a in ("-u", "--unset", "-C", "--chdir", "-P"):
            if a in ("-C", "--chdir") and i + 1 < len(args):
                scan.cwd = scan.path(args[i + 1], "read", text) or scan.cwd
            i += 2
            continue
        if a == "--":
            i += 1
            continue
        if a.startswith("-") and len(a) > 1:
            i += 1
            continue
        name, eq, value = a.partition("=")
        if eq and name and (name.isidentifier() or PH in name):
            assigns.append((name, value))
            i += 1
            continue
        break
    if assigns:
        env_effects(scan, assigns, text, persistent=False)
    if i < len(args):
        # the program sees the variables as if assigned before it (`env PYTHONPATH=. python3 ...`)
        scan.run(Cmd(args[i:], text, cmd.stdin, [*cmd.env, *assigns], cmd.tail))
    else:
        scan.add("repo.read", "env prints the environment", text)


_XARGS_SHORT: Final = "ILndEsaPJ"
_XARGS_LONG: Final = frozenset(
    {
        "--max-lines",
        "--max-args",
        "--delimiter",
        "--eof",
        "--max-chars",
        "--arg-file",
        "--max-procs",
        "--process-slot-var",
    }
)
#: Invocations classified one by one; beyond that the input counts as run-time text.
_MAX_RUNS: Final = 32


def _replace_str(opts: list[str], o: Opts) -> str | None:
    """xargs's replace string: ``-I R``, BSD ``-J R``, ``-i[R]``, ``--replace[=R]`` (default ``{}``)."""
    repl = o.get("-I", "-J")
    for a in opts:
        if a == "--replace" or (a[:2] == "-i" and a[:3] != "--i"):
            repl = a[2:] or "{}"
        elif a.startswith("--replace="):
            repl = a[10:] or "{}"
    return repl


def _xargs_items(stdin: str, o: Opts, repl: str | None) -> list[str] | None:
    """The arguments xargs reads from ``stdin``; None when it cannot tell."""
    delim = "\0" if o.has("-0", "--null") else o.get("-d", "--delimiter")
    if delim is not None:
        if delim in ("\\n", "\n"):
            return [x for x in stdin.split("\n") if x]
        return [x for x in stdin.split(delim) if x] if len(delim) == 1 else None
    if repl is not None:
        return [line.lstrip() for line in stdin.splitlines() if line.strip()]
    try:
        return shlex.split(stdin)
    except ValueError:
        return None


#: What a run-time argument reads as inside shell code (``sh -c 'rm -rf {}'``): an expansion.
_SHELL_ARG: Final = '"$ARG"'


def _run_unknown_arg(scan: Scan, cmd: Cmd, argv: list[str], put: Callable[[str, str], str]) -> None:
    """Classify ``argv`` with a run-time value put in (``put(word, value)``): as run-time text in the
    argv, and as an expansion where a shell's code holds it (so ``sh -c 'rm -rf {}'`` is still rm)."""
    scan.run(cmd.sub([put(w, PH) for w in argv], tail=False))
    if command_name(argv[0]) in SHELLS:
        scan.run(cmd.sub([put(w, _SHELL_ARG) for w in argv], tail=False))


def _xargs(scan: Scan, cmd: Cmd) -> None:
    """``xargs CMD``: CMD with the words of its input appended (or put in place of ``-I``'s string).

    A known input (``echo rm -rf x | xargs -I{} sh -c {}``) is classified as the commands it makes;
    an unknown one is run-time text (``PH``) wherever it lands."""
    args = cmd.args
    idx = first_positional(args, _XARGS_SHORT, _XARGS_LONG)
    opts = list(args[:idx])
    o = parse(opts, _XARGS_SHORT, _XARGS_LONG)
    for f in o.all("-a", "--arg-file"):
        scan.path(f, "read", cmd.text)
    argv = cmd.argv[1 + idx :] or ["echo"]
    repl = _replace_str(opts, o)
    stdin = None if o.has("-a", "--arg-file") else cmd.stdin
    items = _xargs_items(stdin, o, repl) if stdin is not None and PH not in stdin else None
    runs: list[list[str]] | None = None
    if items is not None:
        if repl is not None:
            runs = [[a.replace(repl, it) for a in argv] for it in items]
        else:
            n = o.get("-n", "--max-args", "-L", "--max-lines") or ""
            k = int(n) if n.isdigit() and int(n) > 0 else len(items) or 1
            runs = [argv + items[i : i + k] for i in range(0, len(items), k)] or [argv]
        if len(runs) > _MAX_RUNS:
            runs = None
    if runs is None:
        if repl is not None:
            _run_unknown_arg(scan, cmd, argv, lambda w, v: w.replace(repl, v))
        else:
            scan.run(cmd.sub(argv, tail=True))
        return
    for run in runs:
        # The command's own input is /dev/null.
        scan.run(Cmd(run, cmd.text, "", cmd.env))


def _nice(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--adjustment"):
            i += 2
        elif a.startswith("-") and (a[1:].lstrip("-").isdigit() or a.startswith(("-n", "--adjustment="))):
            i += 1
        elif a == "--":
            i += 1
            break
        else:
            break
    if not _inner(scan, cmd, 1 + i):
        scan.add("repo.read", "nice prints the niceness", cmd.text)


def _timeout(scan: Scan, cmd: Cmd) -> None:
    idx = first_positional(cmd.args, "sk", frozenset({"--signal", "--kill-after"}))
    if not _inner(scan, cmd, 2 + idx):
        scan.add("repo.read", "timeout without a command", cmd.text)


def _time(scan: Scan, cmd: Cmd) -> None:
    idx = first_positional(cmd.args, "fo", frozenset({"--format", "--output"}))
    o = parse(cmd.args[:idx], "fo", frozenset({"--format", "--output"}))
    for out in o.all("-o", "--output"):
        scan.path(out, "write", cmd.text)
    if not _inner(scan, cmd, 1 + idx):
        scan.add("repo.read", "time without a command", cmd.text)


def _command(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    if any(a in ("-v", "-V") for a in args[:2]):
        scan.add("repo.read", "command -v looks a name up", cmd.text)
        return
    idx = 1 + first_positional(args)
    if not _inner(scan, cmd, idx):
        scan.add("repo.read", f"{cmd.name} without a command", cmd.text)


def _exec(scan: Scan, cmd: Cmd) -> None:
    idx = 1 + first_positional(cmd.args, "a")
    if not _inner(scan, cmd, idx):
        scan.add("repo.read", "exec only redirects", cmd.text)


def _watch(scan: Scan, cmd: Cmd) -> None:
    longs = frozenset({"--interval", "--differences", "--chgexit"})
    idx = first_positional(cmd.args, "n", longs)
    o = parse(cmd.args[:idx], "n", longs)
    rest = cmd.args[idx:]
    if not rest:
        scan.add("repo.read", "watch without a command", cmd.text)
    elif o.has("-x", "--exec"):
        scan.run(cmd.sub(rest))
    else:
        scan.shell(" ".join(rest), cmd.text)


def _su(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "cgGsw", frozenset({"--command", "--group", "--shell", "--whitelist-environment"}))
    text = cmd.text
    c = o.get("-c", "--command")
    if c is not None:
        scan.shell(c, text)
    elif cmd.name == "runuser" and "--" in cmd.args:
        scan.run(cmd.sub(cmd.args[cmd.args.index("--") + 1 :]))
    else:
        scan.add("unknown", f"{cmd.name} opens a shell as another user", text)


def _flock(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "wEc", frozenset({"--timeout", "--conflict-exit-code", "--command"}), True)
    c = o.get("-c", "--command")
    if c is not None:
        scan.shell(c, cmd.text)
    elif len(o.pos) > 1:
        scan.run(cmd.sub(o.pos[1:]))
    else:
        scan.add("repo.read", "flock on a descriptor", cmd.text)


def _trace(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "oespSbEIPuUaX", frozenset({"--output"}), True)
    for out in o.all("-o", "--output"):
        scan.path(out, "write", cmd.text)
    if o.pos:
        scan.run(cmd.sub(o.pos))
    else:
        scan.add("unknown", f"{cmd.name} attaches to a process", cmd.text)


def _script(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "cEIOTBm", frozenset({"--command", "--log-out", "--log-in", "--log-timing"}))
    c = o.get("-c", "--command")
    if c is not None:
        scan.shell(c, cmd.text)
    else:
        scan.add("unknown", "script opens a shell", cmd.text)
    for p in o.pos[:1]:
        scan.path(p, "write", cmd.text)


#: GNU parallel's replacement strings: {} {.} {/} {//} {/.} {#} {%} {N} {N.} ... and {= perl =}.
_PARALLEL_REPL: Final = re.compile(r"\{(?:\d*(?:\.|/|//|/\.)?|#|%|=.*?=)\}")
_PARALLEL_SEPS: Final = frozenset({":::", "::::", ":::+", "::::+"})


def _parallel_inputs(scan: Scan, cmd: Cmd, args: list[str], stop: int) -> list[str] | None:
    """The input values of ``parallel`` when they are known (``::: a b``, a known stdin); else None."""
    if stop < len(args):
        values: list[str] = []
        for a in args[stop:]:
            if a in ("::::", "::::+"):
                return None
            if a not in _PARALLEL_SEPS:
                values.append(a)
        return values if all(PH not in v for v in values) else None
    stdin = cmd.stdin
    if stdin is None or PH in stdin:
        return None
    return [line for line in stdin.splitlines() if line.strip()]


def _parallel(scan: Scan, cmd: Cmd) -> None:
    """``parallel CMD ::: ARGS`` or input lines: each value put in CMD's replacement strings (or appended)
    and the result run by a shell; with no CMD, each value is a command."""
    args = cmd.args
    text = cmd.text
    stop = next((i for i, a in enumerate(args) if a in _PARALLEL_SEPS), len(args))
    longs = frozenset({"--jobs", "--sshlogin", "--delay", "--timeout"})
    idx = first_positional(args[:stop], "jSIP", longs)
    inner = " ".join(args[idx:stop])
    if any(a in ("-S", "--sshlogin") or a.startswith("--sshlogin") for a in args[:idx]):
        scan.add("network.egress", "parallel runs commands on remote hosts", text)
    repl = parse(args[:idx], "jSIP", longs).get("-I")
    values = _parallel_inputs(scan, cmd, list(args), stop)
    if values is not None and len(values) > _MAX_RUNS:
        values = None
    if not inner:
        if values is None:
            scan.add("unknown", "parallel runs commands from its input", text)
        for v in values or ():
            scan.shell(v, text)
        return
    has_repl = (repl is not None and repl in inner) or _PARALLEL_REPL.search(inner) is not None

    def fill(v: str) -> str:
        if not has_repl:
            return inner + " " + v
        out = inner.replace(repl, v) if repl else inner
        return _PARALLEL_REPL.sub(lambda _m: v, out)

    if values is None:
        # Input known only at run time: one argument (parallel quotes it) wherever it goes.
        words = list(args[idx:stop])
        if has_repl:
            _run_unknown_arg(
                scan, cmd, words, lambda w, v: _PARALLEL_REPL.sub(lambda _m: v, w.replace(repl, v) if repl else w)
            )
        else:
            scan.run(cmd.sub(words, tail=True))
    else:
        for v in values or [""]:
            scan.shell(fill(v) if values else inner, text)


def _secrets_runner(scan: Scan, cmd: Cmd) -> None:
    """``op run -- cmd``, ``doppler run -- cmd``, ``aws-vault exec p -- cmd``: inject secrets."""
    args = cmd.args
    text = cmd.text
    if cmd.name == "aws-vault" and len(args) > 1 and args[0] == "exec":
        profile = next((a for a in args[1:] if not a.startswith("-")), "")
        if profile:
            scan.resource("account", "aws:" + profile)
    if "--" in args:
        scan.add("secrets.modify", f"{cmd.name} injects secrets into a command", text)
        scan.run(cmd.sub(args[args.index("--") + 1 :]))
    elif args and args[0] in ("exec", "run"):
        scan.add("secrets.modify", f"{cmd.name} injects secrets into a command", text)
        pos = [a for a in args[1:] if not a.startswith("-")]
        if cmd.name == "aws-vault" and len(pos) > 1:
            scan.run(cmd.sub(pos[1:]))
        elif cmd.name != "aws-vault" and pos:
            scan.run(cmd.sub(pos))
    else:
        scan.add("secrets.modify", f"{cmd.name} reads or writes secrets", text)


def _unknown_then(reason: str, short_val: str = "") -> Handler:
    """Wrappers that change the execution environment in ways the classifier can't follow."""

    def handle(scan: Scan, cmd: Cmd) -> None:
        scan.add("unknown", f"{cmd.name} {reason}", cmd.text)
        idx = 1 + first_positional(cmd.args, short_val)
        if cmd.name == "chroot":
            idx += 1
        _inner(scan, cmd, idx)

    return handle


def _proxy(scan: Scan, cmd: Cmd) -> None:
    scan.add("network.egress", f"{cmd.name} routes traffic through a proxy", cmd.text)
    idx = 1 + first_positional(cmd.args, "fq")
    _inner(scan, cmd, idx)


def _entr(scan: Scan, cmd: Cmd) -> None:
    idx = 1 + first_positional(cmd.args)
    if cmd.argv[idx : idx + 1] == ["sh"] or cmd.argv[idx : idx + 1] == ["bash"]:
        _inner(scan, cmd, idx)
        return
    if not _inner(scan, cmd, idx, tail=True):
        scan.add("repo.read", "entr without a command", cmd.text)


HANDLERS: Final[dict[str, Handler]] = {
    "sudo": _sudo,
    "sudoedit": _sudo,
    "doas": _doas,
    "env": _env,
    "xargs": _xargs,
    "nice": _nice,
    "renice": _simple("npgu"),
    "ionice": _simple("cnpt"),
    "timeout": _timeout,
    "gtimeout": _timeout,
    "nohup": _simple(),
    "setsid": _simple(),
    "chronic": _simple(),
    "unbuffer": _simple(),
    "caffeinate": _simple("tw"),
    "stdbuf": _simple("ioe"),
    "time": _time,
    "command": _command,
    "builtin": _command,
    "exec": _exec,
    "watch": _watch,
    "su": _su,
    "runuser": _su,
    "flock": _flock,
    "strace": _trace,
    "ltrace": _trace,
    "script": _script,
    "parallel": _parallel,
    "xvfb-run": _simple("nsafe"),
    "taskset": _simple("c"),
    "numactl": _simple("CNmp"),
    "chrt": _simple(),
    "faketime": _simple("f"),
    "catchsegv": _simple(),
    "dbus-run-session": _simple(),
    "ssh-agent": _simple("aEPt"),
    "entr": _entr,
    "op": _secrets_runner,
    "doppler": _secrets_runner,
    "aws-vault": _secrets_runner,
    "infisical": _secrets_runner,
    "chamber": _secrets_runner,
    "chroot": _unknown_then("changes the root directory"),
    "nsenter": _unknown_then("enters other namespaces", "tmunipUCrwS"),
    "unshare": _unknown_then("creates namespaces"),
    "systemd-run": _unknown_then("starts a system unit", "pEu"),
    "firejail": _unknown_then("runs in a sandbox profile"),
    "proxychains": _proxy,
    "proxychains4": _proxy,
    "torsocks": _proxy,
    "tsocks": _proxy,
}
