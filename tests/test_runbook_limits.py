"""The runbook loader is bounded: alias bombs, huge files, huge or infinite numbers and an empty runbook each
give one line naming the file (and the line and field when there is one), fast, with bounded memory; a state
directory at a system root is refused."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from helpers import run_cli
from tether.errors import RunbookError
from tether.runbook import load, parse
from tether.runbook.load import MAX_ALIASED, MAX_BYTES, MAX_NODES
from tether.runbook.model import Runbook

LABEL = "rb.yaml"
ALIASES = "aliases expand to more than 20,000 values; write the values out instead of nesting aliases"
AGENT = """\
agents:
  w:
    owner: {name: A, contact: a}
    backup: {name: B, contact: b}
    command: x
"""
MEMORY = ("prlimit", "--as=536870912")  # 512 MiB of address space: a bomb that expanded would die of it


def problems(text: str, seconds: float = 2.0) -> list[str]:
    """The problems ``parse`` finds in ``text``, found in under ``seconds`` (bombs take ~0.05 s; they took minutes
    before the limits; the margin is for a busy machine)."""
    start = time.perf_counter()
    with pytest.raises(RunbookError) as info:
        parse(text, LABEL)
    assert time.perf_counter() - start < seconds, "the loader took too long"
    found: list[str] = info.value.problems
    return found


def laughs(levels: int = 9) -> str:
    """The billion laughs: each anchor a list of nine aliases of the one before (9**9 values in 600 bytes)."""
    lines = ['x-a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"host: {{probes: *a{levels}}}"]) + "\n"


def merge_bomb(levels: int = 30) -> str:
    """Merge keys doubling at each level: ``<<: [*m, *m]`` (2**30 merges)."""
    lines = ["x-m0: &m0", "  k0: 1"]
    for i in range(1, levels + 1):
        lines += [f"x-m{i}: &m{i}", f"  <<: [*m{i - 1}, *m{i - 1}]", f"  k{i}: 1"]
    return "\n".join([*lines, "host:", f"  <<: *m{levels}"]) + "\n"


def one_line(proc: object) -> str:
    """A failed ``tether check``: exit 2 (not 70), one line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr  # type: ignore[attr-defined]
    lines: list[str] = proc.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, proc.stderr  # type: ignore[attr-defined]
    return lines[0]


# --- aliases --------------------------------------------------------------------------------------


def test_billion_laughs_stops_where_the_aliases_expand() -> None:
    # x-a1..x-a3 expand to 8,289 values; x-a4's second item passes 20,000
    assert problems(laughs()) == [f"{LABEL}:5: x-a4[1]: {ALIASES}"]


def test_alias_bomb_used_in_a_field_names_that_field_and_line() -> None:
    text = 'x-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' \
           "host:\n  name: h\n  probes: [" + ", ".join(["*a"] * 2500) + "]\n"
    assert problems(text) == [f"{LABEL}:4: host.probes[1818]: {ALIASES}"]  # 1818 * 11 > 20,000


def test_merge_key_bomb_names_the_merge_line() -> None:
    # merges reached again: 2 at level 1, then 2 * (level before + 1); level 11 passes 20,000 on line 34
    assert problems(merge_bomb()) == [f"{LABEL}:34: x-m11: {ALIASES}"]
    assert merge_bomb().splitlines()[33] == "  <<: [*m10, *m10]"


def test_wide_merge_is_counted_too() -> None:
    text = "x-m: &m\n  k: 1\nhost:\n  <<: [" + ", ".join(["*m"] * (MAX_ALIASED // 2 + 1)) + "]\n"
    assert problems(text) == [f"{LABEL}:4: host: {ALIASES}"]


def test_aliases_within_the_limit_still_work() -> None:
    text = 'x-a: &a ["tcp://h:1", "tcp://h:2"]\nx-d: &d {name: h}\nhost:\n  <<: *d\n  probes: *a\n'
    assert parse(text, LABEL).host.probes == ("tcp://h:1", "tcp://h:2")
    wide = 'x-a: &a "tcp://h:1"\nhost: {probes: [' + ", ".join(["*a"] * (MAX_ALIASED - 1)) + "]}\n"
    assert len(parse(wide, LABEL).host.probes) == MAX_ALIASED - 1


def test_bombs_via_tether_check_fail_fast_in_bounded_memory(tmp_path: Path) -> None:
    for name, text, expected in [
        ("laughs.yaml", laughs(), f":5: x-a4[1]: {ALIASES}"),
        ("merge.yaml", merge_bomb(), f":34: x-m11: {ALIASES}"),
    ]:
        rb = tmp_path / name
        rb.write_text(text)
        start = time.monotonic()
        proc = run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state", prefix=MEMORY, timeout=30)
        assert one_line(proc) == f"{rb}{expected}"
        assert time.monotonic() - start < 10, "a whole `tether check`, start-up included"


# --- the size of the file and of the document ------------------------------------------------------


def test_a_10_mib_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    rb = tmp_path / "big.yaml"
    with rb.open("w") as f:
        f.write("# " + "x" * (10 * 1024 * 1024) + "\n")
    with pytest.raises(RunbookError) as info:
        load(rb)
    assert info.value.problems == [
        f"{rb}: the file is 10.0 MiB, and a runbook may be at most 1.0 MiB: is this the right file?"
    ]
    assert one_line(run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state")) == info.value.problems[0]


def test_a_file_just_under_the_cap_is_read(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    body = AGENT
    rb.write_text(body + "#" * (MAX_BYTES - len(body) - 1) + "\n")
    assert rb.stat().st_size == MAX_BYTES
    assert list(load(rb).runbook.agents) == ["w"]


def test_a_device_that_never_ends_is_refused() -> None:
    with pytest.raises(RunbookError) as info:
        load("/dev/zero")
    assert str(info.value) == "/dev/zero: the file is more than 1.0 MiB, and a runbook may be at most 1.0 MiB: " \
                              "is this the right file?"


def test_parse_refuses_text_over_the_cap() -> None:
    assert problems("#" * (MAX_BYTES + 1)) == [
        f"{LABEL}: the text is 1.0 MiB, and a runbook may be at most 1.0 MiB: is this the right file?"
    ]


def test_too_many_values_stop_the_composer() -> None:
    text = "x-a: [" + ",".join(["1"] * MAX_NODES) + "]\n"
    found = problems(text, seconds=10)
    assert found == [f"{LABEL}: more than 50,000 values; a runbook is written by hand: is this the right file?"]
    assert parse("x-a: [" + ",".join(["1"] * (MAX_NODES - 3)) + "]\n", LABEL) == Runbook()  # root, key, list


def test_many_problems_are_cut_short() -> None:
    found = problems("host: {probes: [" + ",".join(["1"] * 5000) + "]}\n")
    assert len(found) == 101
    assert found[99] == f"{LABEL}:1: host.probes[99]: input should be a valid string, got 1"
    assert found[100] == f"{LABEL}:1: 4,900 more problems not shown; fix these first"


# --- numbers --------------------------------------------------------------------------------------


def with_agent(extra: str) -> str:
    return AGENT + textwrap.indent(textwrap.dedent(extra), "    ")


TOKENS = "budgets.tokens_per_day:"
DURATION_CAP = "expected a duration of at most 3650d (ten years), got"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("budgets: {tokens_per_day: " + "9" * 5000 + "}", f"{TOKENS} a number of 5,000 digits is out of range"),
        ("budgets: {tokens_per_day: -" + "9" * 31 + "}", f"{TOKENS} a number of 31 digits is out of range"),
        ("budgets: {tokens_per_day: 0x" + "f" * 4000 + "}", f"{TOKENS} a number of 4,002 digits is out of range"),
        ("budgets: {tokens_per_day: 99999999999999999999}", "budgets.tokens_per_day: the number is out of range"),
        ("budgets: {tokens_per_day: 10000000000000001}",
         "budgets.tokens_per_day: input should be less than or equal to 1000000000000000"),
        ("budgets: {usd_per_day: .nan}", "budgets.usd_per_day: input should be a finite number"),
        ("budgets: {usd_per_day: .inf}", "budgets.usd_per_day: input should be a finite number"),
        ("heartbeat: {interval: .inf}", f"heartbeat.interval: {DURATION_CAP} inf"),
        ("heartbeat: {interval: .nan}", f"heartbeat.interval: {DURATION_CAP} nan"),
        ("heartbeat: {interval: 1.0e+999}", f"heartbeat.interval: {DURATION_CAP} inf"),
        ("heartbeat: {interval: 99999999999999d}", f"heartbeat.interval: {DURATION_CAP} '99999999999999d'"),
        ("heartbeat: {interval: -.inf}",
         "heartbeat.interval: expected a duration like \"30s\", \"250ms\" or \"5m\", got -inf"),
        ("restart: {backoff: {factor: .inf}}", "restart.backoff.factor: input should be a finite number"),
        ("restart: {crashloop: {limit: " + "1" * 40 + "}}",
         "restart.crashloop.limit: a number of 40 digits is out of range"),
        ("kill: {grace: 1.0e+308}", f"kill.grace: {DURATION_CAP} 1e+308"),
    ],
)
def test_numbers_out_of_range_are_line_errors(extra: str, expected: str) -> None:
    assert problems(with_agent(extra)) == [f"{LABEL}:6: agents.w.{expected}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!int abc", "'abc' is not a valid int"),
        ("!!float abc", "'abc' is not a valid float"),
        ("!!bool maybe", "'maybe' is not a valid bool"),
        ("!!timestamp x", "'x' is not a valid timestamp"),
        ("2024-13-45", "'2024-13-45' is not a valid timestamp"),
    ],
)
def test_scalars_that_are_not_what_their_tag_says(value: str, expected: str) -> None:
    assert problems(f"host:\n  name: {value}\n") == [f"{LABEL}:2: host.name: {expected}"]


@pytest.mark.parametrize("port", ["9" * 5000, "²", "007717x", "65536"])
def test_listen_ports_of_any_length(port: str) -> None:
    (line,) = problems(f"host:\n  listen: 'h:{port}'\n")
    assert line.startswith(f"{LABEL}:2: host.listen: expected HOST:PORT like 127.0.0.1:7717, got ")
    assert len(line) < 200


def test_sane_numbers_pass() -> None:
    rb = parse(with_agent("budgets: {tokens_per_day: 1000000000000000, usd_per_day: 0.5}\n"
                          "heartbeat: {interval: 3650d, stale_after: 3650d, stuck_after: 3650d}\n"), LABEL)
    assert rb.agents["w"].budgets.tokens_per_day == 10**15
    assert rb.agents["w"].heartbeat.interval == 3650 * 86400


def test_numbers_via_tether_check(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_text(with_agent("budgets:\n  tokens_per_day: " + "9" * 5000 + "\n"))
    proc = run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert one_line(proc) == f"{rb}:7: agents.w.budgets.tokens_per_day: a number of 5,000 digits is out of range"
    rb.write_text(with_agent("heartbeat: {interval: .inf, stale_after: .inf}\n"))
    proc = run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"{rb}:6: agents.w.heartbeat.interval: expected a duration of at most 3650d (ten years), got inf",
        f"{rb}:6: agents.w.heartbeat.stale_after: expected a duration of at most 3650d (ten years), got inf",
    ]


# --- an empty runbook -----------------------------------------------------------------------------

EMPTY = "the runbook is empty: no agents, no host settings; `tether init` writes a commented example"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "null\n", "~\n", "---\n", "{}\n"])
def test_an_empty_runbook_loads_with_a_warning(tmp_path: Path, text: str) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_text(text)
    loaded = load(rb)
    assert loaded.runbook == Runbook()
    assert loaded.warnings == (f"{rb}: {EMPTY}",)


def test_a_runbook_with_anything_in_it_has_no_warning(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_text("version: 1\n")
    assert load(rb).warnings == ()


def test_check_warns_on_an_empty_runbook_and_init_fills_a_blank_one(tmp_path: Path) -> None:
    rb = tmp_path / "tether.yaml"
    rb.write_text("")
    proc = run_cli("check", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"warning: {rb}: {EMPTY}"]
    init = run_cli("init", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert init.returncode == 0, init.stderr
    assert "agents:" in rb.read_text()
    rb.write_text("# mine\n")
    init = run_cli("init", str(rb), cwd=tmp_path, home=tmp_path / "state")
    assert init.returncode == 2
    assert init.stderr == f"tether: error: {rb}: already exists; pass --force to overwrite it\n"
    assert rb.read_text() == "# mine\n"


# --- host.state_dir -------------------------------------------------------------------------------

REFUSED = "is a system or home directory; the daemon would make it private (0700) and fill it: name a directory " \
          "of tether's own, like /var/lib/tether, or leave state_dir out for the default"


@pytest.mark.parametrize(
    ("state_dir", "shown"),
    [
        ("/", "'/'"), ("/etc", "'/etc'"), ("/usr/", "'/usr/' (that is /usr)"), ("/bin", "'/bin'"), ("/var", "'/var'"),
        ("/home", "'/home'"), ("/root", "'/root'"), ("/tmp", "'/tmp'"), ("/var/lib", "'/var/lib'"),
        ("/home/someone", "'/home/someone'"), ("/etc/../usr/local", "'/etc/../usr/local' (that is /usr/local)"),
    ],
)
def test_state_dir_at_a_system_directory_is_refused(tmp_path: Path, state_dir: str, shown: str) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_text(f"version: 1\nhost:\n  name: h\n  state_dir: {state_dir}\n")
    with pytest.raises(RunbookError) as info:
        load(rb)
    assert info.value.problems == [f"{rb}:4: host.state_dir: {shown} {REFUSED}"]


@pytest.mark.parametrize(
    ("state_dir", "under"),
    [("~", ""), ("$HOME", ""), ("~/", ""), ("~/.config", ".config"), ("~/.local/state", ".local/state")],
)
def test_state_dir_at_home_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: str, under: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    rb = tmp_path / "t.yaml"
    rb.write_text(f"host:\n  state_dir: '{state_dir}'\n")  # quoted: a bare ~ is YAML's null
    with pytest.raises(RunbookError) as info:
        load(rb)
    (line,) = info.value.problems
    where = home / under if under else home
    assert line == f"{rb}:2: host.state_dir: {state_dir!r} (that is {where}) {REFUSED}"


def test_a_relative_state_dir_climbing_to_the_root_is_refused(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    up = "/".join([".."] * 40)
    rb.write_text(f"host: {{state_dir: '{up}'}}\n")
    with pytest.raises(RunbookError) as info:
        load(rb)
    assert info.value.problems == [f"{rb}:1: host.state_dir: {repr(up)[:57]}... (that is /) {REFUSED}"]


@pytest.mark.parametrize("state_dir", ["./st", "st", "/var/lib/tether", "~/tether-state", "/srv/tether"])
def test_a_state_dir_of_its_own_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rb = tmp_path / "t.yaml"
    rb.write_text(f"host:\n  state_dir: {state_dir}\n")
    assert load(rb).state.root.name in ("st", "tether", "tether-state")


def test_state_dir_via_tether_check(tmp_path: Path) -> None:
    rb = tmp_path / "t.yaml"
    rb.write_text("host:\n  state_dir: /\n")
    proc = run_cli("check", str(rb), cwd=tmp_path)
    assert one_line(proc) == f"{rb}:2: host.state_dir: '/' {REFUSED}"
