"""The AWS CLI (and awslocal): the profile as the account ``aws:<profile>``; identities, secrets, keys, billing,
messages and S3 copies told apart from the rest, judged by its verb."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import Opts, parse
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
    is_read,
    positionals,
)
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_AWS_GLOBAL: Final = frozenset(
    {"--profile", "--region", "--output", "--endpoint-url", "--query", "--color", "--cli-input-json",
     "--cli-input-yaml", "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format"}
)
_S3_VALUES: Final = frozenset(
    {"--exclude", "--include", "--acl", "--storage-class", "--sse", "--content-type", "--cache-control",
     "--metadata", "--expires", "--grants", "--sse-kms-key-id", "--source-region", "--page-size",
     "--sse-c", "--sse-c-key", "--website-redirect", "--content-disposition", "--content-encoding",
     "--content-language", "--metadata-directive", "--expected-size", "--request-payer", "--checksum-algorithm",
     "--index-document", "--error-document", *_AWS_GLOBAL}
)
_BILLING_SERVICES: Final = frozenset(
    {"budgets", "ce", "billing", "billingconductor", "cur", "savingsplans", "account", "payments", "invoicing",
     "freetier", "marketplace-agreement", "marketplace-catalog", "bcm-data-exports", "pricing",
     "costoptimizationhub", "bcm-pricing-calculator"}
)
_AUTH_SERVICES: Final = frozenset(
    {"sso-admin", "identitystore", "organizations", "cognito-idp", "cognito-identity", "ram", "verifiedpermissions",
     "iam-identity-center", "lakeformation"}
)
_MESSAGE_SERVICES: Final = frozenset(
    {"ses", "sesv2", "sns", "pinpoint", "pinpoint-email", "chime", "chime-sdk-messaging", "connect", "chatbot",
     "sms-voice", "pinpoint-sms-voice-v2", "mailmanager", "socialmessaging", "wisdom"}
)
_IAM_CREDS: Final = (
    "create-access-key", "delete-access-key", "update-access-key", "create-service-specific-credential",
    "reset-service-specific-credential", "delete-service-specific-credential", "update-service-specific-credential",
    "create-login-profile", "update-login-profile", "delete-login-profile", "upload-ssh-public-key",
    "delete-ssh-public-key", "update-ssh-public-key", "upload-signing-certificate", "delete-signing-certificate",
    "update-signing-certificate", "change-password", "enable-mfa-device", "deactivate-mfa-device",
    "create-virtual-mfa-device", "delete-virtual-mfa-device", "resync-mfa-device", "update-account-password-policy",
)


def _aws(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        i += 2 if (a in _AWS_GLOBAL and "=" not in a) else 1
    rest = args[i:]
    o = parse(args, "", _S3_VALUES)
    profile = o.get("--profile")
    if profile and PH not in profile:
        scan.resource("account", "aws:" + profile)
    ep = o.get("--endpoint-url")
    if ep:
        u = scan.parse_url(ep)
        if u:
            scan.url(u)
    words = positionals(rest, _S3_VALUES)
    svc = words[0] if words else ""
    op = words[1] if len(words) > 1 else ""
    if not svc or svc in ("help", "--version"):
        scan.add(READ, "aws help", text)
        return
    if svc == "s3":
        _aws_s3(scan, cmd, op, words[2:], o)
        return
    if op == "help" or op == "wait":
        scan.add(READ, f"aws {svc} {op}", text)
        return
    if svc == "configure":
        key = words[2] if len(words) > 2 else ""
        if op in ("list", "list-profiles") or (op == "get" and "secret" not in key and "token" not in key):
            scan.add(READ, f"aws configure {op}", text)
        else:
            scan.add(SECRETS, f"aws configure {op or '(interactive)'} writes credentials", text)
        return
    if svc in ("sso", "sso-oidc", "login", "logout"):
        scan.add(SECRETS, f"aws {svc} {op} obtains or drops credentials", text)
        return
    if svc == "sts":
        scan.add(READ if op in ("get-caller-identity", "decode-authorization-message", "get-access-key-info")
                 else SECRETS, f"aws sts {op}", text)
        return
    if svc == "iam":
        if is_read(op) or op.startswith(("generate-", "simulate-")):
            scan.add(READ, f"aws iam {op}", text)
        elif op in _IAM_CREDS:
            scan.add(CREDS, f"aws iam {op} changes credentials", text)
        else:
            scan.add(AUTH, f"aws iam {op} changes identities or permissions", text)
        return
    if svc == "secretsmanager":
        if op in ("list-secrets", "describe-secret", "list-secret-version-ids", "get-resource-policy"):
            scan.add(READ, f"aws secretsmanager {op}", text)
        elif op in ("rotate-secret", "cancel-rotate-secret"):
            scan.add(CREDS, f"aws secretsmanager {op}", text)
        else:
            scan.add(SECRETS, f"aws secretsmanager {op} reads or writes secrets", text)
        return
    if svc == "ssm":
        if op.startswith("get-parameter") and "--with-decryption" in args:
            scan.add(SECRETS, f"aws ssm {op} --with-decryption reads secrets", text)
        elif op in ("put-parameter", "delete-parameter", "delete-parameters"):
            scan.add(SECRETS, f"aws ssm {op} changes parameters", text)
        elif op in ("send-command", "start-automation-execution", "start-associations-once"):
            scan.add(DEPLOY, f"aws ssm {op} runs commands on instances", text)
        elif op == "start-session":
            scan.add(UNKNOWN, "aws ssm start-session opens a remote shell", text)
        else:
            generic(scan, "aws ssm", op, text)
        return
    if svc == "kms":
        if op in ("decrypt", "generate-data-key", "generate-data-key-pair", "generate-data-key-without-plaintext",
                  "re-encrypt"):
            scan.add(SECRETS, f"aws kms {op}", text)
        elif op in ("encrypt", "sign", "verify", "generate-random", "generate-mac", "verify-mac") or is_read(op):
            scan.add(READ, f"aws kms {op}", text)
        else:
            scan.add(CREDS, f"aws kms {op} changes keys", text)
        return
    if svc == "ecr" and op in ("get-login-password", "get-authorization-token", "get-login"):
        scan.add(SECRETS, f"aws ecr {op} prints a registry credential", text)
        return
    if svc in _BILLING_SERVICES:
        scan.add(READ if is_read(op) else BILLING, f"aws {svc} {op}", text)
        return
    if svc in _AUTH_SERVICES:
        if is_read(op):
            scan.add(READ, f"aws {svc} {op}", text)
        elif "password" in op or "credential" in op or "access-key" in op:
            scan.add(CREDS, f"aws {svc} {op}", text)
        else:
            scan.add(AUTH, f"aws {svc} {op} changes identities or permissions", text)
        return
    if svc in _MESSAGE_SERVICES and op.startswith(("send", "publish")):
        scan.add("message.external", f"aws {svc} {op} sends a message", text)
        return
    if svc == "lambda" and op in ("invoke", "invoke-async", "invoke-with-response-stream"):
        scan.add(UNKNOWN, "aws lambda invoke runs cloud code", text)
        return
    if svc in ("s3api", "s3control") and op.startswith(("put-bucket-policy", "put-bucket-acl", "put-object-acl",
                                                        "put-public-access-block", "delete-public-access-block",
                                                        "put-access-point-policy")):
        scan.add(AUTH, f"aws {svc} {op} changes access", text)
        return
    if op.endswith(("-policy", "-permission", "-permissions")) and not is_read(op):
        scan.add(AUTH, f"aws {svc} {op} changes permissions", text)
    generic(scan, f"aws {svc}", op, text)


def _aws_s3(scan: Scan, cmd: Cmd, op: str, pos: list[str], o: Opts) -> None:
    text = cmd.text
    for p in pos:
        if p.startswith("s3://"):
            scan.resource("url", p.split("?", 1)[0])
        elif p != "-":
            scan.path(p, "write" if op in ("cp", "mv", "sync") and p is pos[-1] else "read", text)
    if op in ("ls", "presign") or not op:
        scan.add(READ if op != "presign" else SECRETS, f"aws s3 {op or 'ls'}", text)
        return
    if op in ("rm", "rb"):
        scan.add(DELETE, f"aws s3 {op} deletes objects", text)
        return
    if op == "mb" or op == "website":
        scan.add(DEPLOY, f"aws s3 {op}", text)
        return
    dest = pos[-1] if pos else ""
    src = pos[0] if len(pos) > 1 else ""
    if dest.startswith("s3://"):
        scan.add(DEPLOY, f"aws s3 {op} writes to a bucket", text)
        if op == "sync" and o.has("--delete"):
            scan.add(DELETE, "aws s3 sync --delete deletes objects", text)
    else:
        scan.add(READ, f"aws s3 {op} downloads", text)
        if op == "sync" and o.has("--delete"):
            scan.add(DELETE, "aws s3 sync --delete deletes local files", text)
    if op == "mv" and src.startswith("s3://"):
        scan.add(DELETE, "aws s3 mv deletes the source objects", text)
    if op not in ("cp", "mv", "sync"):
        scan.add(UNKNOWN, f"aws s3 {op}", text)


HANDLERS: Final[dict[str, Handler]] = {
    "aws": _aws,
    "awslocal": _aws,
}
