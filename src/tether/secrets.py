"""Secret references → values, resolved into an agent's environment and registered for redaction.

``keyring:SERVICE/NAME`` (the keyring library), ``file:/path`` (must be mode 0600 or stricter),
``env:VAR`` (the daemon's environment), ``credential:NAME`` (systemd's ``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from tether.errors import TetherError


class SecretError(TetherError):
    """Why a reference cannot be resolved, in one line (it becomes an agent's "cannot start" reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def resolve(ref: str) -> str:
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        if rest not in os.environ:
            raise SecretError(f"{ref}: ${rest} is not set in the daemon's environment")
        return os.environ[rest]
    if scheme == "file":
        return _read_private(Path(rest).expanduser(), ref)
    if scheme == "credential":
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not creds:
            raise SecretError(f"{ref}: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)")
        if not rest or "/" in rest or rest in (".", ".."):
            raise SecretError(f"{ref}: expected credential:NAME, a credential of the unit")
        return _read_private(Path(creds) / rest, ref, check_mode=False)
    if scheme == "keyring":
        service, _, name = rest.partition("/")
        if not service or not name:
            raise SecretError(f"{ref}: expected keyring:SERVICE/NAME")
        try:
            import keyring

            value = keyring.get_password(service, name)
        except Exception as err:  # no keyring service on a headless host
            raise SecretError(
                f"{ref}: the keyring is not available ({err}); use file: or env: on a headless host"
            ) from None
        if value is None:
            raise SecretError(f"{ref}: not in the keyring; add it with `keyring set {service} {name}`")
        return value
    raise SecretError(f"{ref}: unknown secret reference; use keyring:, file:, env: or credential:")


def _read_private(path: Path, ref: str, check_mode: bool = True) -> str:
    try:
        st = path.stat()
    except OSError as err:
        raise SecretError(f"{ref}: cannot read {path} ({err.strerror})") from None
    if check_mode and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{ref}: {path} is readable by others; `chmod 600 {path}`")
    try:
        return path.read_text().rstrip("\n")
    except OSError as err:
        raise SecretError(f"{ref}: cannot read {path} ({err.strerror})") from None
    except UnicodeDecodeError:
        raise SecretError(f"{ref}: {path} is not UTF-8 text") from None


def resolve_all(refs: Mapping[str, str]) -> dict[str, str]:
    return {name: resolve(ref) for name, ref in refs.items()}
