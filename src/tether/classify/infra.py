"""Infrastructure and cloud CLIs: terraform, kubectl, helm, aws, gcloud, az, docker, PaaS deployers, vaults.

Records the account a command acts on (``aws:<profile>``, ``kube:<context>``, ``gcloud:<project>``,
``az:<subscription>``) and the hosts it talks to.
"""

from __future__ import annotations

from typing import Final

from tether.classify.argv import Opts, parse
from tether.classify.db import sql_effects
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

READ: Final = "repo.read"
DEPLOY: Final = "deploy.production"
DELETE: Final = "data.delete"
UNKNOWN: Final = "unknown"
SECRETS: Final = "secrets.modify"
AUTH: Final = "auth.modify"
CREDS: Final = "credentials.rotate"
BILLING: Final = "billing.modify"
TESTS: Final = "tests.run"
DEPS: Final = "deps.install"
DRAFT: Final = "pr.draft"

_READ_PREFIXES: Final = (
    "describe", "list", "get", "head", "batch-get", "search", "lookup", "validate", "estimate", "preview",
    "filter-log-events", "tail", "wait", "help", "check", "detect", "simulate", "show", "view", "read", "query",
    "scan", "select", "logs", "log", "status", "info", "version", "whoami", "ls", "cat", "history", "diff",
    "inspect", "print", "export-", "download", "browse", "explain", "test-", "verify", "count", "top",
    "poll", "fetch", "summarize", "resolve", "plan", "can-i", "current", "config-get", "tree", "stats",
)
_DELETE_PREFIXES: Final = (
    "delete", "remove", "rm", "terminate", "purge", "deregister", "drop", "batch-delete", "destroy", "rb",
    "uninstall", "prune", "wipe", "erase", "disassociate", "release-address", "reset",
)


def _is_read(verb: str) -> bool:
    return verb.startswith(_READ_PREFIXES)


def _is_delete(verb: str) -> bool:
    return verb.startswith(_DELETE_PREFIXES)


def _generic(scan: Scan, tool: str, verb: str, text: str) -> None:
    """Read, delete or change, from the verb alone."""
    if _is_read(verb):
        scan.add(READ, f"{tool} {verb} reads", text)
    elif _is_delete(verb):
        scan.add(DEPLOY, f"{tool} {verb} changes live infrastructure", text)
        scan.add(DELETE, f"{tool} {verb} deletes", text)
    else:
        scan.add(DEPLOY, f"{tool} {verb} changes live infrastructure", text)


def _words(args: list[str], value_opts: frozenset[str] = frozenset()) -> list[str]:
    """Positional words, skipping ``--opt value`` pairs for the listed options."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a.startswith("-"):
            if "=" not in a and a in value_opts:
                skip = True
            continue
        out.append(a)
    return out


# ---------------------------------------------------------------------------------- terraform

_TF_DEPS: Final = frozenset({"init", "get", "providers"})
_TF_READ: Final = frozenset({"plan", "validate", "show", "output", "graph", "version", "console", "modules",
                             "metadata", "-version", "--version", "-help", "help", "fmt", "test"})


def _terraform(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    tool = cmd.name
    words = [a for a in args if not a.startswith("-")]
    for a in args:
        if a.startswith("-chdir="):
            scan.path(a.split("=", 1)[1], "read", text)
    if words[:1] in (["run-all"], ["run"]) or (tool == "terragrunt" and "--all" in args):
        words = words[1:] if words[:1] in (["run-all"], ["run"]) else words
    verb = words[0] if words else ""
    sub = words[1] if len(words) > 1 else ""
    if verb == "destroy" or (verb == "apply" and "-destroy" in args):
        scan.add(DEPLOY, f"{tool} destroy changes live infrastructure", text)
        scan.add(DELETE, f"{tool} destroy deletes infrastructure", text)
    elif verb in ("apply", "import", "taint", "untaint", "refresh", "force-unlock"):
        scan.add(DEPLOY, f"{tool} {verb} changes live infrastructure", text)
    elif verb == "state":
        if sub in ("list", "show", "pull"):
            scan.add(READ, f"{tool} state {sub}", text)
        elif sub == "rm":
            scan.add(DEPLOY, f"{tool} state rm edits live state", text)
            scan.add(DELETE, f"{tool} state rm forgets resources", text)
        else:
            scan.add(DEPLOY, f"{tool} state {sub} edits live state", text)
    elif verb == "workspace":
        if sub in ("list", "show"):
            scan.add(READ, f"{tool} workspace {sub}", text)
        elif sub == "delete":
            scan.add(DELETE, f"{tool} workspace delete", text)
        else:
            scan.add(DEPLOY, f"{tool} workspace {sub} switches live state", text)
    elif verb in ("login", "logout"):
        scan.add(CREDS, f"{tool} {verb}", text)
    elif verb in _TF_DEPS:
        scan.add(DEPS, f"{tool} {verb} downloads providers and modules", text)
    elif verb in _TF_READ or not verb:
        scan.add(TESTS if verb in ("fmt", "test", "validate") else READ, f"{tool} {verb}".strip(), text)
    else:
        scan.add(UNKNOWN, f"{tool} {verb}", text)


def _pulumi(scan: Scan, cmd: Cmd) -> None:
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = " ".join(words[:2])
    v0 = words[0] if words else ""
    text = cmd.text
    if v0 == "destroy" or verb.startswith("stack rm"):
        scan.add(DEPLOY, f"pulumi {verb}", text)
        scan.add(DELETE, f"pulumi {verb} deletes infrastructure", text)
    elif v0 in ("up", "update", "refresh", "import", "cancel", "watch") or verb.startswith(("stack import",
                                                                                           "state delete")):
        scan.add(DEPLOY, f"pulumi {v0} changes live infrastructure", text)
    elif verb.startswith("config set") or verb.startswith("config rm"):
        scan.add(SECRETS if "--secret" in cmd.args else DRAFT, f"pulumi {verb}", text)
    elif verb.startswith("stack output") and "--show-secrets" in cmd.args:
        scan.add(SECRETS, "pulumi stack output --show-secrets", text)
    elif v0 in ("login", "logout"):
        scan.add(CREDS, f"pulumi {v0}", text)
    elif v0 == "new":
        scan.add(DRAFT, "pulumi new", text)
    elif v0 in ("preview", "stack", "whoami", "about", "logs", "config", "version", "plugin", "schema", ""):
        scan.add(READ, f"pulumi {verb}".strip(), text)
    else:
        scan.add(UNKNOWN, f"pulumi {verb}", text)


def _cdk(scan: Scan, cmd: Cmd) -> None:
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = words[0] if words else ""
    text = cmd.text
    if verb == "destroy":
        scan.add(DEPLOY, "cdk destroy", text)
        scan.add(DELETE, "cdk destroy deletes stacks", text)
    elif verb in ("deploy", "bootstrap", "import", "rollback", "watch", "migrate", "gc"):
        scan.add(DEPLOY, f"cdk {verb} changes live infrastructure", text)
    elif verb in ("synth", "synthesize", "diff", "ls", "list", "doctor", "docs", "context", "metadata", "notices",
                  "acknowledge", "ack", "drift", ""):
        scan.add(READ, f"cdk {verb}".strip(), text)
    elif verb == "init":
        scan.add(DRAFT, "cdk init", text)
    else:
        scan.add(UNKNOWN, f"cdk {verb}", text)


def _serverless(scan: Scan, cmd: Cmd) -> None:
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = words[0] if words else ""
    text = cmd.text
    tool = cmd.name
    if verb in ("remove", "delete"):
        scan.add(DEPLOY, f"{tool} {verb}", text)
        scan.add(DELETE, f"{tool} {verb} deletes a stack", text)
    elif verb in ("deploy", "rollback", "sync", "publish"):
        scan.add(DEPLOY, f"{tool} {verb} deploys", text)
    elif verb in ("build", "validate", "local", "package", "offline", "print", "test"):
        scan.add(TESTS, f"{tool} {verb}", text)
    elif verb in ("logs", "list", "info", "metrics", "traces", "--version", "version", ""):
        scan.add(READ, f"{tool} {verb}".strip(), text)
    elif verb == "invoke" and words[1:2] == ["local"]:
        scan.add(TESTS, f"{tool} invoke local", text)
    else:
        scan.add(UNKNOWN, f"{tool} {verb}", text)


# ---------------------------------------------------------------------------------- kubernetes

_KUBE_VALUES: Final = frozenset(
    {"--context", "--namespace", "--kubeconfig", "--server", "--cluster", "--user", "--token", "--as",
     "--as-group", "--selector", "--filename", "--output", "--container", "--field-selector",
     "--request-timeout", "--sort-by", "--template", "--kustomize", "--from-literal", "--from-file", "--image",
     "--replicas", "--port", "--timeout", "--grace-period", "--for", "--type", "--tail", "--since",
     "--label-columns", "--patch", "--cert-dir", "--overrides", "--revision", "--to-revision", "--chunk-size",
     "--field-manager", "--subresource", "--kube-context", "--values", "--set", "--set-string", "--set-file",
     "--version", "--repo", "--create-namespace-name", "--post-renderer", "--username", "--password"}
)
_KUBE_READ: Final = frozenset(
    {"get", "describe", "logs", "top", "explain", "api-resources", "api-versions", "version", "cluster-info",
     "diff", "events", "wait", "completion", "kustomize", "plugin", "alpha", "options", "help"}
)
_KUBE_DEPLOY: Final = frozenset(
    {"apply", "create", "replace", "patch", "edit", "set", "scale", "autoscale", "label", "annotate", "expose",
     "run", "cordon", "uncordon", "drain", "taint", "debug", "cp", "attach", "exec", "convert"}
)


def _kube_account(scan: Scan, o: Opts, text: str, context_opts: tuple[str, ...] = ("--context",)) -> None:
    ctx = o.get(*context_opts)
    if ctx and PH not in ctx:
        scan.resource("account", "kube:" + ctx)
    server = o.get("-s", "--server")
    if server:
        u = scan.parse_url(server, "https")
        if u:
            scan.url(u)
    kc = o.get("--kubeconfig")
    if kc:
        scan.path(kc, "read", text)
    if o.get("--token"):
        scan.add(SECRETS, "passes a cluster token on the command line", text)


def _kubectl(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "nslfocLkp", _KUBE_VALUES)
    _kube_account(scan, o, text)
    for f in o.all("-f", "--filename", "-k", "--kustomize"):
        if f != "-":
            scan.path(f, "read", text)
    pos = o.pos
    verb = pos[0] if pos else ""
    what = " ".join(pos[1:3]).lower()
    kinds = what.split("/", 1)[0].split(" ", 1)[0]
    if verb in _KUBE_READ:
        if verb == "get" and kinds.startswith("secret"):
            scan.add(SECRETS, "kubectl get secret reads secret values", text)
        else:
            scan.add(READ, f"kubectl {verb} reads", text)
        return
    if verb == "auth":
        scan.add(AUTH if "reconcile" in pos else READ, f"kubectl auth {what}", text)
    elif verb == "certificate":
        scan.add(AUTH, f"kubectl certificate {what} changes cluster access", text)
    elif verb == "config":
        sub = pos[1] if len(pos) > 1 else "view"
        if sub in ("view", "get-contexts", "current-context", "get-clusters", "get-users"):
            scan.add(READ, f"kubectl config {sub}", text)
        elif sub == "set-credentials":
            scan.add(SECRETS, "kubectl config set-credentials stores credentials", text)
        else:
            scan.add(UNKNOWN, f"kubectl config {sub} changes which cluster later commands hit", text)
    elif verb == "rollout":
        sub = pos[1] if len(pos) > 1 else ""
        scan.add(READ if sub in ("status", "history") else DEPLOY, f"kubectl rollout {sub}", text)
    elif verb == "delete":
        scan.add(DEPLOY, "kubectl delete changes a cluster", text)
        scan.add(DELETE, f"kubectl delete {what}".strip(), text)
        if kinds.startswith("secret"):
            scan.add(SECRETS, "kubectl delete secret", text)
    elif verb in _KUBE_DEPLOY:
        scan.add(DEPLOY, f"kubectl {verb} changes a cluster", text)
        if verb == "create":
            if kinds.startswith("secret"):
                scan.add(SECRETS, "kubectl create secret", text)
            elif kinds.startswith(("role", "clusterrole", "rolebinding", "clusterrolebinding", "serviceaccount",
                                   "sa")):
                scan.add(AUTH, f"kubectl create {kinds} changes cluster access", text)
            elif kinds == "token":
                scan.add(CREDS, "kubectl create token mints a token", text)
    elif verb in ("port-forward", "proxy"):
        scan.add(UNKNOWN, f"kubectl {verb} opens access to the cluster", text)
    elif verb == "krew":
        scan.add(DEPS, "kubectl krew", text)
    else:
        scan.add(UNKNOWN, f"kubectl {verb}", text)


def _helm(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    o = parse(cmd.args, "nfo", _KUBE_VALUES)
    _kube_account(scan, o, text, ("--kube-context",))
    for f in o.all("-f", "--values"):
        scan.path(f, "read", text)
    pos = o.pos
    verb = pos[0] if pos else ""
    sub = pos[1] if len(pos) > 1 else ""
    if verb in ("uninstall", "delete", "del", "un"):
        scan.add(DEPLOY, f"helm {verb} changes a cluster", text)
        scan.add(DELETE, f"helm {verb} removes a release", text)
    elif verb in ("install", "upgrade", "rollback", "i"):
        scan.add(DEPLOY, f"helm {verb} changes a cluster", text)
    elif verb in ("repo", "dependency", "dep", "plugin", "pull", "fetch"):
        scan.add(READ if sub in ("list", "ls") else DEPS, f"helm {verb} {sub}".strip(), text)
    elif verb == "push":
        scan.add(DEPLOY, "helm push publishes a chart", text)
    elif verb == "registry":
        scan.add(CREDS, f"helm registry {sub}", text)
    elif verb in ("package", "lint", "test", "create"):
        scan.add(TESTS if verb != "create" else DRAFT, f"helm {verb}", text)
    else:
        scan.add(READ, f"helm {verb}".strip(), text)


# ----------------------------------------------------------------------------------------- aws

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
    words = _words(rest, _S3_VALUES)
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
        if _is_read(op) or op.startswith(("generate-", "simulate-")):
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
            _generic(scan, "aws ssm", op, text)
        return
    if svc == "kms":
        if op in ("decrypt", "generate-data-key", "generate-data-key-pair", "generate-data-key-without-plaintext",
                  "re-encrypt"):
            scan.add(SECRETS, f"aws kms {op}", text)
        elif op in ("encrypt", "sign", "verify", "generate-random", "generate-mac", "verify-mac") or _is_read(op):
            scan.add(READ, f"aws kms {op}", text)
        else:
            scan.add(CREDS, f"aws kms {op} changes keys", text)
        return
    if svc == "ecr" and op in ("get-login-password", "get-authorization-token", "get-login"):
        scan.add(SECRETS, f"aws ecr {op} prints a registry credential", text)
        return
    if svc in _BILLING_SERVICES:
        scan.add(READ if _is_read(op) else BILLING, f"aws {svc} {op}", text)
        return
    if svc in _AUTH_SERVICES:
        if _is_read(op):
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
    if op.endswith(("-policy", "-permission", "-permissions")) and not _is_read(op):
        scan.add(AUTH, f"aws {svc} {op} changes permissions", text)
    _generic(scan, f"aws {svc}", op, text)


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


# -------------------------------------------------------------------------------------- gcloud

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
        if _is_read(x) or _is_delete(x) or x in ("create", "update", "deploy", "set", "add", "patch", "access",
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
    elif group == "iam" and not _is_read(last):
        scan.add(AUTH, f"gcloud iam {' '.join(w[1:3])}", text)
    elif group in ("billing", "beta") and "billing" in words and not _is_read(last):
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
        _generic(scan, f"gcloud {' '.join(w[:2])}", last, text)


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
    elif op in ("ls", "cat", "du", "stat", "hash", "version", "list", "describe", "") or _is_read(op):
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
    elif verb in ("ls", "show", "head", "version", "help", "wait", "") or _is_read(verb):
        scan.add(READ, f"bq {verb}".strip(), text)
    else:
        scan.add(DEPLOY, f"bq {verb} changes BigQuery", text)


# ------------------------------------------------------------------------------------------ az

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
    elif group == "ad" or (group == "role" and not _is_read(verb)):
        scan.add(READ if _is_read(verb) else AUTH, f"az {path}", text)
    elif group == "keyvault" and ("secret" in w or "key" in w or "certificate" in w):
        if verb in ("list", "list-versions", "list-deleted"):
            scan.add(READ, f"az {path}", text)
        elif "key" in w and verb in ("rotate", "create", "delete", "purge"):
            scan.add(CREDS, f"az {path}", text)
        else:
            scan.add(SECRETS, f"az {path} reads or writes secrets", text)
    elif group in ("billing", "consumption", "costmanagement"):
        scan.add(READ if _is_read(verb) else BILLING, f"az {path}", text)
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
        _generic(scan, f"az {' '.join(w[:-1])}".strip(), verb, text)


# ------------------------------------------------------------------------------------- docker

_DOCKER_READ: Final = frozenset(
    {"ps", "images", "logs", "inspect", "version", "info", "stats", "top", "events", "port", "diff", "search",
     "history", "ls", "df", "show", "config", "--version", "help", "wait", "context"}
)
_DOCKER_DELETE: Final = frozenset({"rm", "rmi", "prune", "remove"})


def _docker(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    tool = cmd.name
    words = _words(args, frozenset({"-H", "--host", "--context", "-c", "--config", "--log-level", "-f", "--file",
                                    "-p", "--project-name", "--profile", "--env-file", "--project-directory"}))
    if tool in ("docker-compose", "podman-compose"):
        words = ["compose", *words]
    verb = words[0] if words else ""
    sub = words[1] if len(words) > 1 else ""
    if verb in ("compose", "stack"):
        _compose(scan, cmd, sub, args, tool)
        return
    if verb in ("container", "image", "volume", "network", "system", "builder", "buildx", "manifest", "plugin",
                "secret", "config", "context", "trust", "swarm", "service", "node"):
        group, verb, sub = verb, sub, (words[2] if len(words) > 2 else "")
    else:
        group = ""
    full = f"{tool} {group} {verb}".replace("  ", " ").strip()
    if group == "secret" and verb not in ("ls", "inspect"):
        scan.add(SECRETS, f"{full} changes swarm secrets", text)
    elif group == "context" and verb in ("use", "create", "update", "import"):
        scan.add(UNKNOWN, f"{full} changes which engine later commands hit", text)
    elif group in ("swarm", "service", "node") and verb not in ("ls", "ps", "inspect", "logs"):
        scan.add(DEPLOY, f"{full} changes a swarm", text)
        if verb in ("rm", "leave"):
            scan.add(DELETE, f"{full} removes services", text)
    elif verb in _DOCKER_DELETE:
        scan.add(DELETE, f"{full} deletes containers, images or volumes", text)
    elif verb == "push" or (verb in ("build", "bake") and "--push" in args):
        scan.add(DEPLOY, f"{full} publishes an image", text)
    elif verb in ("pull",) or (group == "plugin" and verb == "install"):
        scan.add(DEPS, f"{full} downloads images", text)
    elif verb in ("login", "logout"):
        scan.add(SECRETS, f"{full} stores registry credentials", text)
    elif verb in ("build", "bake", "create", "start", "stop", "restart", "pause", "unpause", "kill", "tag",
                  "connect", "disconnect", "rename", "update", "commit", "save", "load", "import", "export",
                  "attach", "cp", "use", "du"):
        if verb == "cp":
            for p in words[1:]:
                if ":" not in p:
                    scan.path(p, "write" if p is words[-1] else "read", text)
        scan.add(TESTS, f"{full} manages local containers", text)
    elif verb in ("run", "exec"):
        scan.add(UNKNOWN, f"{full} runs code in a container", text)
        if "--privileged" in args or any(a.startswith(("-v/:", "--volume=/:")) for a in args):
            scan.add(UNKNOWN, f"{full} gets host-level access", text)
    elif verb in _DOCKER_READ or (group and verb in ("ls", "inspect", "history")) or not verb:
        scan.add(READ, f"{full} reads", text)
    else:
        scan.add(UNKNOWN, full, text)


def _compose(scan: Scan, cmd: Cmd, verb: str, args: list[str], tool: str) -> None:
    text = cmd.text
    if verb in ("down", "rm") and any(a in ("-v", "--volumes") for a in args):
        scan.add(DELETE, f"{tool} compose {verb} -v deletes volumes", text)
    elif verb in ("down", "rm", "kill", "stop", "up", "start", "restart", "build", "create", "pause", "unpause",
                  "watch", "scale", "cp", "wait"):
        scan.add(TESTS, f"{tool} compose {verb} manages local services", text)
    elif verb in ("run", "exec"):
        scan.add(UNKNOWN, f"{tool} compose {verb} runs a command in a container", text)
    elif verb == "push" or verb == "deploy":
        scan.add(DEPLOY, f"{tool} compose {verb}", text)
    elif verb == "pull":
        scan.add(DEPS, f"{tool} compose pull", text)
    else:
        scan.add(READ, f"{tool} compose {verb}".strip(), text)


# ---------------------------------------------------------------------------------------- PaaS

#: tool -> ((verb prefix, class), ...); first match wins; "" matches anything.
_PAAS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "fly": (
        ("apps destroy", DELETE), ("destroy", DELETE), ("volumes destroy", DELETE), ("volumes delete", DELETE),
        ("postgres destroy", DELETE), ("secrets list", READ), ("secrets", SECRETS), ("auth token", SECRETS),
        ("auth", CREDS), ("tokens", CREDS), ("ssh", UNKNOWN), ("sftp", UNKNOWN), ("proxy", UNKNOWN),
        ("console", UNKNOWN), ("deploy", DEPLOY), ("launch", DEPLOY), ("scale", DEPLOY), ("machine", DEPLOY),
        ("m ", DEPLOY), ("apps create", DEPLOY), ("apps restart", DEPLOY), ("certs", DEPLOY), ("ips", DEPLOY),
        ("status", READ), ("logs", READ), ("apps list", READ), ("info", READ), ("releases", READ),
        ("config", READ), ("doctor", READ), ("version", READ), ("dashboard", READ), ("regions", READ),
        ("checks", READ), ("platform", READ), ("", UNKNOWN),
    ),
    "vercel": (
        ("env", SECRETS), ("pull", SECRETS), ("rm", DELETE), ("remove", DELETE), ("ls", READ), ("list", READ),
        ("logs", READ), ("inspect", READ), ("whoami", READ), ("domains ls", READ), ("projects ls", READ),
        ("help", READ), ("--version", READ), ("dev", TESTS), ("build", TESTS), ("login", CREDS),
        ("logout", CREDS), ("link", READ), ("git", UNKNOWN), ("secrets", SECRETS), ("", DEPLOY),
    ),
    "netlify": (
        ("env", SECRETS), ("sites:delete", DELETE), ("sites:list", READ), ("status", READ), ("dev", TESTS),
        ("build", TESTS), ("serve", TESTS), ("login", CREDS), ("logout", CREDS), ("functions:invoke", UNKNOWN),
        ("link", READ), ("open", READ), ("watch", READ), ("deploy", DEPLOY), ("", UNKNOWN),
    ),
    "heroku": (
        ("config:get", SECRETS), ("config:set", SECRETS), ("config:unset", SECRETS), ("config", SECRETS),
        ("apps:destroy", DELETE), ("destroy", DELETE), ("pg:reset", DELETE), ("addons:destroy", DELETE),
        ("pg:psql", UNKNOWN), ("run", UNKNOWN), ("access:", AUTH), ("authorizations", CREDS), ("login", CREDS),
        ("logout", CREDS), ("logs", READ), ("ps:scale", DEPLOY), ("ps:restart", DEPLOY), ("ps", READ),
        ("apps:info", READ), ("apps", READ), ("releases:rollback", DEPLOY), ("releases", READ), ("info", READ),
        ("status", READ), ("", DEPLOY),
    ),
    "railway": (
        ("variables", SECRETS), ("run", SECRETS), ("shell", SECRETS), ("down", DELETE), ("delete", DELETE),
        ("logs", READ), ("status", READ), ("list", READ), ("whoami", READ), ("link", READ), ("connect", UNKNOWN),
        ("login", CREDS), ("logout", CREDS), ("init", DRAFT), ("", DEPLOY),
    ),
    "wrangler": (
        ("secret list", READ), ("secret", SECRETS), ("dev", TESTS), ("types", TESTS), ("tail", READ),
        ("whoami", READ), ("d1 list", READ), ("d1 info", READ), ("delete", DELETE), ("d1 delete", DELETE),
        ("r2 bucket delete", DELETE), ("r2 object delete", DELETE), ("kv namespace delete", DELETE),
        ("kv key delete", DELETE), ("kv:key delete", DELETE), ("login", CREDS), ("logout", CREDS),
        ("init", DRAFT), ("generate", DRAFT), ("docs", READ), ("", DEPLOY),
    ),
    "firebase": (
        ("firestore:delete", DELETE), ("database:remove", DELETE), ("functions:delete", DELETE),
        ("hosting:disable", DELETE), ("auth:import", AUTH), ("functions:config:set", SECRETS),
        ("functions:secrets", SECRETS), ("functions:config:get", SECRETS), ("emulators", TESTS),
        ("serve", TESTS), ("projects:list", READ), ("apps:list", READ), ("use", UNKNOWN), ("login", CREDS),
        ("logout", CREDS), ("init", DRAFT), ("functions:log", READ), ("", DEPLOY),
    ),
    "supabase": (
        ("db reset", DELETE), ("db push", DEPLOY), ("functions deploy", DEPLOY), ("secrets list", READ),
        ("secrets", SECRETS), ("migration up", DEPLOY), ("migration repair", DEPLOY), ("migration new", DRAFT),
        ("migration list", READ), ("start", TESTS), ("stop", TESTS), ("status", READ), ("gen", TESTS),
        ("test", TESTS), ("db diff", READ), ("db dump", READ), ("db lint", TESTS), ("projects list", READ),
        ("projects delete", DELETE), ("login", CREDS), ("logout", CREDS), ("link", UNKNOWN), ("init", DRAFT),
        ("functions serve", TESTS), ("functions new", DRAFT), ("", UNKNOWN),
    ),
    "argocd": (
        ("app delete", DELETE), ("app list", READ), ("app get", READ), ("app diff", READ), ("app history", READ),
        ("app logs", READ), ("app manifests", READ), ("app wait", READ), ("account update-password", CREDS),
        ("account generate-token", CREDS), ("proj role create-token", CREDS), ("login", CREDS),
        ("logout", CREDS), ("version", READ), ("cluster list", READ), ("repo list", READ), ("", DEPLOY),
    ),
    "doctl": (
        ("auth", CREDS), ("compute ssh", "network.egress"), ("kubernetes cluster kubeconfig", DRAFT),
        ("", "@generic"),
    ),
    "kamal": (
        ("remove", DELETE), ("details", READ), ("audit", READ), ("app logs", READ), ("app details", READ),
        ("config", READ), ("version", READ), ("env", SECRETS), ("secrets", SECRETS), ("lock", UNKNOWN),
        ("app exec", UNKNOWN), ("", DEPLOY),
    ),
    "skaffold": (
        ("delete", DELETE), ("run", DEPLOY), ("deploy", DEPLOY), ("apply", DEPLOY), ("dev", UNKNOWN),
        ("debug", UNKNOWN), ("build", TESTS), ("test", TESTS), ("render", READ), ("diagnose", READ),
        ("fix", DRAFT), ("init", DRAFT), ("config", READ), ("version", READ), ("", UNKNOWN),
    ),
    "nomad": (
        ("job stop", DEPLOY), ("job run", DEPLOY), ("job dispatch", DEPLOY), ("job revert", DEPLOY),
        ("job scale", DEPLOY), ("job plan", READ), ("job status", READ), ("job inspect", READ), ("status", READ),
        ("alloc logs", READ), ("alloc exec", UNKNOWN), ("acl", AUTH), ("var", SECRETS), ("", UNKNOWN),
    ),
    "eb": (
        ("terminate", DELETE), ("deploy", DEPLOY), ("create", DEPLOY), ("setenv", SECRETS), ("printenv", SECRETS),
        ("scale", DEPLOY), ("swap", DEPLOY), ("restore", DEPLOY), ("status", READ), ("health", READ),
        ("logs", READ), ("list", READ), ("events", READ), ("ssh", UNKNOWN), ("init", DRAFT), ("", UNKNOWN),
    ),
    "stripe": (
        ("logs", READ), ("get", READ), ("listen", TESTS), ("version", READ), ("status", READ), ("config", READ),
        ("login", CREDS), ("logout", CREDS), ("open", READ), ("samples", DRAFT), ("completion", READ),
        ("", BILLING),
    ),
    "ansible-galaxy": (("", DEPS),),
    "ansible-vault": (("", SECRETS),),
    "minikube": (("", TESTS),),
    "kind": (("", TESTS),),
    "k3d": (("", TESTS),),
    "kustomize": (("edit", DRAFT), ("build", READ), ("", READ)),
    "kubeseal": (("", SECRETS),),
    "sops": (("", SECRETS),),
    "vault": (
        ("token create", CREDS), ("token revoke", CREDS), ("token renew", CREDS), ("token lookup", READ),
        ("login", CREDS), ("operator", CREDS), ("policy write", AUTH), ("policy delete", AUTH),
        ("auth enable", AUTH), ("auth disable", AUTH), ("auth tune", AUTH), ("kv destroy", DELETE),
        ("kv metadata delete", DELETE), ("status", READ), ("version", READ), ("list", READ), ("kv list", READ),
        ("policy list", READ), ("policy read", READ), ("audit", AUTH), ("", SECRETS),
    ),
    "pass": (("ls", READ), ("find", READ), ("", SECRETS)),
    "gopass": (("ls", READ), ("find", READ), ("", SECRETS)),
    "bw": (("status", READ), ("login", CREDS), ("logout", CREDS), ("", SECRETS)),
    "lpass": (("status", READ), ("login", CREDS), ("logout", CREDS), ("", SECRETS)),
    "keyring": (("", SECRETS),),
    "security": (
        ("list-keychains", READ), ("find-certificate", READ), ("verify-cert", READ), ("dump-trust-settings", READ),
        ("", SECRETS),
    ),
    "age-keygen": (("", CREDS),),
    "step": (("certificate inspect", READ), ("crypto", CREDS), ("ca", CREDS), ("", UNKNOWN)),
}
_PAAS_ALIASES: Final = {"flyctl": "fly", "vc": "vercel", "ntl": "netlify"}


def _paas(scan: Scan, cmd: Cmd) -> None:
    tool = _PAAS_ALIASES.get(cmd.name, cmd.name)
    rules = _PAAS[tool]
    words = [a for a in cmd.args if not a.startswith("-")]
    text = cmd.text
    joined = " ".join(words) + " "
    if tool == "vercel" and ("--prod" in cmd.args or "--production" in cmd.args):
        scan.add(DEPLOY, "vercel --prod deploys to production", text)
        return
    if tool == "sops":
        if any(a in ("-d", "--decrypt", "exec-env", "exec-file") for a in cmd.args):
            scan.add(SECRETS, "sops decrypts secrets", text)
            if "exec-env" in words or "exec-file" in words:
                k = words.index("exec-env") if "exec-env" in words else words.index("exec-file")
                if len(words) > k + 2:
                    scan.shell(words[k + 2], text)
            return
        if "rotate" in cmd.args or "-r" in cmd.args:
            scan.add(CREDS, "sops rotate", text)
            return
    if tool == "wrangler" and words[:2] == ["d1", "execute"]:
        c = next((a.split("=", 1)[1] for a in cmd.args if a.startswith("--command=")), None)
        if c is None and "--command" in cmd.args:
            k = cmd.args.index("--command")
            c = cmd.args[k + 1] if k + 1 < len(cmd.args) else ""
        if c is not None:
            sql_effects(scan, c, "wrangler d1 execute", text)
            return
    for prefix, klass in rules:
        if joined.startswith(prefix):
            if klass == "@generic":
                _generic(scan, tool, words[-1] if words else "", text)
            else:
                if klass == DELETE:
                    scan.add(DEPLOY, f"{tool} {' '.join(words[:2])} changes live infrastructure", text)
                scan.add(klass, f"{tool} {' '.join(words[:3])}".strip(), text)
            return
    scan.add(UNKNOWN, f"{tool} {' '.join(words[:2])}", text)


def _ansible(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    if any(a in ("--check", "-C", "--syntax-check", "--list-tasks", "--list-hosts", "--list-tags", "--version")
           for a in args):
        scan.add(READ, f"{cmd.name} dry run", text)
        return
    if cmd.name == "ansible":
        o = parse(args, "maiuekMBPtfl", frozenset({"--module-name", "--args", "--inventory", "--user"}))
        module = o.get("-m", "--module-name") or "command"
        if module in ("ping", "setup", "gather_facts", "debug"):
            scan.add(READ, f"ansible -m {module}", text)
            return
        scan.add(DEPLOY, f"ansible -m {module} changes remote hosts", text)
        return
    for p in [a for a in args if a.endswith((".yml", ".yaml"))]:
        scan.path(p, "read", text)
    scan.add(DEPLOY, "ansible-playbook changes remote hosts", text)


HANDLERS: Final[dict[str, Handler]] = {
    "terraform": _terraform,
    "tofu": _terraform,
    "terragrunt": _terraform,
    "pulumi": _pulumi,
    "cdk": _cdk,
    "cdktf": _cdk,
    "serverless": _serverless,
    "sls": _serverless,
    "sam": _serverless,
    "kubectl": _kubectl,
    "oc": _kubectl,
    "k": _kubectl,
    "microk8s.kubectl": _kubectl,
    "helm": _helm,
    "aws": _aws,
    "awslocal": _aws,
    "gcloud": _gcloud,
    "gsutil": _gsutil,
    "bq": _bq,
    "az": _az,
    "docker": _docker,
    "podman": _docker,
    "nerdctl": _docker,
    "docker-compose": _docker,
    "podman-compose": _docker,
    "ansible": _ansible,
    "ansible-playbook": _ansible,
    **{n: _paas for n in (*_PAAS, *_PAAS_ALIASES)},
}
