"""Google Cloud: gcloud, gsutil and bq; the project as the account ``gcloud:<project>``."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.db import sql_effects
from tether.classify.infra.verbs import (
    AUTH,
    BILLING,
    CREDS,
    DELETE,
    DEPLOY,
    READ,
    SECRETS,
    UNKNOWN,
    generic,
    is_delete,
    is_read,
)
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_GCLOUD_VALUES: Final = frozenset(
    {"--project", "--account", "--configuration", "--zone", "--region", "--format", "--filter", "--limit",
     "--impersonate-service-account", "--verbosity", "--billing-project", "--image", "--source", "--member",
     "--role", "--key-file", "--data-file", "--location", "--service-account", "--flags-file", "--sort-by",
     "--page-size", "--machine-type", "--platform", "--memory", "--cpu", "--runtime", "--trigger-http",
     "--entry-point", "--set-env-vars", "--update-env-vars", "--iam-account", "--keyring", "--command",
     "--ssh-flag", "--database", "--instance", "--query"}
)


def _gcloud(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "", _GCLOUD_VALUES)
    project = o.get("--project")
    if project and PH not in project:
        scan.resource("account", "gcloud:" + project)
    w = o.pos
    words = set(w)
    group = w[0] if w else ""
    last = ""
    for x in w[1:]:
        if is_read(x) or is_delete(x) or x in ("create", "update", "deploy", "set", "add", "patch", "access",
                                                  "ssh", "scp", "connect", "login", "revoke", "activate",
                                                  "print-access-token", "print-identity-token", "import",
                                                  "export", "start", "stop", "restart", "resize", "reset",
                                                  "link", "unlink", "rollback", "promote", "run", "cp", "mv",
                                                  "rsync", "rm", "submit", "execute", "call") or "iam-policy" in x:
            last = x
            break
    if group == "auth":
        if last.startswith("print-") or "print-access-token" in words:
            scan.add(SECRETS, "gcloud auth prints a token", text)
        elif last in ("list", "describe") or not last:
            scan.add(READ, "gcloud auth list", text)
        else:
            scan.add(CREDS, f"gcloud auth {' '.join(w[1:3])} changes credentials", text)
    elif group == "config":
        scan.add(READ if last.startswith(("list", "get", "describe")) else UNKNOWN,
                 f"gcloud config {' '.join(w[1:3])}", text)
    elif group == "secrets":
        scan.add(READ if last in ("list", "describe") else SECRETS, f"gcloud secrets {' '.join(w[1:3])}", text)
    elif group == "iam" and "keys" in words and last in ("create", "delete", "upload", "disable", "enable"):
        scan.add(CREDS, f"gcloud iam keys {last}", text)
    elif group == "iam" and not is_read(last):
        scan.add(AUTH, f"gcloud iam {' '.join(w[1:3])}", text)
    elif group in ("billing", "beta") and "billing" in words and not is_read(last):
        scan.add(BILLING, "gcloud billing changes billing", text)
    elif "iam-policy" in last and not last.startswith("get"):
        scan.add(AUTH, f"gcloud {last} changes permissions", text)
    elif last in ("ssh", "scp"):
        scan.add("network.egress", f"gcloud {group} {last} opens a remote session", text)
        scan.add(UNKNOWN, f"gcloud {group} {last} runs remote commands", text)
    elif last == "connect":
        scan.add(UNKNOWN, f"gcloud {group} connect opens a session", text)
    elif group == "storage":
        _bucket_copy(scan, cmd, last, [x for x in w[2:]], "gs://", "gcloud storage")
    elif last == "deploy" or "deploy" in words:
        scan.add(DEPLOY, f"gcloud {' '.join(w[:2])} deploy", text)
    elif last == "access" and group == "secrets":
        scan.add(SECRETS, "gcloud secrets access", text)
    elif not last:
        scan.add(READ if group in ("", "help", "version", "info", "components", "topic") else UNKNOWN,
                 f"gcloud {' '.join(w[:3])}".strip(), text)
    else:
        generic(scan, f"gcloud {' '.join(w[:2])}", last, text)


def _bucket_copy(scan: Scan, cmd: Cmd, op: str, pos: list[str], scheme: str, tool: str) -> None:
    text = cmd.text
    for p in pos:
        if p.startswith(scheme):
            scan.resource("url", p)
        elif not p.startswith("-"):
            scan.path(p, "write" if op in ("cp", "mv", "rsync") and p is pos[-1] else "read", text)
    if op in ("rm", "rb", "delete") or op.startswith("delete"):
        scan.add(DELETE, f"{tool} {op} deletes objects", text)
    elif op in ("cp", "mv", "rsync"):
        dest = pos[-1] if pos else ""
        if dest.startswith(scheme):
            scan.add(DEPLOY, f"{tool} {op} writes to a bucket", text)
        else:
            scan.add(READ, f"{tool} {op} downloads", text)
        if op == "mv" or "-d" in cmd.args or "--delete-unmatched-destination-objects" in cmd.args:
            scan.add(DELETE, f"{tool} {op} deletes objects", text)
    elif op in ("ls", "cat", "du", "stat", "hash", "version", "list", "describe", "") or is_read(op):
        scan.add(READ, f"{tool} {op}".strip(), text)
    elif op in ("signurl", "sign-url"):
        scan.add(SECRETS, f"{tool} {op} creates an access URL", text)
    elif op in ("iam", "acl", "defacl"):
        scan.add(AUTH, f"{tool} {op} changes access", text)
    else:
        scan.add(DEPLOY, f"{tool} {op}", text)


def _gsutil(scan: Scan, cmd: Cmd) -> None:
    args = [a for a in cmd.args if a not in ("-m", "-q")]
    o = parse(args, "houpi", frozenset())
    op = o.pos[0] if o.pos else ""
    if op in ("iam", "acl", "defacl") and o.pos[1:2] in (["get"],):
        scan.add(READ, f"gsutil {op} get", cmd.text)
        return
    _bucket_copy(scan, cmd, op, o.pos[1:], "gs://", "gsutil")


def _bq(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "", frozenset({"--project_id", "--dataset_id", "--location", "--format",
                                        "--destination_table", "--parameter", "--max_rows"}))
    project = o.get("--project_id")
    if project and PH not in project:
        scan.resource("account", "gcloud:" + project)
    verb = o.pos[0] if o.pos else ""
    if verb == "query":
        sql = " ".join(o.pos[1:]) or (cmd.stdin or "")
        sql_effects(scan, sql, "bq query", text)
    elif verb in ("rm",):
        scan.add(DELETE, "bq rm deletes a table or dataset", text)
    elif verb in ("ls", "show", "head", "version", "help", "wait", "") or is_read(verb):
        scan.add(READ, f"bq {verb}".strip(), text)
    else:
        scan.add(DEPLOY, f"bq {verb} changes BigQuery", text)


HANDLERS: Final[dict[str, Handler]] = {
    "gcloud": _gcloud,
    "gsutil": _gsutil,
    "bq": _bq,
}
