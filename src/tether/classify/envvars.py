"""Environment assignments (``X=1 cmd``, ``export X=1``, ``env X=1 cmd``) that matter."""

from __future__ import annotations

import re
from typing import Final

from tether.classify.paths import PH
from tether.classify.scan import Scan
from tether.classify.urls import db_account

#: Variable names whose value is a credential (printing one leaks it).
SECRET_VAR: Final = re.compile(r"SECRET|TOKEN|PASSW|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH", re.I)

#: Variables that change which program runs or inject code into the next ones.
_HIJACK: Final = frozenset(
    {
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "BASH_ENV",
        "ENV",
        "PROMPT_COMMAND",
        "IFS",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "NODE_OPTIONS",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF",
        "GIT_TEMPLATE_DIR",
        "BROWSER",
        "SUDO_ASKPASS",
        "CC_WRAPPER",
        "RUSTC_WRAPPER",
    }
)
#: Editors and pagers run a command line; only plain viewers are harmless.
_RUNNERS: Final = frozenset(
    {"EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "PAGER", "GIT_PAGER", "MANPAGER", "LESSOPEN"}
)
_SAFE_RUNNERS: Final = frozenset({"", "cat", "less", "more", "true", ":", "vi", "vim", "nano", "less -R", "less -FRX"})

#: Variables that make hook managers skip the git hooks (like ``--no-verify``).
_HOOK_SKIPPERS: Final = frozenset(
    {"HUSKY", "HUSKY_SKIP_HOOKS", "SKIP", "LEFTHOOK", "LEFTHOOK_EXCLUDE", "PRE_COMMIT_ALLOW_NO_CONFIG",
     "OVERCOMMIT_DISABLE", "GIT_HOOKS_DISABLE"}
)

_ACCOUNTS: Final = {
    "AWS_PROFILE": "aws:",
    "AWS_DEFAULT_PROFILE": "aws:",
    "CLOUDSDK_CORE_PROJECT": "gcloud:",
    "GOOGLE_CLOUD_PROJECT": "gcloud:",
    "GCLOUD_PROJECT": "gcloud:",
    "AZURE_SUBSCRIPTION_ID": "az:",
    "ARM_SUBSCRIPTION_ID": "az:",
    "KUBECONTEXT": "kube:",
    "KUBE_CONTEXT": "kube:",
}


def env_effects(scan: Scan, env: list[tuple[str, str]], text: str, persistent: bool) -> None:
    """Classes and accounts implied by environment assignments."""
    for name, value in env:
        up = name.upper()
        if up in _HIJACK:
            scan.add("unknown", f"sets {name}, which changes what later commands run", text)
        elif up in _RUNNERS:
            if value.strip() not in _SAFE_RUNNERS:
                scan.add("unknown", f"sets {name} to run {value.replace(PH, '$…')!r}", text)
        elif up.startswith("GIT_CONFIG"):
            if "hookspath" in value.lower():
                scan.add("tether.control", "switches git hooks off via GIT_CONFIG", text)
            else:
                scan.add("unknown", f"injects git configuration via {name}", text)
        elif up in _HOOK_SKIPPERS:
            if up not in ("HUSKY", "LEFTHOOK") or value.strip().lower() in ("0", "false", "no", "off", ""):
                scan.add("tether.control", f"{name} switches git hooks off", text)
        elif up.startswith("TETHER_"):
            scan.add("tether.control", f"sets tether's own variable {name}", text)
        elif up in ("CLAUDE_CODE_DISABLE_HOOKS", "DISABLE_HOOKS") or "DISABLEALLHOOKS" in up:
            scan.add("tether.control", f"sets {name}", text)
        elif up in _ACCOUNTS:
            if value and PH not in value:
                scan.resource("account", _ACCOUNTS[up] + value)
        elif up == "KUBECONFIG":
            for part in value.split(":"):
                if part and PH not in part:
                    scan.path(part, "read", text)
        elif up.endswith("_URL") or up.endswith("_URI") or up.endswith("_DSN"):
            acc = db_account(value)
            if acc:
                scan.resource("account", acc)
    if persistent:
        scan.add("repo.read", "sets shell variables", text)
