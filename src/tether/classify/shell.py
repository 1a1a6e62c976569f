"""Shell text -> simple commands, via tree-sitter-bash.

The walker visits every node that can run something: lists, pipelines, subshells, groups,
control flow, function bodies, command and process substitutions, heredoc bodies, and hands each
simple command (argv with ``PH`` for run-time text, its redirects and known stdin) to the per-tool
dispatcher. ERROR and MISSING nodes make the result ``unknown`` with ``parsed=False``.
"""

from __future__ import annotations

import re
import threading
from typing import Final

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from tether.classify.envvars import SECRET_VAR
from tether.classify.paths import PH
from tether.classify.programs import SHELLS, read_text
from tether.classify.recover import judge
from tether.classify.scan import Cmd, Scan, command_name

_LANGUAGE: Final = Language(tree_sitter_bash.language())
# A tree-sitter Parser is not safe to share between threads (the daemon classifies on many at once):
# one per thread, made on first use.
_LOCAL = threading.local()
#: Every byte >= 0x80 becomes 0x01 before parsing. tree-sitter-bash's external scanner calls ``isdigit()``
#: on the lookahead code point (brace expansion after ``{``): a code point above 255 indexes past glibc's
#: table and can crash the process. 0x01 is to tree-sitter what a non-ASCII byte is to bash: a plain word
#: character, not whitespace, not part of a name (tree-sitter's own ``\s`` and ``\w`` are Unicode-wide,
#: bash's are ASCII, so ``A\u3000B`` was two words and ``LDé_PRELOAD=x ls`` an assignment). Each byte is
#: replaced by one, so node offsets are offsets into the original bytes, which the walker slices.
_ASCII_ONLY: Final = bytes(range(128)) + b"\x01" * 128


def parse(src: bytes) -> Node:
    """The syntax tree of ``src``; the parser itself only ever sees ASCII (see ``_ASCII_ONLY``).

    Node offsets are offsets into ``src``: slice the original bytes for the text."""
    parser: Parser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = Parser(_LANGUAGE)
    return parser.parse(src if src.isascii() else src.translate(_ASCII_ONLY)).root_node

#: Nodes whose children are statements (or hold statements somewhere below).
_CONTAINERS: Final = frozenset(
    {
        "program",
        "list",
        "compound_statement",
        "do_group",
        "if_statement",
        "elif_clause",
        "else_clause",
        "while_statement",
        "for_statement",
        "c_style_for_statement",
        "case_statement",
        "case_item",
        "negated_command",
        "test_command",
        "ERROR",
    }
)
_SCOPED: Final = frozenset({"subshell", "command_substitution", "process_substitution"})
_LEAVES: Final = frozenset({"comment", "word", "number", "raw_string", "variable_name", "string_content"})
_REDIRECTS: Final = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_WRITE_OPS: Final = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_DEVICES: Final = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "-"})
_DQ_ESCAPES: Final = frozenset('"\\$`')
_MAX_TEXT: Final = 240
_PRINTERS: Final = frozenset({"echo", "printf", "cat"})
#: Commands whose input from ``< FILE`` is read now and classified: shells run it, patch applies it.
_STDIN_TEXT: Final = SHELLS | {"patch"}
#: Commands whose input may be run as commands: ``cat FILE | X`` reads FILE for them.
_FEEDS: Final = SHELLS | {"xargs", "parallel", "sudo", "doas", "env", "su", "busybox", "nohup", "timeout", "exec",
                          "command", "eval"}



def walk_text(scan: Scan, text: str, command: str = "") -> None:
    """Parse ``text`` as bash and add everything it does to ``scan``."""
    if not text.endswith("\n"):
        # A trailing newline also spares tree-sitter a slow error-recovery pass on pipelines.
        text += "\n"
    src = text.encode("utf-8", "replace")
    root = parse(src)
    if root.has_error:
        scan.fail("shell syntax could not be parsed", _clip(command or text))
    # Byte offsets are character offsets when the text is ASCII: slice the str, skip decoding.
    walker = _Walker(scan, src, text if len(src) == len(text) else None)
    try:
        if root.type == "program":
            for c in root.children:
                if c.type == "command":
                    walker.command(c, None, None, c)
                elif c.is_named:
                    walker.stmt(c, None)
                elif c.is_missing:
                    scan.fail("shell syntax is incomplete")
        else:
            walker.stmt(root, None)
    except RecursionError:  # the walker recurses with the tree: hundreds of nested $( ( { levels
        scan.fail("shell nesting is too deep to classify", _clip(command or text))


def _clip(s: str) -> str:
    if len(s) > _MAX_TEXT or s[:1].isspace() or s[-1:].isspace():
        s = s.strip()
        if len(s) > _MAX_TEXT:
            return s[: _MAX_TEXT - 1] + "…"
    return s


class _Walker:
    __slots__ = ("ascii", "feeds_shell", "scan", "secret_vars", "src")

    def __init__(self, scan: Scan, src: bytes, ascii_text: str | None) -> None:
        self.scan = scan
        self.src = src
        self.ascii = ascii_text
        #: Secret-looking variables expanded in the command being built.
        self.secret_vars: list[str] = []
        #: The pipeline stage being walked pipes into a shell (``cat FILE | sh``: the file's text is read).
        self.feeds_shell = False

    def text(self, n: Node) -> str:
        if self.ascii is not None:
            return self.ascii[n.start_byte : n.end_byte]
        return self.src[n.start_byte : n.end_byte].decode("utf-8", "replace")

    # -------------------------------------------------------------------------------- statements

    def stmt(self, n: Node, stdin: str | None) -> str:
        """Walk a statement; returns what it writes to stdout when known literally, else PH."""
        t = n.type
        if t == "command":
            return self.command(n, stdin, None, n)
        if t == "pipeline":
            self.pipeline(n, stdin)
        elif t == "redirected_statement":
            return self.redirected(n, stdin)
        elif t in _CONTAINERS:
            if n.is_missing:
                self.scan.fail("shell syntax is incomplete")
            for c in n.children:
                if c.is_named:
                    self.stmt(c, None)
                elif c.is_missing:
                    self.scan.fail("shell syntax is incomplete")
        elif t in _SCOPED:
            self.scoped(n)
        elif t == "variable_assignment":
            name, value = self.assignment(n)
            self.scan.argv_fn(self.scan, Cmd([], _clip(self.text(n)), None, [(name, value)]))
        elif t == "declaration_command":
            self.declaration(n)
        elif t == "function_definition":
            cwd = self.scan.cwd
            for c in n.children:
                if c.type != "word" and c.is_named:
                    self.stmt(c, None)
            self.scan.cwd = cwd
        elif t in _LEAVES:
            pass
        elif n.is_missing:
            self.scan.fail("shell syntax is incomplete")
        else:
            for c in n.children:
                if c.is_named:
                    self.stmt(c, None)
                elif c.is_missing:
                    self.scan.fail("shell syntax is incomplete")
        return PH

    def scoped(self, n: Node) -> None:
        """A subshell or substitution: its ``cd`` does not leak out."""
        cwd = self.scan.cwd
        for c in n.children:
            if c.is_named:
                self.stmt(c, None)
            elif c.is_missing:
                self.scan.fail("shell syntax is incomplete")
        self.scan.cwd = cwd

    def pipeline(
        self, n: Node, stdin: str | None, prev: str | None = None, last_redirects: list[Node] | None = None
    ) -> str:
        out = prev
        first = prev is None
        stages = [c for c in n.children if c.is_named]
        if any(c.is_missing for c in n.children):
            self.scan.fail("shell syntax is incomplete")
        for i, c in enumerate(stages):
            stage_in = stdin if first else (out if out is not None else PH)
            self.feeds_shell = i + 1 < len(stages) and self.runs_code(stages[i + 1])
            if last_redirects and i == len(stages) - 1:
                out = self.with_redirects(c, stage_in, last_redirects, c)
            else:
                out = self.stmt(c, stage_in)
            first = False
        self.feeds_shell = False
        return out if out is not None else PH

    def runs_code(self, n: Node) -> bool:
        """Whether pipeline stage ``n`` is a command that may run its input (a shell, xargs, sudo sh...)."""
        if n.type == "redirected_statement" and n.child_count:
            n = n.children[0]
        if n.type != "command":
            return False
        for c in n.children:
            if c.type == "command_name":
                return command_name(self.text(c)) in _FEEDS
        return False

    def redirected(self, n: Node, stdin: str | None) -> str:
        children = n.children
        body = children[0]
        redirects = [c for c in children[1:] if c.type in _REDIRECTS]
        if body.type in _REDIRECTS:
            redirects.insert(0, body)
            return self.command(None, stdin, redirects, n)
        return self.with_redirects(body, stdin, redirects, n)

    def with_redirects(self, body: Node, stdin: str | None, redirects: list[Node], whole: Node) -> str:
        """Walk ``body`` with ``redirects`` applied where bash applies them.

        tree-sitter hangs a trailing redirect on a whole list or pipeline (``a && b > f``); bash
        applies it to the last command only.
        """
        t = body.type
        if t == "command":
            return self.command(body, stdin, redirects, whole)
        if t == "list":
            named = [c for c in body.children if c.is_named]
            if any(c.is_missing for c in body.children):
                self.scan.fail("shell syntax is incomplete")
            for c in named[:-1]:
                self.stmt(c, None)
            return self.with_redirects(named[-1], None, redirects, named[-1]) if named else PH
        if t == "pipeline":
            return self.pipeline(body, stdin, None, redirects)
        text = _clip(self.text(whole))
        here = self.apply_redirects(redirects, text, [])
        out = self.stmt(body, here if here is not None else stdin)
        self.continuations(redirects, out, text)
        return PH

    # ---------------------------------------------------------------------------------- commands

    def command(self, n: Node | None, stdin: str | None, redirects: list[Node] | None, whole: Node) -> str:
        scan = self.scan
        ascii_text = self.ascii
        text = ascii_text[whole.start_byte : whole.end_byte] if ascii_text is not None else self.text(whole)
        if len(text) > _MAX_TEXT or text[:1].isspace() or text[-1:].isspace():
            text = _clip(text)
        env: list[tuple[str, str]] = []
        argv: list[str] = []
        literal_name = True
        own_redirects: list[Node] = []
        if self.secret_vars:
            self.secret_vars.clear()
        for c in n.children if n is not None else ():
            t = c.type
            if t == "word":
                w = ascii_text[c.start_byte : c.end_byte] if ascii_text is not None else self.text(c)
                argv.append(_unescape(w) if "\\" in w else w)
            elif t == "command_name":
                inner = c.children[0] if c.child_count else None
                if inner is not None and inner.type == "word":
                    w = ascii_text[inner.start_byte : inner.end_byte] if ascii_text is not None else self.text(inner)
                    if w.startswith("\\"):
                        w = w[1:]
                    if not w or "\\" in w or "*" in w or "?" in w or "[" in w or "{" in w:
                        literal_name = False
                        w = _unescape(w)
                    argv.append(w)
                else:
                    literal_name = False
                    argv.append(self.word(inner) if inner is not None else PH)
            elif t == "variable_assignment":
                env.append(self.assignment(c))
            elif t in _REDIRECTS:
                own_redirects.append(c)
            elif t == "comment":
                continue
            elif c.is_named:
                argv.append(self.word(c))
            elif c.is_missing:
                scan.fail("shell syntax is incomplete", text)
        if redirects:
            own_redirects.extend(redirects)
        here = self.apply_redirects(own_redirects, text, argv) if own_redirects else None
        if here is not None:
            stdin = here
        if not literal_name:
            scan.add("unknown", "command name is not a literal word", text)
        out = PH
        if argv or env:
            # A name that resolves to plain text anyway (r""m is rm) is classified as that command
            # as well as unknown; one with run-time parts only as unknown.
            if not literal_name and (not argv or not argv[0] or PH in argv[0] or argv[0] != argv[0].strip()):
                argv = [PH + (argv[0] if argv else ""), *argv[1:]]
            cmd = Cmd(argv, text, stdin, env)
            if self.secret_vars:
                if cmd.name in _PRINTERS or cmd.name in ("printenv", "env", "export", "set"):
                    scan.add("secrets.modify", f"{cmd.name} prints secret variable ${self.secret_vars[0]}", text)
                self.secret_vars.clear()
            scan.argv_fn(scan, cmd)
            if cmd.name in _PRINTERS:
                out = _literal_output(cmd, scan, self.feeds_shell)
        if own_redirects:
            self.continuations(own_redirects, out, text)
        return out

    def apply_redirects(self, redirects: list[Node], text: str, argv: list[str]) -> str | None:
        """Record file redirects as reads/writes; returns heredoc/herestring stdin, if any."""
        scan = self.scan
        stdin: str | None = None
        for r in redirects:
            t = r.type
            if t == "file_redirect":
                op = ""
                dest: list[str] = []
                for c in r.children:
                    ct = c.type
                    if not c.is_named:
                        if c.is_missing:
                            scan.fail("shell syntax is incomplete", text)
                        else:
                            op = ct
                    elif ct != "file_descriptor":
                        dest.append(self.word(c))
                if not dest:
                    continue
                target, extra = dest[0], dest[1:]
                argv.extend(extra)
                if op in (">&", "<&", ">&-", "<&-") and (target.isdigit() or target == "-"):
                    continue
                if target in _DEVICES or target.startswith("/dev/fd/"):
                    continue
                if op in _WRITE_OPS or op == ">&":
                    written = scan.path(target, "write", text)
                    if op in (">", ">|", "&>", ">&"):  # truncates what was there (recover.judge)
                        judge(scan, written, "overwrites", text)
                    scan.add("pr.draft", "redirects output into a file", text)
                elif op == "<":
                    p = scan.path(target, "read", text)
                    if argv and command_name(argv[0]) in _STDIN_TEXT:
                        # bash < FILE runs the file, patch < FILE applies it: its text is the input.
                        code = read_text(p) if p is not None and not scan.wrote(p) else None
                        stdin = code if code is not None else PH
            elif t == "herestring_redirect":
                for c in r.children:
                    if c.is_named:
                        stdin = self.word(c) + "\n"
            elif t == "heredoc_redirect":
                for c in r.children:
                    ct = c.type
                    if ct == "heredoc_body":
                        stdin = self.heredoc_body(c)
                    elif ct == "file_redirect":
                        self.apply_redirects([c], text, argv)
                    elif c.is_missing:
                        scan.fail("shell syntax is incomplete", text)
        return stdin

    def continuations(self, redirects: list[Node], out: str, text: str) -> None:
        """Statements tree-sitter hangs under a heredoc redirect (``cat <<EOF | psql``)."""
        for r in redirects:
            if r.type != "heredoc_redirect":
                continue
            for c in r.children:
                ct = c.type
                if ct == "pipeline":
                    self.pipeline(c, None, out)
                elif ct in ("heredoc_body", "heredoc_start", "heredoc_end", "file_redirect"):
                    continue
                elif c.is_named:
                    self.stmt(c, None)

    def heredoc_body(self, n: Node) -> str:
        parts: list[str] = []
        pos = n.start_byte
        for c in n.children:
            if c.type in ("heredoc_content", "heredoc_end"):
                continue
            parts.append(self.src[pos : c.start_byte].decode("utf-8", "replace"))
            parts.append(self.word(c))
            pos = c.end_byte
        parts.append(self.src[pos : n.end_byte].decode("utf-8", "replace"))
        return "".join(parts)

    def assignment(self, n: Node) -> tuple[str, str]:
        name = ""
        value = ""
        for c in n.children:
            t = c.type
            if t == "variable_name":
                name = self.text(c)
            elif t == "subscript":
                name = self.text(c)
                self.word(c)
            elif c.is_named:
                value = self.word(c)
        return name, value

    def declaration(self, n: Node) -> None:
        env: list[tuple[str, str]] = []
        argv: list[str] = []
        for c in n.children:
            t = c.type
            if t == "variable_assignment":
                env.append(self.assignment(c))
            elif not c.is_named:
                argv.append(self.text(c))
            else:
                argv.append(self.word(c))
        scan = self.scan
        scan.argv_fn(scan, Cmd(argv, _clip(self.text(n)), None, env))

    # ------------------------------------------------------------------------------------- words

    def word(self, n: Node) -> str:
        """The literal text of an argument, with ``PH`` for every run-time part."""
        t = n.type
        if t == "word":
            a = self.ascii
            s = a[n.start_byte : n.end_byte] if a is not None else self.text(n)
            return _unescape(s) if "\\" in s else s
        if t == "raw_string":
            return self.text(n)[1:-1]
        if t == "number":
            return self.text(n)
        if t in ("string", "translated_string"):
            parts: list[str] = []
            src = self.src
            pos = -1
            for c in n.children:
                ct = c.type
                if pos >= 0 and c.start_byte > pos:
                    # tree-sitter leaves newlines between string_content nodes out of both.
                    gap = src[pos : c.start_byte].decode("utf-8", "replace")
                    parts.append(_unescape(gap, _DQ_ESCAPES) if "\\" in gap else gap)
                if ct == "string_content":
                    s = self.text(c)
                    parts.append(_unescape(s, _DQ_ESCAPES) if "\\" in s else s)
                elif c.is_named:
                    parts.append(self.word(c))
                elif c.is_missing:
                    self.scan.fail("shell syntax is incomplete")
                pos = c.end_byte
            return "".join(parts)
        if t == "concatenation":
            s = "".join(self.word(c) for c in n.children)
            if "{" in s and "}" in s and ("," in s or ".." in s):
                return PH + s
            return s
        if t in ("simple_expansion", "expansion"):
            return self.expansion(n)
        if t == "ansi_c_string":
            s = self.text(n)[2:-1]
            return s if "\\" not in s else PH
        if t in _SCOPED:
            self.scoped(n)
            return PH
        if n.is_missing:
            self.scan.fail("shell syntax is incomplete")
        for c in n.children:
            if c.is_named:
                self.word(c)
            elif c.is_missing:
                self.scan.fail("shell syntax is incomplete")
        return PH

    def expansion(self, n: Node) -> str:
        names = [c for c in n.children if c.is_named]
        for c in names:
            if c.type == "variable_name":
                v = self.text(c)
                if len(names) == 1:
                    if v == "HOME":
                        return "~"
                    if v == "PWD":
                        return self.scan.cwd
                if SECRET_VAR.search(v):
                    self.secret_vars.append(v)
            elif c.type != "special_variable_name":
                self.word(c)
        return PH


def _unescape(s: str, escapes: frozenset[str] | None = None) -> str:
    """``s`` with its backslash escapes undone: every one (an unquoted word), or only those of ``escapes`` (in
    double quotes, where any other backslash stays); a backslash-newline joins lines either way."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n:
            nxt = s[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if escapes is None or nxt in escapes:
                out.append(nxt)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _literal_output(cmd: Cmd, scan: Scan, feeds_shell: bool) -> str:
    """What a command prints, when that is obvious from its text (for ``echo SQL | psql``, ``... | sh``)."""
    name = cmd.name
    if name == "echo":
        return _echo(cmd.argv[1:])
    if name == "printf":
        return _printf(cmd.argv[1:])
    if name == "cat" and len(cmd.argv) == 1 and cmd.stdin is not None:
        return cmd.stdin
    if feeds_shell and name == "cat" and len(cmd.argv) == 2 and cmd.argv[1][:1] != "-" and PH not in cmd.argv[1]:
        # cat FILE | sh: the file's text, when it is a small text file this command does not write first.
        p = scan.path(cmd.argv[1], "read", cmd.text)
        if p is not None and not scan.wrote(p):
            return read_text(p) or PH
    return PH


def _echo(args: list[str]) -> str:
    """bash's ``echo``: only leading ``-n``/``-e``/``-E`` words are options (``echo rm -rf x`` prints ``-rf``)."""
    i = 0
    end = "\n"
    while i < len(args) and len(args[i]) > 1 and args[i][0] == "-" and all(c in "neE" for c in args[i][1:]):
        if "n" in args[i]:
            end = ""
        i += 1
    out = " ".join(args[i:])
    # A backslash: bash's echo keeps it without -e, dash's reads it as an escape: not known.
    return PH if "\\" in out else out + end


#: What ``printf`` emulation knows: %s %b %d %i %% and the escapes \\ \n \t \" \'.
_PRINTF: Final = re.compile(r"%[%sbdi]|\\[\\nt\"']")
_PRINTF_ESC: Final = {"\\\\": "\\", "\\n": "\n", "\\t": "\t", '\\"': '"', "\\'": "'"}
_PRINTF_ROUNDS: Final = 64


def _printf(args: list[str]) -> str:
    """``printf FORMAT ARGS`` output (the format reused while arguments remain); PH for what it does not know."""
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0][:1] == "-":
        return PH
    fmt, rest = args[0], list(args[1:])
    left = _PRINTF.sub("", fmt)
    if "%" in left or "\\" in left:
        return PH
    out: list[str] = []
    for _ in range(_PRINTF_ROUNDS):
        used = False

        def conv(m: re.Match[str]) -> str:
            nonlocal used
            t = m.group()
            if t[0] == "\\":
                return _PRINTF_ESC[t]
            if t == "%%":
                return "%"
            used = True
            v = rest.pop(0) if rest else ""
            return PH if t == "%b" and "\\" in v else v

        out.append(_PRINTF.sub(conv, fmt))
        if not rest or not used:
            break
    return PH if rest else "".join(out)
