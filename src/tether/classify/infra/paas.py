"""Hosting platforms' CLIs (fly, vercel, netlify, heroku, wrangler...), deployers and secret stores (vault, pass,
sops...): mostly one declarative table, ``verb prefix -> class`` per tool."""

from __future__ import annotations

from typing import Final

from tether.classify.db import sql_effects
from tether.classify.infra.verbs import (
    AUTH,
    BILLING,
    CREDS,
    DELETE,
    DEPLOY,
    DEPS,
    DRAFT,
    READ,
    SECRETS,
    TESTS,
    UNKNOWN,
    generic,
)
from tether.classify.scan import Cmd, Handler, Scan

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
                generic(scan, tool, words[-1] if words else "", text)
            else:
                if klass == DELETE:
                    scan.add(DEPLOY, f"{tool} {' '.join(words[:2])} changes live infrastructure", text)
                scan.add(klass, f"{tool} {' '.join(words[:3])}".strip(), text)
            return
    scan.add(UNKNOWN, f"{tool} {' '.join(words[:2])}", text)


HANDLERS: Final[dict[str, Handler]] = {
    **{n: _paas for n in (*_PAAS, *_PAAS_ALIASES)},
}
