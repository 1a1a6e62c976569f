"""Host administration: processes and services (kill, systemctl), tether's own CLI, other agent CLIs,
users and keys (useradd, passwd, ssh-keygen, gpg), scheduling, firewalls, editors and terminals.
"""

from __future__ import annotations

import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_TETHER_READ: Final = frozenset(
    {"status", "list", "ls", "log", "logs", "check", "explain", "show", "doctor", "version", "--version", "-V",
     "--help", "-h", "help", "watch", "top", "ps", "history", "diff", "tail", "inspect", "describe", "get",
     "agents", "runs", "events", "whoami", "validate", "lint", "report", "audit", "pending", "queue", "info",
     "classify", "why", "dashboard", "metrics", "completion"}
)
#: Process names that are (or may host) tether or its supervisor.
_TETHER_PROCS: Final = frozenset({"tether", "python", "python3", "uvicorn", "supervisord", "supervisor",
                                  "gunicorn", "hypercorn"})


def _mentions_tether(cmd: Cmd) -> bool:
    return "tether" in cmd.text.lower() or any("tether" in a.lower() for a in cmd.argv)


def _tether(scan: Scan, cmd: Cmd) -> None:
    args = [a for a in cmd.args if a not in ("--json", "-q", "--quiet", "-v", "--verbose", "--no-color")]
    verb = next((a for a in args if not a.startswith("-")), args[0] if args else "")
    if not verb or verb in _TETHER_READ:
        scan.add("repo.read", f"tether {verb or '--help'} only reads", cmd.text)
    else:
        scan.add("tether.control", f"tether {verb} changes tether itself", cmd.text)


def _kill(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    args = cmd.args
    if _mentions_tether(cmd):
        scan.add("tether.control", f"{cmd.name} targets tether", text)
        return
    if cmd.name == "kill":
        if "-l" in args or "-L" in args:
            scan.add("repo.read", "kill -l lists signals", text)
            return
        rest = list(args)
        if rest and rest[0] in ("-s", "-n"):
            rest = rest[2:]
        elif rest and rest[0].startswith("-") and rest[0] != "--":
            rest = rest[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if any(p == "0" or p.startswith("-") for p in rest):
            scan.add("tether.control", "kill signals a whole process group or every process", text)
        elif rest and all(p.startswith("%") for p in rest):
            scan.add("tests.run", "kill stops a background job of this shell", text)
        else:
            scan.add("unknown", "kill signals a process that may be tether", text)
        return
    o = parse(args, "sUuGgPtnF", frozenset({"--signal", "--euid", "--uid", "--group", "--parent", "--terminal",
                                             "--ns", "--nslist", "--pidfile", "--older", "--younger"}))
    if o.has("-u", "-U", "--uid", "--euid", "--user") or cmd.name == "killall5":
        scan.add("tether.control", f"{cmd.name} kills every process of a user (tether included)", text)
        return
    patterns = o.pos
    risky = False
    for p in patterns:
        low = p.lower()
        if PH in low or low in _TETHER_PROCS or any(ch in low for ch in ".*[?^$|") or low in "tether":
            risky = True
    if risky or not patterns:
        scan.add("tether.control", f"{cmd.name} may kill tether", text)
    else:
        scan.add("unknown", f"{cmd.name} kills processes", text)


_SERVICE_READ: Final = frozenset(
    {"status", "is-active", "is-enabled", "is-failed", "show", "cat", "list-units", "list-unit-files", "list",
     "list-timers", "list-sockets", "list-dependencies", "print", "avail", "help", "--version", "-l", "logs",
     "tail", "pid", "version", "describe", "info", "jlist", "monit", "ls", "get-default", "print-disabled"}
)


def _service(scan: Scan, cmd: Cmd) -> None:
    words = [a for a in cmd.args if not a.startswith("-")]
    text = cmd.text
    verb = words[0] if words else ""
    if cmd.name == "service" and len(words) > 1:
        verb = words[1]
    if not verb or verb in _SERVICE_READ:
        scan.add("repo.read", f"{cmd.name} {verb}".strip(), text)
    elif _mentions_tether(cmd) or "all" in words[1:] or "supervisor" in text.lower() or (
        cmd.name in ("supervisorctl", "pm2") and verb in ("shutdown", "kill", "update", "reload")
    ):
        scan.add("tether.control", f"{cmd.name} {verb} may stop tether", text)
    else:
        scan.add("unknown", f"{cmd.name} {verb} changes a service", text)


def _users(scan: Scan, cmd: Cmd) -> None:
    if cmd.name in ("passwd", "chpasswd", "chage") and "-S" not in cmd.args and "--status" not in cmd.args:
        scan.add("credentials.rotate", f"{cmd.name} changes a password", cmd.text)
    elif cmd.name == "passwd":
        scan.add("repo.read", "passwd -S", cmd.text)
    else:
        scan.add("auth.modify", f"{cmd.name} changes users, groups or privileges", cmd.text)


def _ssh_keygen(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "abCDEfFgIjmMnNOPrRsStVwYzZ", frozenset())
    text = cmd.text
    for f in o.all("-f"):
        scan.path(f, "read" if o.has("-l", "-y", "-L", "-F", "-R", "-Q", "-B") else "write", text)
    if o.has("-l", "-F", "-L", "-Q", "-B", "-D"):
        scan.add("repo.read", "ssh-keygen inspects a key", text)
    elif o.has("-R", "-H"):
        scan.add("pr.draft", "ssh-keygen edits known_hosts", text)
    elif o.has("-y"):
        scan.add("secrets.modify", "ssh-keygen -y reads a private key", text)
    elif o.has("-Y") and (o.get("-Y") or "") in ("verify", "check-novalidate", "find-principals"):
        scan.add("repo.read", "ssh-keygen verifies a signature", text)
    elif o.has("-Y"):
        scan.add("secrets.modify", "ssh-keygen signs with a private key", text)
    else:
        scan.add("credentials.rotate", "ssh-keygen creates or changes keys", text)


def _ssh_add(scan: Scan, cmd: Cmd) -> None:
    if any(a in ("-l", "-L", "-T") for a in cmd.args):
        scan.add("repo.read", "ssh-add lists keys", cmd.text)
    else:
        for a in cmd.args:
            if not a.startswith("-"):
                scan.path(a, "read", cmd.text)
        scan.add("secrets.modify", "ssh-add loads private keys", cmd.text)


def _ssh_copy_id(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "ipoF", frozenset())
    for h in o.pos[:1]:
        scan.host(h.rsplit("@", 1)[-1])
    scan.add("auth.modify", "ssh-copy-id authorises a key on another host", cmd.text)
    scan.add("network.egress", "ssh-copy-id connects to another host", cmd.text)


_GPG_ROTATE: Final = frozenset(
    {"--gen-key", "--full-generate-key", "--full-gen-key", "--quick-gen-key", "--generate-key",
     "--quick-generate-key", "--delete-key", "--delete-keys", "--delete-secret-key", "--delete-secret-keys",
     "--delete-secret-and-public-key", "--gen-revoke", "--generate-revocation", "--edit-key", "--passwd",
     "--quick-add-key", "--quick-revoke-uid", "--quick-revoke-sig", "--quick-set-expire", "--change-passphrase"}
)
_GPG_SECRET: Final = frozenset({"--export-secret-keys", "--export-secret-subkeys", "-d", "--decrypt", "--import",
                                "--decrypt-files", "--export-ssh-key"})
_GPG_READ: Final = frozenset(
    {"--list-keys", "-k", "--list-secret-keys", "-K", "--fingerprint", "--verify", "--version", "--list-sigs",
     "--check-sigs", "--list-packets", "--export", "--armor", "-a", "-e", "--encrypt", "-s", "--sign",
     "--clearsign", "--clear-sign", "-b", "--detach-sign", "-c", "--symmetric", "--recv-keys", "--search-keys",
     "--receive-keys", "--locate-keys", "--list-config", "--help", "-h", "--print-md", "--show-keys"}
)


def _gpg(scan: Scan, cmd: Cmd) -> None:
    flags = set(cmd.args)
    text = cmd.text
    if flags & _GPG_ROTATE:
        scan.add("credentials.rotate", f"{cmd.name} creates, changes or deletes keys", text)
    elif flags & _GPG_SECRET:
        scan.add("secrets.modify", f"{cmd.name} decrypts or moves secret keys", text)
    elif "--send-keys" in flags:
        scan.add("network.egress", f"{cmd.name} --send-keys uploads keys", text)
    elif flags & _GPG_READ:
        scan.add("repo.read", f"{cmd.name} reads, signs or encrypts", text)
    else:
        scan.add("unknown", f"{cmd.name} default action", text)


def _crontab(scan: Scan, cmd: Cmd) -> None:
    if "-l" in cmd.args:
        scan.add("repo.read", "crontab -l", cmd.text)
    elif "-r" in cmd.args:
        scan.add("data.delete", "crontab -r deletes every scheduled job", cmd.text)
    else:
        scan.add("unknown", "crontab installs scheduled commands", cmd.text)


def _at(scan: Scan, cmd: Cmd) -> None:
    if any(a in ("-l", "-c") for a in cmd.args) or cmd.name == "atq":
        scan.add("repo.read", f"{cmd.name} lists jobs", cmd.text)
        return
    scan.add("unknown", f"{cmd.name} schedules commands to run later", cmd.text)
    if cmd.stdin is not None and PH not in cmd.stdin:
        scan.shell(cmd.stdin, cmd.text)


def _system(reason: str, read_flags: tuple[str, ...] = ()) -> Handler:
    def handle(scan: Scan, cmd: Cmd) -> None:
        if read_flags and (not cmd.args or any(a in read_flags for a in cmd.args)):
            scan.add("repo.read", f"{cmd.name} shows settings", cmd.text)
        else:
            scan.add("unknown", f"{cmd.name} {reason}", cmd.text)

    return handle


def _ip(scan: Scan, cmd: Cmd) -> None:
    words = [a for a in cmd.args if not a.startswith("-")]
    if any(w in ("add", "del", "delete", "set", "flush", "change", "replace", "append", "prepend", "exec")
           for w in words):
        scan.add("unknown", "ip changes network settings", cmd.text)
    else:
        scan.add("repo.read", "ip shows network settings", cmd.text)


def _open(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    pos = [a for a in cmd.args if not a.startswith("-")]
    if any(a in ("-a", "-b", "-e", "-t") for a in cmd.args) and cmd.name == "open":
        scan.add("unknown", "open starts an application", text)
        return
    for p in pos:
        if "://" in p:
            u = scan.parse_url(p)
            if u:
                scan.url(u, text)
            scan.add("repo.read", f"{cmd.name} opens a URL in a browser", text)
        elif p.endswith((".app", ".command", ".sh", ".tool", ".terminal", ".workflow", ".pkg", ".dmg", ".desktop",
                         ".exe", ".bat")):
            scan.add("unknown", f"{cmd.name} runs {p}", text)
        else:
            scan.path(p, "read", text)
            scan.add("repo.read", f"{cmd.name} opens a file", text)
    if not pos:
        scan.add("repo.read", cmd.name, text)


def _gui_editor(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    if any(a.startswith(("--install-extension", "--uninstall-extension")) for a in args):
        scan.add("deps.install", f"{cmd.name} changes extensions", text)
        return
    for a in args:
        if not a.startswith("-"):
            scan.path(a, "read", text)
    scan.add("repo.read", f"{cmd.name} opens files in an editor", text)


def _tty_editor(scan: Scan, cmd: Cmd) -> None:
    for a in cmd.args:
        if not a.startswith(("-", "+")):
            scan.path(a, "write", cmd.text)
    scan.add("unknown", f"{cmd.name} is an interactive editor", cmd.text)


_AGENT_BYPASS: Final = re.compile(
    r"dangerously|bypasspermissions|--yolo\b|danger-full-access|--full-auto|approval[-_]policy[= ]*\"?never|"
    r"--no-sandbox|--trust-all|--allow-all|--auto-approve|--skip-permissions|--permission-mode[= ]+"
    r"(?:bypass|acceptedits)|--settings\b|--mcp-config|--append-system-prompt|--allowedtools|--allowed-tools|"
    r"\s-y\b|--accept-all",
    re.I,
)


def _agent(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    joined = " " + " ".join(cmd.args)
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = words[0] if words else ""
    if _AGENT_BYPASS.search(joined):
        scan.add("tether.control", f"{cmd.name} started with approvals or sandbox switched off", text)
    if verb in ("config", "mcp", "permissions", "hooks", "settings", "allowed-tools", "install", "update",
                "migrate-installer", "setup-token") and ((len(words) > 1 and words[1] not in ("list", "get", "show"))
                                                        or verb in ("install", "update", "setup-token")):
        scan.add("tether.control", f"{cmd.name} {verb} changes agent settings", text)
    elif verb in ("login", "logout", "auth"):
        scan.add("credentials.rotate", f"{cmd.name} {verb}", text)
    elif any(a in ("--version", "-v", "--help", "-h") for a in cmd.args) or verb in ("doctor", "config", "mcp"):
        scan.add("repo.read", f"{cmd.name} prints information", text)
    else:
        scan.add("unknown", f"{cmd.name} runs another agent", text)


def _tmux(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    verb = next((a for a in args if not a.startswith("-")), "")
    if cmd.name == "screen":
        if "-X" in args and any(a in ("stuff", "paste", "exec", "quit", "kill") for a in args):
            scan.add("tether.control", "screen -X types into or kills another terminal", text)
        elif any(a in ("-ls", "-list", "-r", "-x") for a in args):
            scan.add("repo.read" if "-ls" in args or "-list" in args else "unknown", "screen session", text)
        else:
            scan.add("unknown", "screen runs a detached session", text)
            pos = [a for a in args if not a.startswith("-")]
            if pos and "-S" not in args:
                scan.run(cmd.sub(pos))
        return
    if verb in ("send-keys", "send", "paste-buffer", "pasteb", "pipe-pane", "pipep", "respawn-pane", "respawnp",
                "respawn-window", "respawnw"):
        scan.add("tether.control", f"tmux {verb} types into or restarts another terminal", text)
    elif verb in ("kill-server", "kill-session", "kill-pane", "kill-window", "killp", "killw"):
        scan.add("tether.control" if verb == "kill-server" or _mentions_tether(cmd) else "unknown",
                 f"tmux {verb}", text)
    elif verb.startswith(("list-", "ls", "show", "display", "capture-pane", "capturep", "has-session", "has", "info",
                          "lsp", "lsw", "lscm", "lsb", "lsc")):
        scan.add("repo.read", f"tmux {verb}", text)
    elif verb in ("new-session", "new", "new-window", "neww", "split-window", "splitw", "run-shell", "run"):
        pos = [a for a in args[args.index(verb) + 1 :] if not a.startswith("-")]
        scan.add("unknown", f"tmux {verb} starts a session", text)
        if pos and verb in ("run-shell", "run"):
            scan.shell(" ".join(pos), text)
    else:
        scan.add("unknown", f"tmux {verb}".strip(), text)


HANDLERS: Final[dict[str, Handler]] = {
    "tether": _tether,
    "kill": _kill,
    "pkill": _kill,
    "killall": _kill,
    "killall5": _kill,
    "skill": _kill,
    "slay": _kill,
    "systemctl": _service,
    "service": _service,
    "launchctl": _service,
    "supervisorctl": _service,
    "sv": _service,
    "rc-service": _service,
    "initctl": _service,
    "pm2": _service,
    "s6-svc": _service,
    **{n: _users for n in ("useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "adduser", "deluser",
                           "addgroup", "delgroup", "gpasswd", "vipw", "vigr", "visudo", "newusers", "chsh", "chfn",
                           "dscl", "sysadminctl", "dseditgroup", "setcap", "passwd", "chpasswd", "chage", "pwconv",
                           "smbpasswd", "htpasswd", "newgrp", "usermod.exe")},
    "ssh-keygen": _ssh_keygen,
    "ssh-add": _ssh_add,
    "ssh-copy-id": _ssh_copy_id,
    "gpg": _gpg,
    "gpg2": _gpg,
    "crontab": _crontab,
    "at": _at,
    "batch": _at,
    "atq": _at,
    "atrm": _system("removes scheduled jobs"),
    "mount": _system("mounts a filesystem", ("-l", "--list", "--show-labels")),
    "umount": _system("unmounts a filesystem"),
    "reboot": _system("reboots the host"),
    "shutdown": _system("shuts the host down"),
    "halt": _system("halts the host"),
    "poweroff": _system("powers the host off"),
    "init": _system("changes the run level"),
    "telinit": _system("changes the run level"),
    "iptables": _system("changes the firewall", ("-L", "-S", "--list", "--list-rules")),
    "ip6tables": _system("changes the firewall", ("-L", "-S", "--list", "--list-rules")),
    "nft": _system("changes the firewall", ("list",)),
    "ufw": _system("changes the firewall", ("status", "show")),
    "firewall-cmd": _system("changes the firewall", ("--list-all", "--state", "--get-zones", "--list-ports")),
    "pfctl": _system("changes the firewall", ("-s", "-sr", "-sa")),
    "ifconfig": _system("changes network interfaces", ("-a",)),
    "route": _system("changes routes", ("-n", "print", "get")),
    "defaults": _system("changes macOS settings", ("read", "domains", "read-type", "find")),
    "scutil": _system("changes system configuration", ("--get", "--dns", "--proxy", "--nwi")),
    "networksetup": _system("changes network settings", ("-listallnetworkservices", "-getinfo")),
    "modprobe": _system("loads kernel modules", ("-l",)),
    "insmod": _system("loads kernel modules"),
    "rmmod": _system("unloads kernel modules"),
    "expect": _system("drives interactive programs"),
    "ip": _ip,
    "open": _open,
    "xdg-open": _open,
    "gio": _open,
    "start": _open,
    **{n: _gui_editor for n in ("code", "code-insiders", "cursor", "subl", "zed", "idea", "pycharm", "webstorm",
                                "windsurf", "mate", "atom", "gedit", "kate")},
    **{n: _tty_editor for n in ("vim", "vi", "nvim", "nano", "emacs", "micro", "hx", "helix", "kak", "pico", "joe",
                                "ed", "ex", "mcedit", "view", "vimdiff", "emacsclient", "jed")},
    **{n: _agent for n in ("claude", "codex", "aider", "gemini", "cursor-agent", "opencode", "goose", "amp",
                           "copilot", "q", "crush", "qwen", "continue", "cline", "plandex", "openhands")},
    "tmux": _tmux,
    "screen": _tmux,
}
