"""Secret references resolved in-process: keyring: through a real (file-backed) keyring backend, credential:
through a real $CREDENTIALS_DIRECTORY, file: and env:. Every failure is one TetherError line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from tether.errors import TetherError
from tether.secrets import SecretError, resolve, resolve_all


@pytest.fixture
def plain_keyring(tmp_path: Path) -> Iterator[PlaintextKeyring]:
    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "keyring_pass.cfg")
    before = keyring.get_keyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


def one_line(err: pytest.ExceptionInfo[SecretError]) -> str:
    assert isinstance(err.value, TetherError)
    text = str(err.value)
    assert "\n" not in text and text == text.strip()
    return text


def test_keyring_value_found(plain_keyring: PlaintextKeyring) -> None:
    plain_keyring.set_password("tether", "github-token", "ghp-not-a-real-one/&\\x")
    assert resolve("keyring:tether/github-token") == "ghp-not-a-real-one/&\\x"
    assert resolve_all({"GH": "keyring:tether/github-token"}) == {"GH": "ghp-not-a-real-one/&\\x"}


def test_keyring_set_by_the_keyring_cli(plain_keyring: PlaintextKeyring, tmp_path: Path) -> None:
    """The command the error message suggests really stores what resolve() then finds."""
    got = subprocess.run(
        [sys.executable, "-m", "keyring", "-b", "keyrings.alt.file.PlaintextKeyring", "set", "svc", "name"],
        input="from-the-cli\n", capture_output=True, text=True, timeout=30,
        env={"XDG_DATA_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin:/bin"},
    )
    assert got.returncode == 0, got.stderr
    plain_keyring.file_path = str(tmp_path / "xdg" / "python_keyring" / "keyring_pass.cfg")
    assert resolve("keyring:svc/name") == "from-the-cli"


def test_keyring_missing_entry(plain_keyring: PlaintextKeyring) -> None:
    with pytest.raises(SecretError) as err:
        resolve("keyring:tether/absent")
    assert one_line(err) == "keyring:tether/absent: not in the keyring; add it with `keyring set tether absent`"


def test_no_keyring_backend() -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(SecretError) as err:
            resolve("keyring:tether/x")
    finally:
        keyring.set_keyring(before)
    text = one_line(err)
    assert text.startswith("keyring:tether/x: the keyring is not available (")
    assert text.endswith("; use file: or env: on a headless host")


def test_keyring_backend_failing_with_a_multiline_error(plain_keyring: PlaintextKeyring,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(service: str, name: str) -> str:
        raise RuntimeError("dbus said\nno\n\tat all")

    monkeypatch.setattr(plain_keyring, "get_password", broken)
    with pytest.raises(SecretError) as err:
        resolve("keyring:a/b")
    assert one_line(err) == "keyring:a/b: the keyring is not available (dbus said no at all); use file: or env: " \
                            "on a headless host"


def test_keyring_reference_without_a_name() -> None:
    with pytest.raises(SecretError) as err:
        resolve("keyring:just-a-service")
    assert one_line(err) == "keyring:just-a-service: expected keyring:SERVICE/NAME"


def test_credential_from_the_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "api-key").write_text("cred-value-123\n")
    (tmp_path / "api-key").chmod(0o440)  # systemd's own mode: not checked for credentials
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert resolve("credential:api-key") == "cred-value-123"


def test_credential_without_credentials_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretError) as err:
        resolve("credential:api-key")
    assert one_line(err) == "credential:api-key: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)"


def test_credential_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretError) as err:
        resolve("credential:absent")
    assert one_line(err) == f"credential:absent: cannot read {tmp_path / 'absent'} (No such file or directory)"


@pytest.mark.parametrize("name", ["", "../etc/shadow", "a/b", ".."])
def test_credential_name_stays_in_the_directory(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretError) as err:
        resolve(f"credential:{name}")
    assert one_line(err) == f"credential:{name}: expected credential:NAME, a credential of the unit"


def test_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "s"
    f.write_text("file-value\n")
    f.chmod(0o600)
    monkeypatch.setenv("SOME_SECRET", "env-value")
    assert resolve(f"file:{f}") == "file-value" and resolve("env:SOME_SECRET") == "env-value"
    f.chmod(0o644)
    with pytest.raises(SecretError) as err:
        resolve(f"file:{f}")
    assert one_line(err) == f"file:{f}: {f} is readable by others; `chmod 600 {f}`"
    monkeypatch.delenv("SOME_SECRET")
    with pytest.raises(SecretError) as err:
        resolve("env:SOME_SECRET")
    assert one_line(err) == "env:SOME_SECRET: $SOME_SECRET is not set in the daemon's environment"


def test_file_that_cannot_be_read_as_text(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(SecretError) as err:
        resolve(f"file:{d}")
    assert one_line(err) == f"file:{d}: cannot read {d} (Is a directory)"
    b = tmp_path / "bin"
    b.write_bytes(b"\xff\xfe")
    b.chmod(0o600)
    with pytest.raises(SecretError) as err:
        resolve(f"file:{b}")
    assert one_line(err) == f"file:{b}: {b} is not UTF-8 text"


def test_unknown_scheme() -> None:
    with pytest.raises(SecretError) as err:
        resolve("vault:x")
    assert one_line(err) == "vault:x: unknown secret reference; use keyring:, file:, env: or credential:"
