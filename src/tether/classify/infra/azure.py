"""The Azure CLI (az); the subscription as the account ``az:<subscription>``."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.infra.verbs import AUTH, BILLING, CREDS, DEPLOY, DEPS, READ, SECRETS, UNKNOWN, generic, is_read
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_AZ_VALUES: Final = frozenset(
    {"--subscription", "--resource-group", "-g", "--name", "-n", "--output", "-o", "--query", "--location",
     "-l", "--ids", "--src", "--src-path", "--type", "--vault-name", "--file", "--value", "--assignee", "--role",
     "--scope", "--container-name", "--account-name", "--slot", "--image", "--template-file", "--parameters"}
)


def _az(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "gnolf", _AZ_VALUES)
    sub = o.get("--subscription")
    if sub and PH not in sub:
        scan.resource("account", "az:" + sub)
    w = o.pos
    group = w[0] if w else ""
    verb = w[-1] if w else ""
    path = " ".join(w)
    if group in ("login", "logout"):
        scan.add(CREDS, f"az {group}", text)
    elif group == "account":
        if verb == "get-access-token":
            scan.add(SECRETS, "az account get-access-token prints a token", text)
        elif verb == "set":
            scan.add(UNKNOWN, "az account set changes the default subscription", text)
        else:
            scan.add(READ, f"az {path}", text)
    elif "credential" in path and ("reset" in w or "delete" in w or "create" in w):
        scan.add(CREDS, f"az {path} changes credentials", text)
    elif group == "ad" or (group == "role" and not is_read(verb)):
        scan.add(READ if is_read(verb) else AUTH, f"az {path}", text)
    elif group == "keyvault" and ("secret" in w or "key" in w or "certificate" in w):
        if verb in ("list", "list-versions", "list-deleted"):
            scan.add(READ, f"az {path}", text)
        elif "key" in w and verb in ("rotate", "create", "delete", "purge"):
            scan.add(CREDS, f"az {path}", text)
        else:
            scan.add(SECRETS, f"az {path} reads or writes secrets", text)
    elif group in ("billing", "consumption", "costmanagement"):
        scan.add(READ if is_read(verb) else BILLING, f"az {path}", text)
    elif group in ("ssh",) or verb == "ssh":
        scan.add("network.egress", f"az {path} opens a remote shell", text)
        scan.add(UNKNOWN, f"az {path} runs remote commands", text)
    elif "run-command" in w:
        scan.add(DEPLOY, f"az {path} runs commands on machines", text)
    elif group == "storage" and "blob" in w and verb.startswith("upload"):
        scan.add(DEPLOY, f"az {path} uploads", text)
    elif group in ("version", "help", "find", "config", "extension", "bicep", "upgrade", "interactive"):
        scan.add(READ if group in ("version", "help", "find") else DEPS if group in ("extension", "bicep",
                                                                                   "upgrade") else UNKNOWN,
                 f"az {path}", text)
    elif not verb:
        scan.add(READ, "az", text)
    else:
        generic(scan, f"az {' '.join(w[:-1])}".strip(), verb, text)


HANDLERS: Final[dict[str, Handler]] = {
    "az": _az,
}
