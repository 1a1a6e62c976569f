"""GitHub: the gh CLI (PRs, issues, releases, secrets, keys, workflows...) and calls to the GitHub REST and
GraphQL APIs, by endpoint and method (``gh api``, and ``curl`` through ``net``)."""

from __future__ import annotations

import re
from typing import Final

from tether.classify.argv import Opts, parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.urls import repo_from_remote

_GH_VALUE_SHORT: Final = "RtbFBHalmprLsqSAXfeowjgcdn"
_GH_VALUE_LONG: Final = frozenset(
    {
        "--repo", "--title", "--body", "--body-file", "--base", "--head", "--assignee", "--label", "--milestone",
        "--project", "--reviewer", "--limit", "--state", "--jq", "--template", "--json", "--search", "--author",
        "--method", "--field", "--raw-field", "--header", "--input", "--hostname", "--env", "--org", "--app",
        "--visibility", "--ref", "--branch", "--workflow", "--user", "--event", "--status", "--name", "--notes",
        "--notes-file", "--target", "--tag", "--subject", "--match-title", "--match-head-commit", "--commit",
        "--description", "--homepage", "--color", "--key", "--type", "--scopes", "--git-protocol", "--remote",
        "--clone", "--source", "--add-label", "--remove-label", "--add-reviewer", "--remove-reviewer",
        "--add-assignee", "--remove-assignee", "--add-project", "--remove-project", "--delete-branch-pr",
        "--author-email", "--comment", "--reason", "--discussion-category", "--cache",
        "--secrets-file", "--env-file", "--paginate-limit", "--format", "--keep", "--order", "--sort",
    }
)

_GH_READ_VERBS: Final = frozenset(
    {"list", "ls", "view", "status", "diff", "checks", "download", "watch", "search", "browse", "get"}
)


def _gh(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    args = list(cmd.args)
    o = parse(args, _GH_VALUE_SHORT, _GH_VALUE_LONG)
    repo = o.get("-R", "--repo")
    if repo and PH not in repo:
        if "/" in repo and repo.count("/") == 1 and ":" not in repo:
            scan.resource("repo", "github.com/" + repo)
        else:
            scan.resource("repo", repo_from_remote(repo) or repo)
    pos = o.pos
    sub = pos[0] if pos else ""
    verb = pos[1] if len(pos) > 1 else ""
    if sub in ("", "help", "version", "--version", "completion", "status", "search", "browse", "org", "attestation"):
        scan.add("repo.read", f"gh {sub} reads", text)
    elif sub == "api":
        _gh_api(scan, cmd, o)
    elif sub == "pr":
        _gh_pr(scan, cmd, verb, o, pos)
    elif sub == "issue":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh issue {verb}", text)
        elif verb == "delete":
            scan.add("data.delete", "gh issue delete", text)
        else:
            scan.add("message.external", f"gh issue {verb} posts on GitHub", text)
    elif sub == "release":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh release {verb}", text)
        elif verb.startswith("delete"):
            scan.add("data.delete", f"gh release {verb}", text)
        else:
            scan.add("deploy.production", f"gh release {verb} publishes a release", text)
    elif sub == "repo":
        _gh_repo(scan, cmd, verb, pos)
    elif sub in ("secret", "variable"):
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh {sub} {verb}", text)
        else:
            scan.add("secrets.modify", f"gh {sub} {verb} changes repository secrets", text)
    elif sub == "auth":
        if verb in ("status",):
            scan.add("repo.read", "gh auth status", text)
        elif verb == "token":
            scan.add("secrets.modify", "gh auth token prints a token", text)
        else:
            scan.add("credentials.rotate", f"gh auth {verb} changes GitHub credentials", text)
    elif sub in ("ssh-key", "gpg-key"):
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh {sub} {verb}", text)
        else:
            scan.add("credentials.rotate", f"gh {sub} {verb} changes keys", text)
    elif sub == "workflow":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh workflow {verb}", text)
        elif verb == "run":
            name = (pos[2] if len(pos) > 2 else "").lower()
            if any(w in name for w in ("deploy", "release", "publish", "prod")):
                scan.add("deploy.production", f"gh workflow run {name} deploys", text)
            else:
                scan.add("unknown", f"gh workflow run {name} runs a CI workflow", text)
        else:
            scan.add("unknown", f"gh workflow {verb}", text)
    elif sub == "run":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh run {verb}", text)
        elif verb == "rerun":
            scan.add("tests.run", "gh run rerun re-runs CI", text)
        elif verb == "delete":
            scan.add("data.delete", "gh run delete", text)
        else:
            scan.add("unknown", f"gh run {verb}", text)
    elif sub == "cache":
        scan.add("data.delete" if verb == "delete" else "repo.read", f"gh cache {verb}", text)
    elif sub == "gist":
        if verb in _GH_READ_VERBS or verb == "clone":
            scan.add("repo.read", f"gh gist {verb}", text)
        elif verb == "delete":
            scan.add("data.delete", "gh gist delete", text)
        else:
            scan.add("network.egress", f"gh gist {verb} uploads content", text)
            for p in pos[2:]:
                scan.path(p, "read", text)
    elif sub == "label":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", "gh label list", text)
        elif verb == "delete":
            scan.add("data.delete", "gh label delete", text)
        else:
            scan.add("pr.open", f"gh label {verb}", text)
    elif sub == "extension" or sub == "ext":
        if verb in ("install", "upgrade", "remove", "create"):
            scan.add("deps.install", f"gh extension {verb}", text)
        else:
            scan.add("repo.read", f"gh extension {verb}", text)
    elif sub == "config":
        scan.add("repo.read" if verb in ("get", "list") else "unknown", f"gh config {verb}", text)
    elif sub == "alias":
        scan.add("repo.read" if verb == "list" else "unknown", f"gh alias {verb}", text)
    else:
        scan.add("unknown", f"gh {sub} {verb}".strip(), text)


def _gh_pr(scan: Scan, cmd: Cmd, verb: str, o: Opts, pos: list[str]) -> None:
    text = cmd.text
    if verb in _GH_READ_VERBS:
        scan.add("repo.read", f"gh pr {verb}", text)
    elif verb == "create" or verb == "new":
        base = o.get("-B", "--base")
        if base:
            scan.resource("branch", base, "write")
        if o.has("-d", "--draft"):
            scan.add("pr.draft", "gh pr create --draft opens a draft PR", text)
        else:
            scan.add("pr.open", "gh pr create opens a PR for review", text)
    elif verb == "merge":
        scan.add("pr.merge", "gh pr merge merges a PR", text)
        if o.has("--admin"):
            scan.add("git.push", "gh pr merge --admin bypasses branch protection", text)
    elif verb == "ready":
        scan.add("pr.draft" if o.has("--undo") else "pr.open", "gh pr ready", text)
    elif verb == "review":
        if o.has("-a", "--approve"):
            scan.add("pr.merge", "gh pr review --approve approves a PR", text)
        else:
            scan.add("message.external", "gh pr review posts a review", text)
    elif verb == "comment":
        scan.add("message.external", "gh pr comment posts a comment", text)
    elif verb in ("checkout", "co", "update-branch"):
        scan.add("pr.draft", f"gh pr {verb}", text)
    else:
        scan.add("pr.open", f"gh pr {verb} changes a PR", text)


def _gh_repo(scan: Scan, cmd: Cmd, verb: str, pos: list[str]) -> None:
    text = cmd.text
    target = pos[2] if len(pos) > 2 else ""
    if target and PH not in target and verb in ("clone", "view", "delete", "edit", "fork", "archive", "rename"):
        scan.resource("repo", "github.com/" + target if target.count("/") == 1 and ":" not in target else target)
    if verb in _GH_READ_VERBS or verb in ("clone", "set-default", "gitignore", "license"):
        scan.add("repo.read", f"gh repo {verb}", text)
    elif verb in ("sync", "fork"):
        scan.add("pr.draft", f"gh repo {verb}", text)
    elif verb == "delete":
        scan.add("data.delete", "gh repo delete deletes a repository", text)
    elif verb == "edit":
        scan.add("auth.modify", "gh repo edit changes repository settings", text)
    elif verb == "deploy-key":
        sub = pos[3] if len(pos) > 3 else ""
        if sub in _GH_READ_VERBS:
            scan.add("repo.read", "gh repo deploy-key list", text)
        else:
            scan.add("credentials.rotate", f"gh repo deploy-key {sub}", text)
    else:
        scan.add("unknown", f"gh repo {verb}", text)


_API_RULES: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = (
    (re.compile(r"/pulls/\d+/merge$|/merges$"), "pr.merge", "merges through the GitHub API"),
    (re.compile(r"/pulls/\d+/reviews"), "message.external", "posts a review through the GitHub API"),
    (re.compile(r"/pulls$"), "pr.open", "opens a PR through the GitHub API"),
    (re.compile(r"/pulls/\d+$"), "pr.open", "edits a PR through the GitHub API"),
    (re.compile(r"/comments|/issues(?:/\d+)?$|/discussions|/reactions"), "message.external",
     "posts on GitHub through the API"),
    (re.compile(r"/releases"), "deploy.production", "publishes a release through the GitHub API"),
    (re.compile(r"/dispatches$|/deployments"), "deploy.production", "triggers a workflow or deployment"),
    (re.compile(r"/secrets|/variables"), "secrets.modify", "changes secrets through the GitHub API"),
    (re.compile(r"/keys|/gpg_keys|/ssh_signing_keys|/tokens|/installations/\d+/access_tokens"),
     "credentials.rotate", "changes keys or tokens through the GitHub API"),
    (re.compile(r"/collaborators|/teams|/members|/memberships|/permissions|/protection|/rulesets|/invitations"
                r"|/outside_collaborators|/environments"), "auth.modify", "changes access through the GitHub API"),
    (re.compile(r"/hooks"), "network.egress", "changes webhooks through the GitHub API"),
    (re.compile(r"/git/refs|/contents/|/git/commits|/merge-upstream"), "git.push",
     "writes commits or refs through the GitHub API"),
    (re.compile(r"/billing|/settings/billing|/copilot/billing"), "billing.modify",
     "changes billing through the GitHub API"),
)
_GRAPHQL_RULES: Final[tuple[tuple[str, str], ...]] = (
    ("mergepullrequest", "pr.merge"),
    ("enablepullrequestautomerge", "pr.merge"),
    ("createpullrequest", "pr.open"),
    ("addcomment", "message.external"),
    ("addpullrequestreview", "message.external"),
    ("createissue", "message.external"),
    ("delete", "data.delete"),
    ("updaterefs", "git.push"),
    ("createcommitonbranch", "git.push"),
)


def github_api_class(scan: Scan, method: str, endpoint: str, body: str, text: str) -> None:
    """Classify a call to the GitHub REST or GraphQL API."""
    ep = endpoint.split("?", 1)[0].rstrip("/").lower()
    if ep.endswith("graphql"):
        b = body.lower()
        if "mutation" not in b:
            scan.add("repo.read", "GitHub GraphQL query", text)
            return
        hits = [k for word, k in _GRAPHQL_RULES if word in b]
        if not hits:
            scan.add("unknown", "GitHub GraphQL mutation", text)
        for k in hits:
            scan.add(k, "GitHub GraphQL mutation", text)
        return
    if method in ("GET", "HEAD"):
        scan.add("repo.read", "GitHub API read", text)
        return
    if method == "DELETE":
        scan.add("data.delete", f"DELETE {ep} through the GitHub API", text)
        return
    for rx, klass, reason in _API_RULES:
        if rx.search(ep):
            if klass == "pr.open" and ep.endswith("/pulls") and '"draft":true' in body.replace(" ", "").lower():
                klass = "pr.draft"
            if klass == "message.external" and "/reviews" in ep and "approve" in body.lower():
                klass = "pr.merge"
            scan.add(klass, reason, text)
            return
    scan.add("unknown", f"{method} {ep} through the GitHub API", text)


def _gh_api(scan: Scan, cmd: Cmd, o: Opts) -> None:
    text = cmd.text
    endpoint = o.pos[1] if len(o.pos) > 1 else ""
    fields = o.all("-f", "-F", "--field", "--raw-field")
    method = (o.get("-X", "--method") or ("POST" if fields or o.has("--input") else "GET")).upper()
    host = o.get("--hostname") or "api.github.com"
    scan.host(host)
    m = re.match(r"/?repos/([^/]+/[^/]+)", endpoint)
    if m and "{" not in m.group(1) and PH not in m.group(1):
        scan.resource("repo", "github.com/" + m.group(1))
    inp = o.get("--input")
    if inp and inp != "-":
        scan.path(inp, "read", text)
    body = " ".join(fields)
    if PH in endpoint:
        scan.add("unknown", "gh api endpoint only known at run time", text)
        return
    github_api_class(scan, method, endpoint, body, text)


HANDLERS: Final[dict[str, Handler]] = {
    "gh": _gh,
}
