"""Kubernetes: kubectl (oc, k) and helm; the context they act on recorded as the account ``kube:<context>``."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import Opts, parse
from tether.classify.infra.verbs import AUTH, CREDS, DELETE, DEPLOY, DEPS, DRAFT, READ, SECRETS, TESTS, UNKNOWN
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

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


HANDLERS: Final[dict[str, Handler]] = {
    "kubectl": _kubectl,
    "oc": _kubectl,
    "k": _kubectl,
    "microk8s.kubectl": _kubectl,
    "helm": _helm,
}
