"""The runbook: the example is valid, and every mistake is one line naming the file, the line and the field."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from helpers import run_cli
from tether.durations import format_duration, parse_duration
from tether.errors import RunbookError
from tether.runbook import load, parse
from tether.runbook.model import Runbook

LABEL = "rb.yaml"
LINE = re.compile(r"^rb\.yaml:(\d+): (.+?): (.+)$")


def problems(text: str) -> list[str]:
    with pytest.raises(RunbookError) as info:
        parse(textwrap.dedent(text), LABEL)
    found: list[str] = info.value.problems
    assert found, "a RunbookError must list its problems"
    return found


def only_problem(text: str) -> tuple[int, str, str]:
    """The single problem in ``text`` as (line, field, message)."""
    found = problems(text)
    assert len(found) == 1, found
    m = LINE.match(found[0])
    assert m, found[0]
    return int(m.group(1)), m.group(2), m.group(3)


AGENT = """\
version: 1
agents:
  worker:
    owner: {name: Ana, contact: "mailto://ana@example.com"}
    backup: {name: Bo, contact: "mailto://bo@example.com"}
    command: python work.py
"""


def with_agent(extra: str) -> str:
    """The valid one-agent runbook above with ``extra`` (indented 4) appended to the agent (from line 7)."""
    return AGENT + textwrap.indent(textwrap.dedent(extra), "    ")


def test_base_agent_is_valid() -> None:
    rb = parse(AGENT, LABEL)
    agent = rb.agents["worker"]
    assert agent.name == "worker"
    assert agent.command == ("python", "work.py")
    assert agent.heartbeat.interval == 30.0


# --- the example runbook ----------------------------------------------------------------------


def test_example_runbook_is_valid(example_text: str) -> None:
    rb = parse(example_text, "tether.yaml")
    agent = rb.agents["repo-maintainer"]
    # values from the `x-defaults` anchor, merged with `<<: *defaults`
    assert agent.owner.name == "Ana Ops"
    assert agent.heartbeat.stale_after == 120.0
    assert agent.heartbeat.on_stale == "restart"
    assert agent.restart.crashloop.window == 600.0
    # values set on the agent itself
    assert agent.verdict("deps.install") == "ask"
    assert agent.gates["pr.open"].command == ("python", "-m", "pytest", "-q")
    assert rb.host.retention.events == 30 * 86400.0


def test_init_then_check_via_cli(tmp_path: Path) -> None:
    init = run_cli("init", cwd=tmp_path, home=tmp_path / "state")
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "tether.yaml").exists()
    check = run_cli("check", cwd=tmp_path, home=tmp_path / "state")
    assert check.returncode == 0, check.stderr
    assert "ok — 1 agent(s)" in check.stdout
    assert "repo-maintainer (command): python maintain.py" in check.stdout
    assert "owner Ana Ops <mailto://ana@example.com>" in check.stdout
    # the example asks before installing dependencies (its override of the default `log`)
    asks = next(line for line in check.stdout.splitlines() if line.strip().startswith("asks first"))
    assert "deps.install" in asks
    never = next(line for line in check.stdout.splitlines() if line.strip().startswith("never"))
    assert "data.delete" in never and "tether.control" in never


def test_load_resolves_paths_from_the_runbook_folder(tmp_path: Path, example_text: str) -> None:
    (tmp_path / "tether.yaml").write_text(example_text)
    loaded = load(tmp_path / "tether.yaml")
    assert loaded.workspace_root == (tmp_path / "workspaces").resolve()
    assert loaded.agent_cwd("repo-maintainer") == (tmp_path / "workspaces" / "repo-maintainer").resolve()


def test_load_state_dir_and_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tether.yaml").write_text("version: 1\nhost:\n  state_dir: ./st\n")
    loaded = load(tmp_path / "tether.yaml")
    assert loaded.state.root == (tmp_path / "st").resolve()
    assert loaded.store_url == f"sqlite:///{(tmp_path / 'st').resolve() / 'tether.db'}"
    monkeypatch.setenv("TETHER_STORE", "sqlite:///elsewhere.db")
    assert load(tmp_path / "tether.yaml").store_url == "sqlite:///elsewhere.db"


# --- one line per problem, on the right line --------------------------------------------------


def test_bad_duration() -> None:
    line, field, msg = only_problem(with_agent("heartbeat:\n  interval: fast\n"))
    assert (line, field) == (8, "agents.worker.heartbeat.interval")
    assert msg == 'expected a duration like "30s", "250ms" or "5m", got \'fast\''


def test_unknown_key_with_did_you_mean() -> None:
    line, field, msg = only_problem(with_agent("heartbeat:\n  interval: 5s\n  stale_afterr: 2m\n"))
    assert (line, field) == (9, "agents.worker.heartbeat.stale_afterr")
    assert msg == "unknown key 'stale_afterr' (did you mean 'stale_after'?)"


def test_unknown_key_far_from_any_name_has_no_hint() -> None:
    line, field, msg = only_problem(with_agent("zzzzzz: 1\n"))
    assert (line, field, msg) == (7, "agents.worker.zzzzzz", "unknown key 'zzzzzz'")


def test_unknown_top_level_key() -> None:
    line, field, msg = only_problem("version: 1\nagent:\n  a: {}\n")
    assert (line, field) == (2, "agent")
    assert msg == "unknown key 'agent' (did you mean 'agents'?)"


def test_unknown_action_class_in_verdicts() -> None:
    line, field, msg = only_problem(with_agent("approvals:\n  timeout: 1h\n  verdicts:\n    deploy.prod: ask\n"))
    assert line == 10, "the line of the unknown class itself"
    assert field.startswith("agents.worker.approvals.verdicts")
    assert msg == "unknown action class 'deploy.prod' (did you mean 'deploy.production'?)"


def test_unknown_action_class_in_gates() -> None:
    line, field, msg = only_problem(with_agent("gates:\n  pr.opn: {command: make test}\n"))
    assert line == 8
    assert field.startswith("agents.worker.gates")
    assert msg == "unknown action class 'pr.opn' (did you mean 'pr.open'?)"


def test_literal_secret_refused() -> None:
    line, field, msg = only_problem(with_agent("secrets:\n  API_KEY: env:API_KEY\n  TOKEN: hunter2hunter2\n"))
    assert (line, field) == (9, "agents.worker.secrets.TOKEN")
    assert msg.startswith("expected a secret reference (keyring:SERVICE/NAME")
    assert msg.endswith("never a literal value")
    assert "hunter2" not in msg, "the error must not echo the secret"


@pytest.mark.parametrize("ref", ["keyring:tether/gh", "file:/run/secrets/x", "env:X", "credential:gh"])
def test_secret_references_accepted(ref: str) -> None:
    rb = parse(with_agent(f"secrets:\n  X: {ref}\n"), LABEL)
    assert rb.agents["worker"].secrets == {"X": ref}


@pytest.mark.parametrize("cls", ["unknown", "tether.control"])
@pytest.mark.parametrize("verdict", ["allow", "log"])
def test_never_allow_classes_refused(cls: str, verdict: str) -> None:
    line, field, msg = only_problem(with_agent(f"approvals:\n  verdicts:\n    {cls}: {verdict}\n"))
    assert line == 9
    assert field.startswith("agents.worker.approvals.verdicts")
    assert msg == f"{cls} can only be ask or block, never {verdict}"


def test_never_allow_classes_may_be_block() -> None:
    rb = parse(with_agent("approvals:\n  verdicts:\n    unknown: block\n"), LABEL)
    assert rb.agents["worker"].verdict("unknown") == "block"
    assert rb.agents["worker"].verdict("repo.read") == "allow"  # the default table


def test_bad_restart_policy() -> None:
    line, field, msg = only_problem(with_agent("restart:\n  policy: sometimes\n"))
    assert (line, field) == (8, "agents.worker.restart.policy")
    assert msg == "expected one of 'always', 'on-failure' or 'never', got 'sometimes'"


def test_missing_owner() -> None:
    text = (
        "version: 1\nagents:\n  first:\n    owner: {name: A, contact: a}\n    backup: {name: B, contact: b}\n"
        "    command: x\n  second:\n    backup: {name: B, contact: b}\n    command: x\n"
    )
    line, field, msg = only_problem(text)
    assert (line, field, msg) == (7, "agents.second.owner", "required, but missing")


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:", ":80", "host:99999", "host:http"])
def test_bad_listen(listen: str) -> None:
    line, field, msg = only_problem(f"version: 1\nhost:\n  name: h\n  listen: '{listen}'\n")
    assert (line, field) == (4, "host.listen")
    assert msg == f"expected HOST:PORT like 127.0.0.1:7717, got {listen!r}"


@pytest.mark.parametrize("listen", ["127.0.0.1:7717", "[::1]:0", "0.0.0.0:65535"])
def test_good_listen(listen: str) -> None:
    assert parse(f"host:\n  listen: '{listen}'\n", LABEL).host.listen == listen


def test_bad_store_url() -> None:
    line, field, msg = only_problem("host:\n  store: mysql://x\n")
    assert (line, field) == (2, "host.store")
    assert msg.startswith("expected sqlite:///PATH or postgresql://")


def test_duplicate_key() -> None:
    line, field, msg = only_problem(with_agent("kind: command\nkind: python\n"))
    assert (line, field, msg) == (8, "agents.worker.kind", "duplicate key")


def test_duplicate_agent() -> None:
    found = problems(AGENT + "  worker:\n    command: y\n")
    assert found == [f"{LABEL}:7: agents.worker: duplicate key"]


def test_bad_yaml_syntax() -> None:
    found = problems(with_agent("env: {A: 1\nscope: {}\n"))
    assert len(found) == 1
    m = re.match(r"^rb\.yaml:(\d+): invalid YAML: (.+)$", found[0])
    assert m, found[0]
    assert 7 <= int(m.group(1)) <= 9
    assert "flow mapping" in m.group(2)


def test_tab_indentation_is_a_yaml_error() -> None:
    found = problems("version: 1\nhost:\n\tname: x\n")
    assert re.match(r"^rb\.yaml:3: invalid YAML: ", found[0]), found
    assert found[0].endswith("; line 3 has a tab: YAML indents with spaces only, replace the tab with spaces")


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        (  # a key one space short of its siblings
            "version: 1\nagents:\n  a:\n    command: x\n   owner: {name: a}\n",
            5,
            "line 5 is indented 3 spaces, the keys above it are at 0, 2 or 4: indent each key like the keys it "
            "belongs with (spaces only)",
        ),
        (  # a key indented under a key that already has its value
            "version: 1\nagents:\n  a:\n    command: x\n      owner: y\n",
            5,
            "line 5 is indented 6 spaces, the keys above it are at 0, 2 or 4: indent each key like the keys it "
            "belongs with (spaces only)",
        ),
        (  # `key:value`: a plain string, so the next key is a surprise
            "version: 1\nagents:\n  a:\n    command:x\n    owner: y\n",
            5,
            "line 4 has `command:` with no space after the colon: write `command: value`",
        ),
    ],
)
def test_invalid_yaml_says_how_to_fix_the_indentation(text: str, line: int, hint: str) -> None:
    (found,) = problems(text)
    assert found.startswith(f"{LABEL}:{line}: invalid YAML: ")
    assert found.endswith(f"; {hint}"), found


def test_a_yaml_error_that_is_not_indentation_gets_no_indentation_hint() -> None:
    (found,) = problems('version: 1\nagents:\n  a:\n    command: "x\n')
    assert "indent" not in found and "invalid YAML" in found


@pytest.mark.parametrize("name", ["Worker", "has space", "-leading", "a" * 64, "ünïcode", "dot.name"])
def test_agent_name_rules(name: str) -> None:
    text = AGENT.replace("  worker:", f"  '{name}':")
    line, field, msg = only_problem(text)
    assert line == 3
    assert field.startswith("agents.")
    assert msg == f"agent name '{name}' must be lower-case letters, digits, - and _ (at most 63)"


@pytest.mark.parametrize("name", ["a", "0", "repo-maintainer", "w_2", "a" * 63])
def test_agent_names_accepted(name: str) -> None:
    rb = parse(AGENT.replace("  worker:", f"  '{name}':"), LABEL)
    assert list(rb.agents) == [name]
    assert rb.agents[name].name == name


def test_non_string_agent_name_refused() -> None:
    line, _, msg = only_problem(AGENT.replace("  worker:", "  123:"))
    assert line == 3
    assert "agent name '123'" in msg


def test_agent_must_be_a_mapping() -> None:
    line, field, msg = only_problem("agents:\n  a: just text\n")
    assert (line, field) == (2, "agents.a")
    assert msg == "expected a mapping of keys, got 'just text'"


def test_command_agent_needs_a_command() -> None:
    line, field, msg = only_problem(AGENT.replace("    command: python work.py\n", "    kind: command\n"))
    assert (line, field, msg) == (3, "agents.worker", "a command agent needs a command")


def test_stale_after_shorter_than_interval() -> None:
    line, field, msg = only_problem(with_agent("heartbeat: {interval: 1m, stale_after: 30s}\n"))
    assert (line, field) == (7, "agents.worker.heartbeat")
    assert msg == "stale_after (30.0) must not be shorter than interval (60.0)"


def test_bad_signal() -> None:
    line, field, msg = only_problem(with_agent("kill: {signal: SIGNOPE}\n"))
    assert (line, field) == (7, "agents.worker.kill.signal")
    assert msg == "expected a signal name like SIGTERM or SIGINT, got 'SIGNOPE'"


def test_signal_normalised() -> None:
    assert parse(with_agent("kill: {signal: int}\n"), LABEL).agents["worker"].kill.signal == "SIGINT"


def test_wrong_version() -> None:
    line, field, msg = only_problem("version: 2\n")
    assert (line, field, msg) == (1, "version", "expected one of 1, got 2")


def test_top_level_must_be_a_mapping() -> None:
    line, field, msg = only_problem("- a\n- b\n")
    assert (line, field) == (1, "(top level)")
    assert msg.startswith("expected a mapping of keys")


def test_empty_file_is_an_empty_runbook() -> None:
    assert parse("", LABEL) == Runbook()
    assert parse("# only a comment\n", LABEL).agents == {}


def test_command_string_is_split_like_a_shell() -> None:
    rb = parse(with_agent("rollback: {release_command: \"./deploy.sh --tag 'last good'\"}\n"), LABEL)
    assert rb.agents["worker"].rollback.release_command == ("./deploy.sh", "--tag", "last good")
    line, field, msg = only_problem(with_agent('rollback: {release_command: "echo \'unclosed"}\n'))
    assert (line, field) == (7, "agents.worker.rollback.release_command")
    assert msg.startswith("cannot split the command")


# --- anchors, merge keys, x- keys ---------------------------------------------------------------


def test_anchors_merge_keys_and_x_keys() -> None:
    text = textwrap.dedent("""\
        version: 1
        x-people: &people
          owner: {name: Ana, contact: a}
          backup: {name: Bo, contact: b}
        x-beat: &beat
          heartbeat: {interval: 5s, stale_after: 20s}
        x-anything-else: [1, 2, {not: validated}]
        agents:
          one:
            <<: [*people, *beat]
            command: a
          two:
            <<: *people
            owner: {name: Cy, contact: c}
            command: b
    """)
    rb = parse(text, LABEL)
    assert set(rb.agents) == {"one", "two"}
    assert rb.agents["one"].owner.name == "Ana"
    assert rb.agents["one"].heartbeat.stale_after == 20.0
    assert rb.agents["two"].owner.name == "Cy", "an explicit key wins over a merged one"
    assert rb.agents["two"].backup.name == "Bo"
    assert rb.agents["two"].heartbeat.interval == 30.0


def test_error_inside_an_anchor_is_reported() -> None:
    text = (
        "x-d: &d\n  owner: {name: A, contact: a}\n  backup: {name: B, contact: b}\n  restart: {policy: nah}\n"
        "agents:\n  a:\n    <<: *d\n    command: x\n"
    )
    found = problems(text)
    assert len(found) == 1
    assert LINE.match(found[0])
    assert "agents.a.restart.policy: expected one of 'always', 'on-failure' or 'never', got 'nah'" in found[0]


def test_merge_of_a_scalar_refused() -> None:
    found = problems("x-s: &s text\nagents:\n  a:\n    <<: *s\n    command: x\n")
    assert f"{LABEL}:1: agents.a: `<<` must merge a mapping" in found


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "host: " + "[" * 200 + "]" * 200 + "\n"
    assert problems(text) == [f"{LABEL}:1: the document is nested too deeply"]


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    found = problems("x-a: &a [*a]\nhost: {name: *a}\n")
    assert len(found) == 1 and re.match(r"^rb\.yaml:\d+: ", found[0]), found


# --- several errors -----------------------------------------------------------------------------


def test_every_error_reported_in_line_order() -> None:
    text = textwrap.dedent("""\
        version: 1
        agents:
          b:
            backup: {name: B, contact: b}
            command: x
            restart: {policy: sometimes}
          a:
            owner: {name: A, contact: a}
            backup: {name: B, contact: b}
            command: x
            heartbeat:
              interval: fast
            secrets: {T: literal-value}
        host:
          listen: nowhere
          retention: {events: soon}
    """)
    found = problems(text)
    got = [(int(m.group(1)), m.group(2)) for m in map(LINE.match, found) if m]
    assert len(got) == len(found), found
    assert got == [
        (3, "agents.b.owner"),
        (6, "agents.b.restart.policy"),
        (12, "agents.a.heartbeat.interval"),
        (13, "agents.a.secrets.T"),
        (15, "host.listen"),
        (16, "host.retention.events"),
    ]


def test_structural_problems_in_line_order() -> None:
    text = "x-d: &d\n  a: 1\n  a: 2\nagents:\n  w:\n    <<: 5\n    kind: x\n    kind: y\n"
    assert problems(text) == [
        f"{LABEL}:3: x-d.a: duplicate key",
        f"{LABEL}:6: agents.w: `<<` must merge a mapping",
        f"{LABEL}:8: agents.w.kind: duplicate key",
    ]


def test_check_via_cli_exits_2_with_every_problem(tmp_path: Path) -> None:
    rb = tmp_path / "bad.yaml"
    rb.write_text(with_agent("heartbeat: {interval: fast}\nrestart: {policy: sometimes}\n"))
    proc = run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f'{rb}:7: agents.worker.heartbeat.interval: expected a duration like "30s", "250ms" or "5m", got \'fast\'',
        f"{rb}:8: agents.worker.restart.policy: expected one of 'always', 'on-failure' or 'never', got 'sometimes'",
    ]


def test_check_via_cli_missing_file(tmp_path: Path) -> None:
    proc = run_cli("check", "nope.yaml", cwd=tmp_path, home=tmp_path / "state")
    assert proc.returncode == 2
    assert proc.stderr == "nope.yaml: no such file; create one with `tether init`\n"


def test_load_not_utf8(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_bytes(b"host:\n  name: \xff\xfe\n")
    with pytest.raises(RunbookError) as info:
        load(rb)
    assert re.match(rf"^{re.escape(str(rb))}:1: the file is not UTF-8 text", str(info.value))


def test_load_a_directory(tmp_path: Path) -> None:
    with pytest.raises(RunbookError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, expected a runbook file"


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
        ("1.5s", 1.5),
        ("90", 90.0),
        ("0.5", 0.5),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
        ("1m500ms", 60.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["fast", "", "m", "5 minutes", "-5s", -1, True, None, "1x", "s5", [5], "1h-30m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (90, "1m30s"), (5400, "1h30m"), (0, "0s"), (86400 + 1, "1d1s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_durations_in_a_runbook() -> None:
    rb = parse(with_agent("heartbeat: {interval: 250ms, stale_after: 1h30m, stuck_after: 7200}\n"), LABEL)
    hb = rb.agents["worker"].heartbeat
    assert (hb.interval, hb.stale_after, hb.stuck_after) == (0.25, 5400.0, 7200.0)
