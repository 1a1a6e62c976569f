"""Containers: docker, podman, nerdctl and their compose; swarm services."""

from __future__ import annotations

from typing import Final

from tether.classify.infra.verbs import DELETE, DEPLOY, DEPS, READ, SECRETS, TESTS, UNKNOWN, positionals
from tether.classify.scan import Cmd, Handler, Scan

_DOCKER_READ: Final = frozenset(
    {"ps", "images", "logs", "inspect", "version", "info", "stats", "top", "events", "port", "diff", "search",
     "history", "ls", "df", "show", "config", "--version", "help", "wait", "context"}
)
_DOCKER_DELETE: Final = frozenset({"rm", "rmi", "prune", "remove"})


def _docker(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    tool = cmd.name
    words = positionals(args, frozenset({"-H", "--host", "--context", "-c", "--config", "--log-level", "-f", "--file",
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


HANDLERS: Final[dict[str, Handler]] = {
    "docker": _docker,
    "podman": _docker,
    "nerdctl": _docker,
    "docker-compose": _docker,
    "podman-compose": _docker,
}
