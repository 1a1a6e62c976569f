"""Secrets never reach storage: every known token format, and registered secret values, are replaced."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import redact
from tether.store import open_store
from tether.store.base import NewEvent

# Fake credentials, built by concatenation so secret scanners do not flag this file. No "gh" inside the
# random parts: the redactor's cheap pre-check looks for such substrings, and must not need luck.
CASES = [
    ("aws-key", "AKIA" + "IOSFODNN7EXAMPLE"),
    ("aws-key", "ASIA" + "Z2Y3X4W5V6U7T8S9"),
    ("aws-secret", "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws-secret", "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github", "ghp_" + "aBcDeF0123456789aBcDeF0123456789ZZzz"),
    ("github", "gho_" + "0123456789abcdef0123456789ABCDEF0123"),
    ("github", "github_pat_" + "11ABCDEF0123456789_abcdef0123456789xyz"),
    ("anthropic", "sk-ant-" + "api03-abcdef0123456789ABCDEF012345"),
    ("openai", "sk-" + "abcdef0123456789ABCDEF0123456789abcd"),
    ("openai", "sk-proj-" + "abcdef0123456789ABCDEF0123456789"),
    ("slack", "xoxb-" + "123456789012-abcdef012345"),
    ("slack", "https://hooks.slack.com/services/" + "T000/B000/XXXXXXXXXXXXXXXX"),
    ("bearer", "Bearer " + "eyJhbGciOiJIUzI1NiJ9.abcdef0123"),
    ("bearer", "BEARER " + "abcdef0123456789ABCDEF"),
    ("private-key", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjE AAAA -----END OPENSSH PRIVATE KEY-----"),
    ("tether", "tt_" + "ag_0123abcd_" + "Zx9-_" * 8 + "abc"),
    ("google", "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"),
    ("jwt", "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
]


@pytest.mark.parametrize(("kind", "secret"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_known_formats(kind: str, secret: str) -> None:
    assert redact.redact(f"before {secret} after") == f"before [REDACTED:{kind}] after"


@pytest.mark.parametrize(("kind", "secret"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_known_formats_inside_json(kind: str, secret: str) -> None:
    text = json.dumps({"msg": f"got {secret}", "n": 1})
    out = redact.redact(text)
    assert json.loads(out) == {"msg": f"got [REDACTED:{kind}]", "n": 1}


def test_url_password() -> None:
    assert redact.redact("postgresql://tether:hunter22@db:5432/x") == "postgresql://[REDACTED:url-password]@db:5432/x"


def test_private_key_over_lines_and_cut_short() -> None:
    """Line by line, as the log filter: every line of the block is the marker, to the end without END."""
    pem = "[REDACTED:private-key]"
    text = "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nok"
    assert redact.redact(text) == f"key: {pem}\n{pem}\n{pem}\nok"
    assert redact.redact("key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nmore") == f"key: {pem}\n{pem}\n{pem}"


def test_redact_json_stays_json() -> None:
    """A key's header without END runs to the end of the line, past a JSON string's quote: then each string
    on its own (keys too)."""
    ghp = CASES[4][1]
    doc = {"m": "-----BEGIN RSA PRIVATE KEY----- x \"q\"", ghp: [1, "ok", ghp]}
    got = json.loads(redact.redact_json(json.dumps(doc)))
    assert got == {"m": "[REDACTED:private-key]", "[REDACTED:github]": [1, "ok", "[REDACTED:github]"]}
    plain = json.dumps({"a": f"x {ghp}"})
    assert redact.redact_json(plain) == redact.redact(plain), "the text as a whole when that is JSON"


def test_an_event_shaped_to_break_json_fails_no_write(tmp_path: Path) -> None:
    """Real SQLite: the hostile event and the one written with it in the same batch are both stored."""
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        ids = store.append([NewEvent("agent.report", None, {"m": "ok"}),
                            NewEvent("command.run", None, {"command": "-----BEGIN RSA PRIVATE KEY-----"})])
        assert len(ids) == 2
        got = [e.data for e in store.events(after=0)]
        assert got[-2:] == [{"m": "ok"}, {"command": "[REDACTED:private-key]"}]
    finally:
        store.close()


@pytest.mark.parametrize(
    "text",
    [
        "the task is done", "sk-short", "ghp_short", "AKIA1234", "mailto://ana@example.com",
        "https://example.com:8443/path", "bearer of bad news", "ask-anything", "desk-top-1234567890abcdefghijkl",
        "",
    ],
)
def test_ordinary_text_unchanged(text: str) -> None:
    assert redact.redact(text) == text


def test_registered_values() -> None:
    value = "reg-" + secrets.token_hex(8)
    assert redact.redact(f"x {value} y") == f"x {value} y"
    redact.register(value, "short")
    assert redact.redact(f"x {value} y {value}") == "x [REDACTED:secret] y [REDACTED:secret]"
    assert redact.redact("a short word") == "a short word", "values shorter than 6 are not registered"


def test_registered_value_as_it_appears_in_json() -> None:
    value = 'q"uo\\te-' + secrets.token_hex(6)
    redact.register(value)
    encoded = json.dumps({"v": value})
    assert value not in encoded and json.dumps(value)[1:-1] in encoded
    assert json.loads(redact.redact(encoded)) == {"v": "[REDACTED:secret]"}


def test_redact_obj() -> None:
    secret = CASES[4][1]
    got = redact.redact_obj({"a": [secret, 1, None, {"b": (secret, True)}], "c": 2.5})
    assert got == {"a": ["[REDACTED:github]", 1, None, {"b": ["[REDACTED:github]", True]}], "c": 2.5}


words = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40).map(lambda s: f"{s} ")


@given(before=words, after=words, case=st.sampled_from(CASES))
def test_a_known_secret_never_survives(before: str, after: str, case: tuple[str, str]) -> None:
    _, secret = case
    out = redact.redact(f"{before}{secret} {after}")
    for piece in secret.split("\n"):
        if len(piece) >= 16:
            assert piece not in out
    assert "[REDACTED:" in out  # its own kind, or a wider match that swallowed it (`Bearer AKIA...`)


@given(st.text(max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact.redact(text)
    assert redact.redact(once) == once
