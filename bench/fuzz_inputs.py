"""The hostile inputs of ``bench_fuzz``: input number ``i`` of seed ``s`` is always the same request, made from
its own ``random.Random(f"{s}:{i}")``, so any input a run reports can be rebuilt and sent again alone.

What an agent holding its own agent token can send: byte mutations of the classifier corpus, random Unicode
(astral code points, lone surrogates as JSON escapes and as raw bytes), deep nesting, 100 KB commands, NUL
bytes, odd numbers (NaN, 1e308, -1, 2**64, strings where numbers go), hook events with random fields
(``transcript_path`` at /dev/zero, a FIFO, a folder), report and task bodies, and paths and query strings
that name other agents, huge ids or nothing at all.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "tests/data/classify_corpus.yaml"
AGENT = "fuzz"
OTHER = "other"
HOOK_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "SessionStart", "SessionEnd", "Stop",
               "UserPromptSubmit", "Notification", "PermissionRequest", "SubagentStop", "PreCompact", "")
TOOLS = ("Bash", "Write", "Edit", "MultiEdit", "Read", "Glob", "Grep", "WebFetch", "WebSearch", "apply_patch",
         "shell", "exec_command", "local_shell", "unified_exec", "NotebookEdit", "Task", "mcp__x__y", "")
REPORT_KINDS = ("files.changed", "command.run", "tests.reported", "usage", "error", "retry", "log")
# Keys that collide with the parameters of the functions a body's fields are passed on to.
HOSTILE_KEYS = ("agent", "kind", "data", "self", "ts", "id", "task_id", "text", "note", "client", "session_id",
                "__proto__", "__class__", "input_tokens", "output_tokens", "cost_usd", "model", "paths")
ODD_NUMBERS: tuple[Any, ...] = (float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 1e-320, -1, 0, -0.0,
                                2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, "5", "", "NaN", True, None, [],
                                {}, [1], {"a": 1}, "1e999", 3.5)
# Waits that are invalid or about zero: a valid positive wait holds the call for a human by design.
ODD_WAITS = (*(v for v in ODD_NUMBERS if v not in (True, 3.5, "5")), 0, 0.0, 1e-9)
# ``transcript_path`` values: endless files, a folder, a FIFO (made by the harness), the daemon's own state.
TRANSCRIPTS = ("/dev/zero", "/dev/urandom", "/dev/null", "/proc/self/mem", "/proc/self/environ", "/", "/etc",
               "/etc/shadow", "/nonexistent/x.jsonl", "", "\x00", "{fifo}", "{state}/tether.db", "{state}",
               "../../../../etc/passwd", "{big}")
CWDS = ("{ws}", "/", "/proc", "/dev", "", ".", "..", "\x00", "/nonexistent", "{state}", "relative/x", "{ws}/../..")
DEEP = re.compile(rb'"@@DEEP(\d+)@@"')
SPICE = (b"\x00", b"{", b"}", b"$(", b"`", b"'", b'"', b"\\", b"\n", b"\r", b";", b"|", b"&&", b">", b"<<",
         b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x80\xae", b"${IFS}", b"%s", b"\t")


@dataclass
class Input:
    """One request: what is sent, and the route it is counted under."""

    index: int
    category: str
    route: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "agent"  # agent | other (another agent's token) | none | garbage


def corpus() -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """The classifier corpus: its shell commands and its tool calls."""
    cases = yaml.safe_load(CORPUS.read_text())["cases"]
    shells = [c["shell"] for c in cases if "shell" in c]
    tools = [(c["tool"], c.get("input") or {}) for c in cases if "tool" in c]
    return shells, tools


class Maker:
    """Builds input ``i``; ``places`` fills the ``{ws}``, ``{state}``, ``{fifo}``, ``{big}`` placeholders."""

    def __init__(self, seed: int, places: dict[str, str], only: frozenset[str] = frozenset()) -> None:
        self.seed = seed
        self.places = places
        self.shells, self.tools = corpus()
        self.kinds = [(self.check, 50), (self.hook, 20), (self.report, 7), (self.heartbeat, 5), (self.tasks, 5),
                      (self.reads, 6), (self.forbidden, 3), (self.odd_path, 4)]
        if only:  # some categories alone (to find which one a figure comes from); other numbering then
            self.kinds = [(fn, w) for fn, w in self.kinds if fn.__name__ in only]
        self.weights = [w for _, w in self.kinds]

    def make(self, index: int) -> Input:
        rng = random.Random(f"{self.seed}:{index}")
        fn = rng.choices([k for k, _ in self.kinds], self.weights)[0]
        got: Input = fn(rng, index)
        roll = rng.random()
        if roll < 0.01:
            got.auth = "none"
        elif roll < 0.02:
            got.auth = "garbage"
        elif roll < 0.03:
            got.auth = "other"
        return got

    # -- pieces --------------------------------------------------------------------------------------
    def place(self, s: str) -> str:
        for k, v in self.places.items():
            s = s.replace("{" + k + "}", v)
        return s

    def command(self, rng: random.Random) -> str:
        """A corpus command, mutated as bytes or as text, or random Unicode, or huge."""
        roll = rng.random()
        base = rng.choice(self.shells)
        if roll < 0.45:
            return decode(rng, mutate(rng, base.encode(), self.shells))
        if roll < 0.6:
            return base
        if roll < 0.8:
            return base + " " + unicode_text(rng, rng.randint(1, 60))
        if roll < 0.9:
            return unicode_text(rng, rng.randint(0, 200))
        if roll < 0.995:
            return " ".join(rng.choice(self.shells) for _ in range(rng.randint(2, 40)))
        return big_command(rng, base)

    def value(self, rng: random.Random, depth: int = 0) -> Any:
        """Any JSON value: strings, odd numbers, nested containers with hostile keys."""
        roll = rng.random()
        if roll < 0.3 or depth > 4:
            return rng.choice((unicode_text(rng, rng.randint(0, 30)), self.command(rng)))
        if roll < 0.5:
            return rng.choice(ODD_NUMBERS)
        if roll < 0.7:
            return [self.value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        if roll < 0.99:
            return {self.key(rng): self.value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
        return f"@@DEEP{rng.choice((50, 300, 1000, 5000, 5000, 50_000))}@@"  # made raw by ``encode``

    def key(self, rng: random.Random) -> str:
        return rng.choice(HOSTILE_KEYS) if rng.random() < 0.5 else unicode_text(rng, rng.randint(0, 12))

    def tool_input(self, rng: random.Random, tool: str) -> Any:
        if rng.random() < 0.3:
            seen = dict(rng.choice(self.tools)[1])
            for k in list(seen):
                if isinstance(seen[k], str) and rng.random() < 0.5:
                    seen[k] = decode(rng, mutate(rng, seen[k].encode(), self.shells))
            return seen
        inp: dict[str, Any] = {}
        for k in rng.sample(("command", "cmd", "file_path", "path", "content", "old_string", "new_string",
                             "patch", "input", "url", "pattern", "notebook_path", "edits", "timeout"),
                            rng.randint(1, 4)):
            roll = rng.random()
            inp[k] = (self.command(rng) if roll < 0.5 else self.place(rng.choice(CWDS + TRANSCRIPTS))
                      if roll < 0.7 else self.value(rng))
        if tool in ("Bash", "shell", "exec_command", "local_shell") and rng.random() < 0.3:
            inp["command"] = [self.command(rng) for _ in range(rng.randint(0, 4))]  # Codex passes argv lists
        return inp

    # -- the routes ------------------------------------------------------------------------------------
    def check(self, rng: random.Random, i: int) -> Input:
        path = f"/v1/agents/{AGENT}/check"
        body: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.6:
            body["command"] = self.command(rng)
        elif roll < 0.8:
            tool = rng.choice(TOOLS) if rng.random() < 0.8 else unicode_text(rng, 10)
            body["tool"], body["input"] = tool, self.tool_input(rng, tool)
        elif roll < 0.9:
            body["path"] = self.place(rng.choice(CWDS + TRANSCRIPTS)) + unicode_text(rng, rng.randint(0, 5))
            body["op"] = rng.choice(("read", "write", "delete", "exec", "x", ""))
        else:
            body["url"] = rng.choice(("http://", "https://", "ftp://", "file://", "")) + unicode_text(rng, 30)
            body["method"] = rng.choice(("GET", "POST", "DELETE", "\x00", "x" * 20))
        for k in ("cwd", "wait", "action", "detail", "op"):
            if rng.random() < 0.15:
                body[k] = (self.place(rng.choice(CWDS)) if k == "cwd" else rng.choice(ODD_WAITS) if k == "wait"
                           else self.value(rng))
        if rng.random() < 0.05:
            body[self.key(rng)] = self.value(rng)
        if rng.random() < 0.005:
            body = {"tool": "Bash", "input": f"@@DEEP{rng.choice((1000, 100_000))}@@"}
        return Input(i, "check", "POST /v1/agents/{agent}/check", "POST", path, encode(rng, body))

    def hook(self, rng: random.Random, i: int) -> Input:
        client = rng.choice(("claude-code", "codex"))
        mine = rng.random() < 0.8
        path = f"/v1/hooks/{client}/{AGENT}" if mine else f"/v1/hooks/{client}"
        route = f"POST /v1/hooks/{client}" + ("/{agent}" if mine else "")
        event = rng.choice(HOOK_EVENTS) if rng.random() < 0.95 else unicode_text(rng, 10)
        tool = rng.choice(TOOLS)
        p: dict[str, Any] = {"hook_event_name": event, "session_id": rng.choice(("s1", "s2", unicode_text(rng, 8))),
                             "tool_name": tool, "tool_input": self.tool_input(rng, tool),
                             "cwd": self.place(rng.choice(CWDS)), "tool_use_id": f"toolu_{rng.randint(0, 50)}"}
        if rng.random() < 0.5:
            p["transcript_path"] = self.place(rng.choice(TRANSCRIPTS))
        for k in ("prompt", "error", "message", "tool_response", "source", "model", "reason",
                  "last_assistant_message", "is_interrupt", "notification_type", "permission_mode"):
            if rng.random() < 0.15:
                p[k] = self.value(rng)
        for k in list(p):
            if rng.random() < 0.05:
                p[k] = rng.choice(ODD_NUMBERS)  # a number or a list where a string goes
            elif rng.random() < 0.03:
                del p[k]
        headers = {}
        if rng.random() < 0.2:
            headers["X-Tether-Hold"] = rng.choice(("defer", "x", ""))
        if rng.random() < 0.2:
            headers["X-Tether-Wait"] = rng.choice(("0", "nan", "-1", "abc", "0.01", "1e-300", "-inf", ""))
        body = encode(rng, p) if rng.random() < 0.99 else rng.choice(
            (b"", b"null", b"[]", b"1", b'"x"', nested(rng, 100_000), rng.randbytes(200)))
        return Input(i, "hook", route, "POST", path, body, headers)

    def report(self, rng: random.Random, i: int) -> Input:
        kind = rng.choice(REPORT_KINDS) if rng.random() < 0.9 else unicode_text(rng, 12)
        data: Any = {self.key(rng): self.value(rng) for _ in range(rng.randint(0, 6))}
        if kind == "usage" and rng.random() < 0.5:
            data.update({k: rng.choice(ODD_NUMBERS) for k in ("input_tokens", "output_tokens", "cost_usd", "model")})
        if rng.random() < 0.05:
            data = rng.choice(ODD_NUMBERS)
        body = {"kind": kind, "data": data}
        return Input(i, "report", "POST /v1/agents/{agent}/report", "POST", f"/v1/agents/{AGENT}/report",
                     encode(rng, body))

    def heartbeat(self, rng: random.Random, i: int) -> Input:
        body: Any = {k: (unicode_text(rng, rng.randint(0, 1200)) if rng.random() < 0.7 else rng.choice(ODD_NUMBERS))
                     for k in rng.sample(("task", "progress", "x"), rng.randint(0, 3))}
        raw = encode(rng, body) if rng.random() < 0.9 else rng.choice((b"", b" ", b"null", rng.randbytes(50)))
        return Input(i, "heartbeat", "POST /v1/agents/{agent}/heartbeat", "POST", f"/v1/agents/{AGENT}/heartbeat",
                     raw)

    def tasks(self, rng: random.Random, i: int) -> Input:
        task_id = rng.choice((1, 2, 3, rng.randint(1, 500), -1, 0, 2**63, 2**64, "abc", "1e3", "%00", "1.5"))
        roll = rng.random()
        text: Any = rng.choice((self.command(rng), "", unicode_text(rng, 40), rng.choice(ODD_NUMBERS)))
        if roll < 0.35:
            return Input(i, "tasks", "POST /v1/agents/{agent}/tasks", "POST", f"/v1/agents/{AGENT}/tasks",
                         encode(rng, {"text": text}))
        if roll < 0.5:
            return Input(i, "tasks", "POST /v1/agents/{agent}/tasks/next", "POST",
                         f"/v1/agents/{AGENT}/tasks/next", b"")
        if roll < 0.7:
            return Input(i, "tasks", "POST /v1/agents/{agent}/tasks/{id}/start", "POST",
                         f"/v1/agents/{AGENT}/tasks/{task_id}/start", encode(rng, {"text": text}))
        body = {"ok": rng.choice((True, False, "yes", None, 1, 2**64)), "note": text}
        return Input(i, "tasks", "POST /v1/agents/{agent}/tasks/{id}/end", "POST",
                     f"/v1/agents/{AGENT}/tasks/{task_id}/end", encode(rng, body))

    def reads(self, rng: random.Random, i: int) -> Input:
        num = rng.choice(("0", "1", "-1", str(2**63), str(2**64), str(10**30), "nan", "inf", "1e308", "abc", "",
                          "%00", "0x10", "1_000"))
        choice = rng.randrange(7)
        if choice == 0:
            q = f"agent={rng.choice((AGENT, OTHER, '', pct(unicode_text(rng, 5))))}&after={num}&limit={num}"
            return Input(i, "reads", "GET /v1/events", "GET", f"/v1/events?{q}")
        if choice == 1:
            return Input(i, "reads", "GET /v1/agents/{agent}", "GET", f"/v1/agents/{AGENT}")
        if choice == 2:
            return Input(i, "reads", "GET /v1/agents/{agent}/tasks", "GET", f"/v1/agents/{AGENT}/tasks")
        if choice == 3:
            state = rng.choice(("pending", "all", "approved", "", pct(unicode_text(rng, 6))))
            return Input(i, "reads", "GET /v1/approvals", "GET", f"/v1/approvals?state={state}&agent={AGENT}")
        if choice == 4:
            return Input(i, "reads", "GET /v1/approvals/{id}", "GET", f"/v1/approvals/{num}")
        if choice == 5:  # the long poll, with small or odd timeouts only: a long one is a wait by design
            timeout = rng.choice(("0", "0.01", "nan", "-1", "-inf", "abc", "1e-300", ""))
            return Input(i, "reads", "GET /v1/approvals/{id}/wait", "GET",
                         f"/v1/approvals/{rng.choice(('1', '2', num))}/wait?timeout={timeout}")
        return Input(i, "reads", "GET /v1/health", "GET", "/v1/health")

    def forbidden(self, rng: random.Random, i: int) -> Input:
        """What an agent token must never do: decide, control, reload, shut down, act for another agent."""
        path = rng.choice((f"/v1/approvals/{rng.randint(1, 50)}/approve", f"/v1/approvals/{rng.randint(1, 50)}/deny",
                           f"/v1/agents/{AGENT}/kill", f"/v1/agents/{AGENT}/stop", f"/v1/agents/{OTHER}/check",
                           f"/v1/agents/{OTHER}/report", f"/v1/agents/{OTHER}/heartbeat", "/v1/reload",
                           "/v1/shutdown", f"/v1/hooks/codex/{OTHER}", f"/v1/agents/{AGENT}/restart"))
        body = encode(rng, rng.choice(({"reason": "x", "note": "y"}, {"command": "ls"}, {"kind": "log", "data": {}},
                                       {})))
        return Input(i, "forbidden", "POST (forbidden to an agent)", "POST", path, body)

    def odd_path(self, rng: random.Random, i: int) -> Input:
        """Odd agent names and paths: percent-encoded NUL and Unicode, dots, long names."""
        name = rng.choice((pct(unicode_text(rng, rng.randint(0, 30))), "%00", "..", "%2e%2e%2f",
                           "x" * rng.choice((1, 300, 10_000)), quote(AGENT + "\x00"), "%ff%fe", "%ed%a0%80"))
        tail = rng.choice(("check", "heartbeat", "report", "tasks", "tasks/next", ""))
        method = "GET" if tail in ("tasks", "") else "POST"
        return Input(i, "odd_path", f"{method} /v1/agents/<odd>/{tail}", method, f"/v1/agents/{name}/{tail}",
                     encode(rng, {"command": "ls"}) if method == "POST" else b"")


# -- text and bytes ----------------------------------------------------------------------------------------
def mutate(rng: random.Random, data: bytes, donors: list[str]) -> bytes:
    """1 to 8 byte mutations: flips, random bytes (incl. >= 0x80 and NUL), insertions, deletions, splices."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        at = rng.randint(0, len(b))
        if op == 0 and b:
            b[min(at, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[min(at, len(b) - 1)] = rng.randrange(256)
        elif op == 2:
            b[at:at] = rng.choice(SPICE)
        elif op == 3:
            b[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and b:
            del b[at:at + rng.randint(1, 8)]
        else:
            b[at:at] = rng.choice(donors).encode()[: rng.randint(1, 40)]
    return bytes(b)


def pct(text: str) -> str:
    """Percent-encoded UTF-8, lone surrogates passed through as their raw bytes."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def decode(rng: random.Random, data: bytes) -> str:
    """Bytes as a str the way a sloppy client would: replaced, Latin-1, or (rarely: the daemon refuses a body
    with them at once) lossless with lone surrogates."""
    how = rng.random()
    if how < 0.1:
        return data.decode("utf-8", "surrogateescape")
    if how < 0.4:
        return data.decode("latin-1")
    return data.decode("utf-8", "replace")


def unicode_text(rng: random.Random, n: int) -> str:
    """Random code points across the planes: ASCII, controls and NUL, combining marks, bidi overrides,
    CJK, astral (emoji, U+10FFFF), private use; in one text of ten, lone surrogates too."""
    top = 1.0 if rng.random() < 0.1 else 0.85
    out = []
    for _ in range(n):
        r = rng.random() * top
        if r < 0.35:
            c = rng.randint(0x20, 0x7E)
        elif r < 0.45:
            c = rng.randint(0, 0x1F)
        elif r < 0.55:
            c = rng.choice((0x300, 0x301, 0x200B, 0x200D, 0x202E, 0x2066, 0xFEFF, 0xFFFD, 0xFFFF, 0x85, 0x2028))
        elif r < 0.7:
            c = rng.choice((rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0xFFFF)))
        elif r < 0.85:
            c = rng.randint(0x10000, 0x10FFFF)
        else:
            c = rng.randint(0xD800, 0xDFFF)
        out.append(chr(c))
    return "".join(out)


def big_command(rng: random.Random, base: str) -> str:
    """A command of about 100 KB (the documented maximum, and just over it)."""
    size = rng.choice((100_000, 100_001, 99_999, 50_000))
    how = rng.randrange(4)
    if how == 0:
        return (base + " ") * (size // (len(base) + 1)) + "x" * (size % (len(base) + 1))
    if how == 1:
        return "echo " + "a" * (size - 5)
    if how == 2:
        return "(" * (size // 2) + ")" * (size // 2)  # deep nesting in the shell grammar
    return "$(" * (size // 3) + "x" + ")" * (size // 3)


def nested(rng: random.Random, depth: int) -> bytes:
    """JSON nested ``depth`` deep, as bytes (json.dumps itself would recurse too deep to build it)."""
    opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"command":', b"}")))
    return opener * depth + b"1" + closer * depth


def encode(rng: random.Random, body: Any) -> bytes:
    """JSON as sent: escaped (lone surrogates as \\ud800), raw UTF-8 with surrogates passed through, with NaN
    literals, sometimes cut short or with a byte changed (then it is not JSON)."""
    roll = rng.random()
    if roll < 0.6:
        data = json.dumps(body).encode()
    else:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if b"@@DEEP" in data:
        data = DEEP.sub(lambda m: nested(rng, int(m.group(1))), data)
    r = rng.random()
    if r < 0.03:
        data = data[: rng.randint(0, len(data))]
    elif r < 0.06 and data:
        at = rng.randrange(len(data))
        data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    return data
