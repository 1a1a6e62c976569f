"""Property tests: the classifier is total (never raises, never returns no actions) and honest
(``parsed=False`` always comes with ``unknown``), on random text, bash-ish token soups, mutated corpus
entries and random tool calls."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_classify_corpus import CASES, CTX
from tether.classify import Classification, Context, classify_path, classify_shell, classify_tool, classify_url
from tether.vocabulary import ACTION_CLASSES

SHELL_CASES = [str(c["shell"]) for c in CASES if "shell" in c]
TOOL_CASES = [(str(c["tool"]), dict(c.get("input") or {})) for c in CASES if "tool" in c]
RESOURCE_KINDS = {"path", "host", "url", "repo", "account", "branch", "script"}

TOKENS = [
    "rm", "-rf", "/", "ls", "git", "push", "--force", "origin", "main", "|", "||", "&&", ";", "&", "(", ")",
    "{", "}", "$(", "`", "'", '"', "\\", "$", "${", "}", "<", ">", ">>", "<<", "<<<", "EOF", "\n", " ", "*",
    "?", "[", "]", "~", "=", "X=1", "bash", "-c", "sh", "eval", "sudo", "env", "xargs", "find", "-exec",
    "{}", "\\;", "curl", "-d", "@.env", "https://x.io", "psql", "-c", "DROP TABLE t", "echo", "cat",
    ".claude/settings.json", "disableAllHooks", "python", "-c", "tether", "approve", "kill", "-9", "#",
    "if", "then", "fi", "for", "do", "done", "case", "esac", "in", "function", "!", "$'\\x72m'", "r\"\"m",
    "<(", ">(", "2>&1", "|&", "ssh", "host", "scp", "a:b", "gh", "pr", "create", "--draft", "terraform",
    "apply", "kubectl", "--context", "prod", "aws", "--profile", "s3", "rm", "s3://b", "\x00", "é", "😀",
    # code points above 255 where tree-sitter-bash's scanner once called isdigit() (after "{"): see
    # test_classify_crash.py, which runs them in child processes; the parser sees ASCII only
    "{1..", "..}", "\U0010a0ae", "\U00060c71", "\u3000", "\u0661", "\uff11", "Ú",
]
ARGV_TOKENS = st.sampled_from(TOKENS) | st.text(max_size=8)


def check(result: Classification) -> None:
    assert isinstance(result, Classification)
    assert result.actions, "never empty"
    for a in result.actions:
        assert a.klass in ACTION_CLASSES, a
        assert isinstance(a.reason, str) and a.reason
    for r in result.resources:
        assert r.kind in RESOURCE_KINDS, r
        assert r.value and "\x00" not in r.value, r
        if r.kind == "path":
            assert r.value.startswith("/"), r
    if not result.parsed:
        assert "unknown" in result.classes


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_random_text(text: str) -> None:
    check(classify_shell(text, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_token_soup(text: str) -> None:
    check(classify_shell(text, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_token_soup_glued(text: str) -> None:
    check(classify_shell(text, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SHELL_CASES),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["delete", "insert", "duplicate", "truncate"]),
    st.text(max_size=4),
)
def test_mutated_corpus(command: str, pos: int, how: str, junk: str) -> None:
    i = pos % (len(command) + 1)
    if how == "delete":
        mutated = command[:i] + command[i + 1 :]
    elif how == "insert":
        mutated = command[:i] + junk + command[i:]
    elif how == "duplicate":
        mutated = command[:i] + command[i:] + command[:i]
    else:
        mutated = command[:i]
    check(classify_shell(mutated, CTX))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
TOOL_NAMES = [
    "Bash", "Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep", "LS", "WebFetch", "WebSearch",
    "Task", "TodoWrite", "exec_command", "shell", "apply_patch", "mcp__github__get_issue", "mcp__x__send",
    "mcp__", "mcp____", "Unknown", "",
]
TOOL_KEYS = ["command", "cmd", "file_path", "path", "content", "new_string", "old_string", "edits", "url",
             "pattern", "input", "workdir", "notebook_path", "sql", "query"]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TOOL_NAMES) | st.text(max_size=30),
    st.dictionaries(st.sampled_from(TOOL_KEYS) | st.text(max_size=8), json_values | st.lists(ARGV_TOKENS), max_size=5),
)
def test_random_tool_calls(name: str, tool_input: dict[str, Any]) -> None:
    check(classify_tool(name, tool_input, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TOOL_CASES), st.sampled_from(TOOL_KEYS), json_values)
def test_mutated_tool_calls(case: tuple[str, dict[str, Any]], key: str, value: Any) -> None:
    name, tool_input = case
    check(classify_tool(name, {**tool_input, key: value}, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60), st.sampled_from(["read", "write", "delete", "exec", "bogus", ""]))
def test_random_paths(path: str, op: str) -> None:
    check(classify_path(path, op, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=60) | st.from_regex(r"(https?|ftp|file|ssh|mailto)://[a-z0-9.:@\[\]-]{0,20}/[ -~]{0,20}"),
    st.sampled_from(["GET", "POST", "DELETE", "put", "", "BREW"]),
)
def test_random_urls(url: str, method: str) -> None:
    check(classify_url(url, method, CTX))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SHELL_CASES[:80]),
    st.text(max_size=20),
    st.lists(st.text(max_size=20), max_size=4),
    st.lists(st.text(max_size=20), max_size=3),
)
def test_random_contexts(command: str, cwd: str, protected: list[str], control: list[str]) -> None:
    ctx = Context(cwd=cwd, protected=tuple(protected), control=tuple(control))
    check(classify_shell(command, ctx))


def test_wrong_types_never_raise() -> None:
    nothing: Any = None
    check(classify_shell(nothing, CTX))
    check(classify_shell(cast(Any, b"ls"), CTX))
    check(classify_tool(nothing, {}, CTX))
    check(classify_tool("Bash", nothing, CTX))
    check(classify_tool("Bash", {"command": 3}, CTX))
    check(classify_path(nothing, "read", CTX))
    check(classify_url(nothing, "GET", CTX))
    check(classify_shell("ls", Context(cwd=nothing, protected=nothing, control=nothing)))


def test_deep_nesting_never_raises() -> None:
    for depth in (50, 500, 3000):
        check(classify_shell("$(" * depth + "rm -rf /" + ")" * depth, CTX))
        check(classify_shell("bash -c '" * min(depth, 40) + "ls" + "'" * min(depth, 40), CTX))
        check(classify_shell("(" * depth + "ls" + ")" * depth, CTX))
    nested = "rm -rf /"
    for _ in range(20):
        nested = "bash -c " + repr(nested)
    result = classify_shell(nested, CTX)
    check(result)
    assert result.classes - {"repo.read", "tests.run", "pr.draft"}


def test_huge_input() -> None:
    check(classify_shell("echo hi; " * 20_000, CTX))
    check(classify_shell("a" * 1_000_000, CTX))
    check(classify_shell("ls | " * 2000 + "ls", CTX))
