"""One list of credential patterns (``tether.redact.CREDENTIALS``) serves the Python redactor and the agents'
log filter (``sed -E``): both replace exactly the same text. Real sed, real tokens from ``auth.create``."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import auth, redact
from tether.process.keeper import filter_command, log_filter, redact_script
from tether.store import open_store

pytestmark = pytest.mark.skipif(log_filter() is None, reason="no sed")

# Fake credentials, built by concatenation so secret scanners do not flag this file.
TOKENS = {
    "tether": ["tt_" + "ag_0123abcd_" + "Zx9-_" * 8 + "abc", "tt_" + "ad_ffffffff_" + "A" * 43,
               "tt_" + "ap_00000000_" + "a-b_c" * 9],
    "github": ["ghp_" + "aBcDeF0123456789aBcDeF0123456789ZZzz", "gho_" + "0" * 36, "ghu_" + "Z" * 40,
               "ghs_" + "a1" * 18, "ghr_" + "b2" * 20, "github_pat_" + "11ABCDEF0123456789_abcdef0123456789xyz"],
    "anthropic": ["sk-ant-" + "api03-abcdef0123456789ABCDEF012345"],
    "openai": ["sk-" + "abcdef0123456789ABCDEF0123456789abcd", "sk-proj-" + "abcdef0123456789ABCDEF0123456789",
               "sk-svcacct-" + "x_y-z" * 6],
    "aws-key": ["AKIA" + "IOSFODNN7EXAMPLE", "ASIA" + "Z2Y3X4W5V6U7T8S9"],
    "aws-secret": ["aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                   "AWS_SECRET_ACCESS_KEY=\"" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    "slack": ["xoxb-" + "123456789012-abcdef012345", "xoxp-" + "1-2-3-abcdefabcd",
              "https://hooks.slack.com/services/" + "T000/B000/XXXXXXXXXXXXXXXX"],
    "google": ["AIza" + "SyA-1234567890abcdefghijklmnopqrstu"],
    "jwt": ["eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJ" + "hbGciOiJub25lIn0.eyJzdWIiOiJhYmMifQ."],
    "bearer": ["Bearer " + "abcdef0123456789ABCDEF", "BEARER " + "a.b-c_d~e+f/g=h=ijklmnop",
               "bearer\t" + "0123456789abcdefghij"],
    "private-key": ["-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE\\nAAAA\\n"
                    "-----END OPENSSH PRIVATE KEY-----",
                    "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY----- MIIEvQ -----END PRIVATE KEY-----"],
}
URL_PASSWORD = ("postgresql://tether:hunter22@db:5432/x", "postgresql://[REDACTED:url-password]@db:5432/x")
ORDINARY = [
    "the task is done", "sk-short", "ghp_short", "AKIA1234", "mailto://ana@example.com", "ana@example.com",
    "https://example.com:8443/path", "bearer of bad news", "ask-anything", "desk-top-1234567890abcdefghijkl",
    "tt_ag_nothex00_" + "x" * 43, "xtt_", "they key eyJ", "Authorization: Bearer $TETHER_TOKEN", "", "  ",
    "ünïcode € text", "AKIAIOSFODNN7", "-----BEGIN PUBLIC KEY-----", "python3 -c 'print(1)' # comment",
    "xGHP_" + "a" * 36, "mask-" + "a" * 30, "taskAKIA" + "IOSFODNN7EXAMPLE",
]
# how a credential may sit in a line
FRAMES = ["{}", "x {} y", "KEY={}", '{{"v": "{}"}}', "'{}'", "({})", "a {} b {} c", "{}{}", "é{}", "{},{}",
          "curl -H 'Authorization: token {}' https://api.github.com", "\t{}\t", "://u:{}@h"]


def corpus() -> list[str]:
    lines = [*ORDINARY, URL_PASSWORD[0]]
    for values in TOKENS.values():
        for value in values:
            lines += [frame.format(*[value] * frame.count("{}")) for frame in FRAMES]
    return lines


Filter = Callable[[str], str]


@pytest.fixture(scope="module")
def sed() -> Iterator[Filter]:
    """The log filter, as the keeper runs it, with the registered values: text in, text out."""
    argv = log_filter()
    assert argv is not None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "redact.sed"
        script.write_bytes(redact_script(REGISTERED))
        command, env = filter_command(argv, str(script))

        def run(text: str) -> str:
            return subprocess.run(command, input=text.encode(), capture_output=True, env=env, timeout=10,
                                  check=True).stdout.decode()

        yield run


REGISTERED = ["plain-Secret-9f3Kq2", r"we&ird/va\lue.*"]


def through_sed(sed: Filter, lines: list[str]) -> list[str]:
    """Each line through the log filter on its own (a private key's header starts a block of lines)."""
    return [sed(line) for line in lines]


def python(lines: list[str]) -> list[str]:
    redact.register(*REGISTERED)
    return [redact.redact(line) for line in lines]


def test_sed_and_python_agree_on_the_corpus(sed: Filter) -> None:
    lines = corpus()
    assert through_sed(sed, lines) == python(lines)


def test_every_kind_is_redacted_as_its_kind() -> None:
    assert {c.kind for c in (*redact.CREDENTIALS, redact.PRIVATE_KEY)} == {*TOKENS, "url-password"}
    assert redact.CREDENTIALS[0].kind == "tether", "tether's own tokens first"
    for kind, values in TOKENS.items():
        for value in values:
            after = "" if value == "-----BEGIN RSA PRIVATE KEY-----" else " y"  # a block: to the end
            assert redact.redact(f"x {value} y") == f"x [REDACTED:{kind}]{after}", value
    assert redact.redact(URL_PASSWORD[0]) == URL_PASSWORD[1]
    for line in ORDINARY:
        assert redact.redact(line) == line


def test_real_tether_tokens(tmp_path: Path, sed: Filter) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        made = [auth.create(store, "agent", "w"), auth.create(store, "approver"), auth.create(store, "admin")]
    finally:
        store.close()
    lines = [f"TETHER_TOKEN={t}" for t in made] + [f"Authorization: Bearer {t}" for t in made]
    assert python(lines) == through_sed(sed, lines)
    assert python(lines) == ["TETHER_TOKEN=[REDACTED:tether]"] * 3 + ["Authorization: Bearer [REDACTED:tether]"] * 3


@pytest.mark.parametrize("text", [
    f"a {TOKENS['github'][0]} -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nline-with-dash\n"
    f"-----END RSA PRIVATE KEY----- then {TOKENS['github'][0]}\nplain\n-----BEGIN EC PRIVATE KEY-----\ncut short",
    "x -----BEGIN PRIVATE KEY----- a -- b -----END PRIVATE KEY----- y\nz\n-----END PRIVATE KEY-----\nclear",
    "two -----BEGIN PRIVATE KEY-----A-----END PRIVATE KEY----- and -----BEGIN PRIVATE KEY-----B\nC\n"
    "-----END PRIVATE KEY----------BEGIN PRIVATE KEY-----\nD\n-----END PRIVATE KEY----- sk-" + "a" * 24,
    "-----BEGIN DSA PRIVATE KEY-----",
])
def test_a_private_key_over_lines(sed: Filter, text: str) -> None:
    """Every line of a block, BEGIN line to END line, in the log filter and in Python alike."""
    got = sed(text)
    assert got == redact.redact(text)
    assert "MIIE" not in got and "\nC\n" not in got and "\nD\n" not in got and "sk-a" not in got


def test_a_private_key_block_in_order() -> None:
    pem, token = "[REDACTED:private-key]", TOKENS["github"][0]
    text = (f"a {token} -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- then "
            f"{token}\nplain\n-----BEGIN EC PRIVATE KEY-----\ncut short")
    assert redact.redact(text) == f"a [REDACTED:github] {pem}\n{pem}\n{pem} then [REDACTED:github]\nplain\n{pem}\n{pem}"
    one_line = json.dumps({"k": "-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----", "n": 1,
                           "k2": "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----"})
    assert json.loads(redact.redact(one_line)) == {"k": pem, "n": 1, "k2": pem}, "each block on its own"


def test_patterns_are_in_the_common_subset() -> None:
    """POSIX ERE and Python read them alike: no Python-only syntax, no escape but ``\\.`` and ``\\\\``, no
    delimiter."""
    for c in (*redact.CREDENTIALS, redact.PRIVATE_KEY):
        assert redact.SED_DELIMITER not in c.ere and "\n" not in c.ere
        assert "\\" not in c.ere.replace("\\.", "").replace("\\\\", ""), c.kind
        assert not re.search(r"\(\?|[*+?}]\?|\[\[:", c.ere), c.kind
        assert re.compile(c.ere).groups >= 1 and c.ere.startswith(("(", "()")), "group 1 is what is kept"
        for marker in (c.marker for c in (*redact.CREDENTIALS, redact.PRIVATE_KEY)):
            assert not re.search(c.ere, marker), f"{c.kind} matches the marker {marker}"


pieces = st.sampled_from([v for vs in TOKENS.values() for v in vs if "PRIVATE" not in v] + [
    " ", "=", "'", '"', ":", "@", "://", "/", "-", "_", "x", "Bearer ", "sk-", "ghp_", "tt_ag_", "AKIA", "é",
    "\t", "a" * 20, "0123456789abcdef", "plain-Secret-9f3Kq2"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(st.lists(pieces, max_size=8).map("".join))
def test_sed_and_python_agree_on_any_mix(sed: Filter, line: str) -> None:
    assert through_sed(sed, [line]) == python([line])


def test_json_stays_json() -> None:
    """What the store writes (``redact_json``) is JSON whatever the credential, a key's bare header too."""
    for kind, values in TOKENS.items():
        for value in values:
            text = json.dumps({"msg": f"got {value}", "n": 1})
            assert json.loads(redact.redact_json(text)) == {"msg": f"got [REDACTED:{kind}]", "n": 1}
