"""Infrastructure as code: terraform (tofu, terragrunt), pulumi, cdk, serverless (sls, sam), ansible."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.infra.verbs import CREDS, DELETE, DEPLOY, DEPS, DRAFT, READ, SECRETS, TESTS, UNKNOWN
from tether.classify.scan import Cmd, Handler, Scan

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
    "ansible": _ansible,
    "ansible-playbook": _ansible,
}
