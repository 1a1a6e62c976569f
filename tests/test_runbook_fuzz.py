"""Whatever text a runbook holds, ``parse`` returns a Runbook or raises RunbookError whose every line names a
line of the file. Never a traceback, never a problem without a place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.errors import RunbookError
from tether.runbook import parse
from tether.runbook.model import Runbook

EXAMPLE = (Path(__file__).resolve().parent.parent / "src/tether/runbook/example.yaml").read_text()
DEMO = (Path(__file__).resolve().parent.parent / "src/tether/demo/runbook.yaml").read_text().replace("{sandbox}", "on")
PLACE = re.compile(r"^[^:]+:(\d+): ")
LABEL = "fuzz.yaml"


def check(text: str) -> Runbook | RunbookError:
    """The property: a Runbook, or a RunbookError with at least one problem, each naming a real line."""
    try:
        rb = parse(text, LABEL)
    except RunbookError as err:
        assert err.problems, "an error with nothing to say"
        last = text.count("\n") + 2
        for problem in err.problems:
            assert "\n" not in problem, problem
            m = PLACE.match(problem)
            assert m, f"does not name a line: {problem!r}"
            assert problem.startswith(f"{LABEL}:"), problem
            assert 1 <= int(m.group(1)) <= last, f"line out of range in {problem!r}"
        lines = [int(m.group(1)) for m in map(PLACE.match, err.problems) if m]
        assert lines == sorted(lines), "problems are reported in line order"
        return err
    assert isinstance(rb, Runbook)
    return rb


def test_the_examples_pass() -> None:
    assert isinstance(check(EXAMPLE), Runbook)
    assert isinstance(check(DEMO), Runbook)


# --- mutations of real runbooks -----------------------------------------------------------------

junk = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=":-[]{}&*!|>'\"#%@`, ?<\t\\", max_size=12),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.lists(st.text(alphabet="abc09 -:", max_size=5), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.sampled_from(["~", "null", "yes", "no", "true", "[]", "{}", "- a", "&x", "*x", "*defaults", "<<: *defaults",
                     "!!binary aGk=", "!!python/object:os.system", "2024-01-01", "0x1F", "1e999", "-30s", "30s",
                     "250ms", "1h30m", "keyring:x/y", "'unclosed", "\"unclosed", "? complex", "|", ">-", "%TAG"]),
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from([EXAMPLE, DEMO])).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [draw(junk)]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "replace", "indent", "dedent", "scalar", "insert",
                                   "chars"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "replace":
            lines[i] = draw(junk)
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 6)) + line
        elif op == "dedent":
            lines[i] = line[draw(st.integers(1, 4)):]
        elif op == "scalar" and ":" in line:
            key = line.split(":", 1)[0]
            lines[i] = f"{key}: {draw(junk)}"
        elif op == "insert":
            lines.insert(i, draw(junk))
        else:
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.text(min_size=1, max_size=3)) + line[pos:]
    return "\n".join(lines) + "\n"


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_runbooks(text: str) -> None:
    check(text)


# --- random YAML-ish text -----------------------------------------------------------------------

yamlish = st.text(alphabet=st.sampled_from(list("abcxy019 :-[]{},&*!|>'\"#\n\t?<.\\%@`")), max_size=200)


@given(yamlish)
def test_yamlish_text(text: str) -> None:
    check(text)


@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    check(text)


# --- structured documents that reach the validators ------------------------------------------------

FIELD_NAMES = ["version", "host", "agents", "name", "listen", "store", "notify", "url", "retention", "events",
               "owner", "backup", "contact", "command", "kind", "heartbeat", "interval", "stale_after",
               "stuck_after", "restart", "policy", "backoff", "crashloop", "limit", "window", "approvals",
               "verdicts", "gates", "secrets", "env", "scope", "repos", "kill", "signal", "grace", "budgets",
               "tokens_per_day", "x-defaults", "repo.read", "unknown", "data.delete", "w", "Bad Name", "a-b"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=15),
    st.sampled_from(["30s", "fast", "250ms", "allow", "block", "ask", "always", "SIGTERM", "127.0.0.1:1",
                     "env:X", "hunter2", "command", "codex", "sqlite:///x"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.integers(0, 3)), inner,
                                            max_size=5)),
    max_leaves=25,
)


@given(documents)
def test_structured_documents(doc: Any) -> None:
    check(yaml.safe_dump(doc, sort_keys=False))


@given(st.dictionaries(st.sampled_from(FIELD_NAMES[:3]), documents, max_size=3))
def test_structured_top_levels(doc: dict[str, Any]) -> None:
    check(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


# --- anchors, aliases, merge keys, tags and odd numbers, through all that `tether check` does ----------

ODD = [".inf", "-.inf", ".nan", "1.0e+999", "9" * 40, "-" + "9" * 31, "0x" + "f" * 40, "99999999999999999999",
       "10000000000000001", "1_000", "0b101", "0o17", "190:20:30", "!!int x", "!!float x", "!!bool maybe",
       "!!timestamp x", "2024-13-45", "!!binary '!!'", "!!str 5", "!!null x", "!!set {a, b}", "!!omap [a: 1]",
       "30s", "3651d", "0", "-1", "0.5", "true", "~", "''", "'/'", "/etc", "'~'", "$HOME", "../../../../..",
       "'h:" + "9" * 400 + "'", "'127.0.0.1:7717'", "SIGTERM", "env:X", "hunter2", "python x.py", "{}", "[]"]
FIELDS = sorted({*FIELD_NAMES, "state_dir", "workspace_root", "probe_interval", "disk_low_bytes", "probes",
                 "usd_per_day", "factor", "jitter", "base", "cap", "timeout", "escalate_after", "log_file_size",
                 "batch", "period", "deadman", "export", "tls", "cert", "key", "stable_after", "cwd", "run_as",
                 "same_user", "prompt", "autostart", "rollback", "snapshot", "release_command"})


@st.composite
def flow(draw: st.DrawFn, anchors: list[str], depth: int = 0) -> str:
    """One YAML flow value: an odd scalar, an alias of an earlier anchor, a list or a mapping (maybe merging)."""
    kinds = ["scalar", "alias"] if anchors else ["scalar"]
    if depth < 3:
        kinds += ["list", "map"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(st.sampled_from(ODD))
    if kind == "alias":
        return "*" + draw(st.sampled_from(anchors))
    if kind == "list":
        return "[" + ", ".join(draw(st.lists(flow(anchors, depth + 1), max_size=4))) + "]"
    keys = draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True))
    items = [f"{k}: {draw(flow(anchors, depth + 1))}" for k in keys]
    if anchors and draw(st.booleans()):
        merged = draw(st.lists(st.sampled_from(anchors), min_size=1, max_size=3))
        items.insert(0, "<<: [" + ", ".join("*" + a for a in merged) + "]")
    return "{" + ", ".join(items) + "}"


SANE = ["1", "30", "30s", "5m", "100", "0.5", "2"]
HOST_NUMBERS = ["probe_interval", "disk_low_bytes", "state_dir", "listen", "name"]
AGENT_NUMBERS = ["heartbeat: {interval: %s}", "heartbeat: {stuck_after: %s}", "budgets: {tokens_per_day: %s}",
                 "budgets: {usd_per_day: %s}", "kill: {grace: %s}", "restart: {crashloop: {limit: %s}}",
                 "restart: {backoff: {factor: %s}}", "approvals: {timeout: %s}"]


@st.composite
def anchored_runbooks(draw: st.DrawFn) -> str:
    """Anchors over odd values, then a host and an agent built from them: often valid, often not."""
    anchors: list[str] = []
    lines = []
    for i in range(draw(st.integers(0, 5))):
        body = draw(flow(anchors))
        lines.append(f"x-{i}: &a{i} {f'[{body}]' if body.startswith('*') else body}")  # no anchor on an alias
        anchors.append(f"a{i}")
    value = st.sampled_from(ODD + SANE)
    host = draw(st.sampled_from(["random", "field", "none"]))
    if host == "random":
        lines.append(f"host: {draw(flow(anchors))}")
    elif host == "field":
        lines.append(f"host: {{{draw(st.sampled_from(HOST_NUMBERS))}: {draw(value)}}}")
    agent = "{owner: {name: A, contact: a}, backup: {name: B, contact: b}, command: x"
    for template in draw(st.lists(st.sampled_from(AGENT_NUMBERS), max_size=2, unique=True)):
        agent += ", " + template % draw(value)
    if anchors and draw(st.booleans()):
        agent += ", <<: *" + draw(st.sampled_from(anchors))
    lines.append(f"agents: {{w: {draw(flow(anchors)) if draw(st.booleans()) else agent + '}'}}}")
    return "\n".join(lines) + "\n"


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(anchored_runbooks())
def test_anchored_runbooks_through_tether_check(text: str) -> None:
    """What `tether check` runs (load, the run-as boundary, the summary) gives a summary or one-line problems
    naming the file: never another exception, which the CLI would turn into `internal error` (exit 70)."""
    import tempfile

    from tether.runbook import load
    from tether.runbook.summary import boundary, summarise

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / LABEL
        path.write_text(text)
        try:
            loaded = load(path)
        except RunbookError as err:
            assert err.problems
            assert all(p.startswith(f"{path}:") and "\n" not in p and len(p) < 1000 for p in err.problems), err
            return
        boundary(loaded, str(path))
        assert summarise(loaded).startswith(f"{path}: ok")
