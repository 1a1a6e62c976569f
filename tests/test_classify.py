"""Unit tests for tether.classify: the API contract, resources, contexts, paths, URLs and tool calls."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from tether.classify import (
    Action,
    Classification,
    Context,
    Resource,
    classify_path,
    classify_shell,
    classify_tool,
    classify_url,
)
from tether.vocabulary import DEFAULT_PROTECTED_PATHS

CTX = Context(cwd="/work/repo", home="/home/dev", control=("/work/repo/tether.runbook.yaml", "/home/dev/.tether"))


def classes(command: str, ctx: Context = CTX) -> set[str]:
    return set(classify_shell(command, ctx).classes)


def resources(result: Classification) -> set[tuple[str, str, str, bool]]:
    return {(r.kind, r.value, r.op, r.protected) for r in result.resources}


# ------------------------------------------------------------------------------------- API shape


def test_public_api() -> None:
    import tether.classify as mod

    assert set(mod.__all__) == {
        "Action", "Classification", "Context", "Resource", "classify_path", "classify_shell", "classify_tool",
        "classify_url", "errors_total", "input_hash",
    }
    r = classify_shell("ls")
    assert isinstance(r.actions[0], Action)
    assert r.classes == frozenset({"repo.read"})
    assert Context().protected == DEFAULT_PROTECTED_PATHS
    assert Context().protected_branches == ("main", "master", "release/*", "production")
    with pytest.raises(AttributeError):
        setattr(r, "parsed", False)  # noqa: B010 - frozen dataclass


def test_actions_carry_reason_and_command() -> None:
    r = classify_shell("ls && rm -rf data", CTX)
    delete = next(a for a in r.actions if a.klass == "data.delete")
    assert "rm" in delete.reason
    assert delete.command == "rm -rf data"


def test_empty_and_comment_only() -> None:
    assert classify_shell("").classes == {"repo.read"}
    assert classify_shell("   # nothing").classes == {"repo.read"}


def test_import_is_light() -> None:
    code = (
        "import sys, tether.classify\n"
        "bad = [m for m in ('yaml', 'pydantic', 'click', 'rich', 'httpx') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


# ----------------------------------------------------------------------------------- parse errors


@pytest.mark.parametrize("command", ["echo 'open", "if true; then ls", "ls )(", "$(", "cat <<EOF", "a && "])
def test_syntax_errors_are_unknown(command: str) -> None:
    r = classify_shell(command, CTX)
    assert not r.parsed
    assert "unknown" in r.classes


def test_partial_parse_still_classifies_what_it_can() -> None:
    r = classify_shell("rm -rf /srv; echo 'unterminated", CTX)
    assert not r.parsed
    assert {"unknown", "data.delete"} <= r.classes


# -------------------------------------------------------------------------------------- resources


def test_paths_are_absolute_and_normalised() -> None:
    r = classify_shell("cat ./src/../README.md ~/notes.txt /etc//hosts", CTX)
    values = {x.value for x in r.resources if x.kind == "path"}
    assert values == {"/work/repo/README.md", "/home/dev/notes.txt", "/etc/hosts"}


def test_cd_changes_where_paths_resolve() -> None:
    r = classify_shell("cd /srv/app && rm -rf cache", CTX)
    assert ("path", "/srv/app/cache", "delete", False) in resources(r)
    r = classify_shell("(cd /srv && ls) && cat x", CTX)
    assert ("path", "/work/repo/x", "read", False) in resources(r)


def test_unknown_cd_makes_later_writes_unknown() -> None:
    r = classify_shell('cd "$DIR" && echo x > out.txt', CTX)
    assert "unknown" in r.classes


def test_hosts_are_lower_case_and_urls_lose_credentials() -> None:
    r = classify_shell("curl https://User:Secret@API.Example.COM:8443/v1/x?token=abc", CTX)
    assert ("host", "api.example.com", "", False) in resources(r)
    urls = [x.value for x in r.resources if x.kind == "url"]
    assert urls == ["https://api.example.com:8443/v1/x"]
    assert not any("Secret" in x.value or "token" in x.value for x in r.resources)


def test_database_accounts_have_no_password() -> None:
    r = classify_shell("psql postgresql://admin:hunter2@db.prod:5432/shop -c 'select 1'", CTX)
    assert ("account", "db:postgresql://db.prod/shop", "", False) in resources(r)
    assert not any("hunter2" in x.value for x in r.resources)
    r = classify_shell("DATABASE_URL=mysql://u:pw@db/x ./migrate", CTX)
    assert ("account", "db:mysql://db/x", "", False) in resources(r)


def test_cloud_accounts() -> None:
    assert ("account", "aws:prod", "", False) in resources(classify_shell("aws s3 ls --profile prod", CTX))
    assert ("account", "aws:dev", "", False) in resources(classify_shell("AWS_PROFILE=dev aws s3 ls", CTX))
    assert ("account", "kube:prod", "", False) in resources(classify_shell("kubectl --context prod get pods", CTX))
    assert ("account", "gcloud:p1", "", False) in resources(classify_shell("gcloud --project=p1 run deploy x", CTX))
    assert ("account", "az:s1", "", False) in resources(classify_shell("az vm list --subscription s1", CTX))


def test_repos() -> None:
    r = classify_shell("gh pr create --repo acme/app --title x", CTX)
    assert ("repo", "github.com/acme/app", "", False) in resources(r)
    r = classify_shell("git clone git@github.com:acme/lib.git", CTX)
    assert ("repo", "github.com/acme/lib", "", False) in resources(r)
    r = classify_shell("git push https://tok@gitlab.com/grp/proj.git feat", CTX)
    assert ("repo", "gitlab.com/grp/proj", "", False) in resources(r)
    assert not any("tok" in x.value for x in r.resources)


def test_scripts() -> None:
    r = classify_shell("./deploy.sh --prod", CTX)
    assert r.classes == {"unknown"}
    assert ("script", "/work/repo/deploy.sh", "exec", False) in resources(r)


# ------------------------------------------------------------------------------------- protection


def test_default_protected_globs() -> None:
    for path in (".env", "sub/dir/.env", ".env.local", ".claude/settings.json", "a/.codex/config.toml",
                 ".git/hooks/pre-commit", ".git/config", "x/secrets/key.txt", ".github/workflows/ci.yml"):
        r = classify_path(path, "write", CTX)
        assert any(x.protected for x in r.resources), path
    for path in ("src/app.py", "README.md", ".github/CODEOWNERS", "environment.py", "secrets.py"):
        r = classify_path(path, "write", CTX)
        assert not any(x.protected for x in r.resources), path


def test_relative_globs_only_match_below_cwd() -> None:
    assert not any(x.protected for x in classify_path("/elsewhere/.github/workflows/x.yml", "read", CTX).resources)


def test_custom_globs() -> None:
    ctx = Context(cwd="/w", protected=("infra/**", "/etc/nginx/*.conf", "**/*.pem", "db/schema.sql"))
    assert any(x.protected for x in classify_path("infra/prod/main.tf", "write", ctx).resources)
    assert any(x.protected for x in classify_path("/etc/nginx/site.conf", "write", ctx).resources)
    assert not any(x.protected for x in classify_path("/etc/nginx/sub/site.conf", "write", ctx).resources)
    assert any(x.protected for x in classify_path("a/b/c.pem", "read", ctx).resources)
    assert any(x.protected for x in classify_path("lib/db/schema.sql", "write", ctx).resources)
    assert not any(x.protected for x in classify_path("db/schema.sql.bak", "write", ctx).resources)
    # default globs are not implied once a runbook passes its own list
    assert not any(x.protected for x in classify_path(".github/workflows/x.yml", "write", ctx).resources)


def test_recursive_delete_of_an_ancestor_is_protected() -> None:
    r = classify_shell("rm -rf .git", CTX)
    assert "tether.control" in r.classes
    assert all(x.protected for x in r.resources)
    r = classify_shell("rm -rf ~/.tether", CTX)
    assert "tether.control" in r.classes
    r = classify_shell("rm -rf build", CTX)
    assert "tether.control" not in r.classes


def test_control_paths() -> None:
    assert "tether.control" in classify_path("/work/repo/tether.runbook.yaml", "write", CTX).classes
    assert "tether.control" in classify_path("/home/dev/.tether/state.db", "delete", CTX).classes
    # tether's own files are protected for reading too (issue 17): tokens, kill files, the runbook
    assert "tether.control" in classify_path("/work/repo/tether.runbook.yaml", "read", CTX).classes
    assert "tether.control" in classify_shell("cat /home/dev/.tether/admin.token", CTX).classes
    assert "tether.control" not in classify_shell("ls /home/dev/.tether", CTX).classes
    assert "tether.control" in classify_path("/home/dev/.claude/settings.json", "write", CTX).classes
    assert "tether.control" in classify_shell("chmod 000 tether.runbook.yaml", CTX).classes


def test_globs_in_arguments_match_what_they_may_expand_to() -> None:
    assert "tether.control" in classes("cp x .cl*/settings.json")
    assert "secrets.modify" in classes("cat .en?")
    assert "secrets.modify" not in classes("cat *.py")


def test_protected_branches() -> None:
    assert classes("git push origin production") == {"git.push"}
    assert classes("git push origin release/1.2") == {"git.push"}
    assert classes("git push origin feature/x") == {"pr.draft"}
    ctx = Context(cwd="/w", protected_branches=("trunk",))
    assert classes("git push origin trunk", ctx) == {"git.push"}
    assert classes("git push origin main", ctx) == {"pr.draft"}


# ---------------------------------------------------------------------------------- paths and URLs


@pytest.mark.parametrize(
    ("path", "op", "expected"),
    [
        ("src/app.py", "read", {"repo.read"}),
        ("src/app.py", "write", {"pr.draft"}),
        ("src/app.py", "delete", {"pr.draft"}),
        ("bin/tool", "exec", {"unknown"}),
        (".env", "read", {"repo.read", "secrets.modify"}),
        ("~/.ssh/id_rsa", "read", {"repo.read", "secrets.modify"}),
        ("~/.ssh/id_rsa.pub", "read", {"repo.read"}),
        ("~/.ssh/authorized_keys", "write", {"pr.draft", "auth.modify"}),
        ("~/.bashrc", "write", {"pr.draft", "unknown"}),
        (".claude/settings.local.json", "write", {"pr.draft", "tether.control"}),
        ("src/app.py", "chmod", {"unknown"}),
        ("", "read", {"unknown"}),
    ],
)
def test_classify_path(path: str, op: str, expected: set[str]) -> None:
    assert classify_path(path, op, CTX).classes == expected


@pytest.mark.parametrize(
    ("url", "method", "expected"),
    [
        ("https://example.com/x", "GET", {"repo.read"}),
        ("https://example.com/x", "POST", {"network.egress"}),
        ("example.com/x", "GET", {"repo.read"}),
        ("https://hooks.slack.com/services/a/b/c", "POST", {"message.external"}),
        ("https://api.stripe.com/v1/refunds", "POST", {"billing.modify"}),
        ("https://api.github.com/repos/o/r/pulls/1/merge", "PUT", {"pr.merge"}),
        ("http://localhost:7777/api/approvals/3/approve", "POST", {"tether.control"}),
        ("http://[::1]:7777/api/runs/3/resume", "POST", {"tether.control"}),
        ("http://localhost:3000/api/items", "POST", {"tests.run"}),
        ("file:///etc/passwd", "GET", {"repo.read"}),
        ("mailto:a@b.c", "GET", {"message.external"}),
        ("not a url", "GET", {"unknown"}),
    ],
)
def test_classify_url(url: str, method: str, expected: set[str]) -> None:
    assert classify_url(url, method, CTX).classes == expected


def test_url_host_resource() -> None:
    r = classify_url("https://Docs.Python.org/3/", "GET", CTX)
    assert ("host", "docs.python.org", "", False) in resources(r)


# ------------------------------------------------------------------------------------- tool calls


def test_claude_tools() -> None:
    assert classify_tool("Read", {"file_path": "/work/repo/a.py"}, CTX).classes == {"repo.read"}
    assert classify_tool("Read", {"file_path": "/work/repo/.env"}, CTX).classes == {"repo.read", "secrets.modify"}
    assert classify_tool("Write", {"file_path": "a.py", "content": "x"}, CTX).classes == {"pr.draft"}
    r = classify_tool("Write", {"file_path": "/home/dev/project/settings.json", "content": '{"disableAllHooks":1}'},
                      CTX)
    assert "tether.control" in r.classes
    r = classify_tool("MultiEdit", {"file_path": "/work/repo/.claude/settings.json",
                                    "edits": [{"old_string": "a", "new_string": "b"}]}, CTX)
    assert "tether.control" in r.classes
    r = classify_tool("WebFetch", {"url": "https://example.org/a", "prompt": "x"}, CTX)
    assert r.classes == {"repo.read"}
    assert ("host", "example.org", "", False) in resources(r)
    assert classify_tool("Bash", {"command": "rm -rf /srv"}, CTX).classes == {"data.delete"}
    assert classify_tool("Bash", {}, CTX).classes == {"unknown"}


def test_mcp_tools() -> None:
    r = classify_tool("mcp__linear__list_issues", {}, CTX)
    assert r.classes == {"repo.read"}
    assert ("account", "mcp:linear", "", False) in resources(r)
    assert classify_tool("mcp__gmail__send_email", {}, CTX).classes == {"message.external"}
    assert classify_tool("mcp__gh__createMessage", {}, CTX).classes == {"message.external"}
    assert classify_tool("mcp__db__execute_sql", {"sql": "TRUNCATE t"}, CTX).classes == {"data.delete"}
    assert classify_tool("mcp__x__frobnicate", {}, CTX).classes == {"unknown"}


def test_codex_tools() -> None:
    r = classify_tool("exec_command", {"cmd": "rm -rf out", "workdir": "/srv/app"}, CTX)
    assert ("path", "/srv/app/out", "delete", False) in resources(r)
    r = classify_tool("shell", {"command": ["git", "push", "-f"]}, CTX)
    assert r.classes == {"git.push"}
    patch = "*** Begin Patch\n*** Update File: a.py\n*** Move to: b.py\n@@\n-x\n+y\n*** End Patch\n"
    r = classify_tool("apply_patch", {"input": patch}, CTX)
    assert ("path", "/work/repo/b.py", "write", False) in resources(r)
    assert classify_tool("apply_patch", {"input": "garbage"}, CTX).parsed is False
    r = classify_tool("shell", {"command": ["apply_patch", "*** Begin Patch\n*** Add File: .env\n+A=1\n*** End Patch"]},
                      CTX)
    assert "secrets.modify" in r.classes


# ------------------------------------------------------------------------------------ shell forms


@pytest.mark.parametrize(
    "command",
    [
        "ls | rm -rf /srv",
        "ls && rm -rf /srv",
        "ls || rm -rf /srv",
        "(rm -rf /srv)",
        "{ rm -rf /srv; }",
        "echo $(rm -rf /srv)",
        "echo `rm -rf /srv`",
        "diff <(rm -rf /srv) x",
        "echo x > >(rm -rf /srv)",
        "bash -c 'rm -rf /srv'",
        "sh -lc 'rm -rf /srv'",
        "zsh -c 'rm -rf /srv'",
        "eval 'rm -rf /srv'",
        "sudo rm -rf /srv",
        "sudo -E -u root rm -rf /srv",
        "env A=1 rm -rf /srv",
        "xargs rm -rf < list",
        "nice -n 5 rm -rf /srv",
        "timeout -s KILL 5 rm -rf /srv",
        "nohup rm -rf /srv &",
        "time rm -rf /srv",
        "command rm -rf /srv",
        "exec rm -rf /srv",
        "find /srv -delete",
        "find /srv -exec rm -rf {} +",
        "watch rm -rf /srv",
        "ssh host rm -rf /srv",
        "case x in x) rm -rf /srv;; esac",
        "while true; do rm -rf /srv; done",
        "until false; do rm -rf /srv; done",
        "! rm -rf /srv",
        "rm -rf /srv 2>/dev/null",
        "A=1 B=2 rm -rf /srv",
        "f() { rm -rf /srv; }",
        "sh <<'EOF'\nrm -rf /srv\nEOF",
        "echo 'rm -rf /srv' | bash",
        "bash <<< 'rm -rf /srv'",
    ],
)
def test_nested_forms_reach_the_inner_command(command: str) -> None:
    assert "data.delete" in classes(command), command


def test_heredoc_sql_to_psql() -> None:
    assert "data.delete" in classes("psql <<EOF\nDELETE FROM t;\nEOF")
    assert "data.delete" in classes("cat <<'EOF' | psql -h db\nDROP TABLE t;\nEOF")
    assert classes("psql <<EOF\nSELECT 1;\nEOF") == {"repo.read"}


def test_sql_in_strings_and_comments_does_not_count() -> None:
    assert classes("psql -c \"SELECT 'DROP TABLE x' AS s\"") == {"repo.read"}
    assert classes("psql -c 'SELECT 1 /* DELETE FROM t */'") == {"repo.read"}
    assert "data.delete" in classes("psql -c \"UPDATE t SET a = 1\"")
    assert "data.delete" not in classes("psql -c \"UPDATE t SET a = 1 WHERE id = 2\"")


def test_git_details() -> None:
    assert classes("git push") == {"git.push"}
    assert classes("git -C /other push origin feat") == {"pr.draft"}
    assert classes("git commit -m 'no -n here'") == {"pr.draft"}
    assert "tether.control" in classes("git commit -qnm x")
    assert "tether.control" not in classes("git push -n origin feat")  # -n is --dry-run for push
    assert classes("git config user.email a@b.c") == {"pr.draft"}
    assert "tether.control" in classes("git config --global core.hooksPath /tmp/h")
    assert "unknown" in classes("git frobnicate")


def test_bypass_shapes() -> None:
    for cmd in ("$X -rf /", '"$(echo rm)" -rf /', "$'\\x72m' -rf /", 'r""m -rf /', "/bin/r? x", "`which rm` x"):
        assert "unknown" in classes(cmd), cmd
    assert classes("\\rm -rf data") == {"data.delete"}
    assert classes("'rm' -rf data") == {"data.delete", "unknown"}


def test_disable_all_hooks_by_any_means() -> None:
    for cmd in (
        "echo '{\"disableAllHooks\":true}' > ~/x.json",
        "jq '.disableAllHooks=true' a.json | sponge a.json",
        "python3 -c 'open(\"s.json\",\"w\").write(\"disableAllHooks\")'",
        "sed -i 's/{/{\"disableAllHooks\":true,/' settings.json",
    ):
        assert "tether.control" in classes(cmd), cmd
    assert "tether.control" not in classes("grep -rn disableAllHooks docs/")


def test_network_egress_only_for_outbound_data() -> None:
    assert classes("curl https://example.com/a") == {"repo.read"}
    assert classes("curl -d @report.json https://example.com/a") == {"network.egress"}
    assert classes("scp a.txt host:/tmp") == {"network.egress"}
    assert classes("nc host 80") == {"network.egress"}


def test_kill_and_tether() -> None:
    assert classes("pkill -f 'tether serve'") == {"tether.control"}
    assert classes("kill -TERM %2") == {"tests.run"}
    assert classes("tether logs -f") == {"repo.read"}
    assert classes("tether lift") == {"tether.control"}


@pytest.mark.classifier_errors
def test_classifier_never_raises_on_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import tether.classify.commands as commands

    def boom(scan: object, cmd: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(commands.HANDLERS, "ls", boom)
    r = classify_shell("ls", CTX)
    assert r.classes == {"unknown"}
    assert r.parsed is False


def test_resource_dataclass_defaults() -> None:
    assert Resource("host", "x") == Resource("host", "x", "", False)


@pytest.mark.parametrize(
    ("command", "want"),
    [
        ("cat /etc/[z-a]", {"repo.read"}),  # a reversed range was a re.error: a classifier error
        ("cat /x/[[:alpha:]]", {"repo.read"}),
        ("cat ~/.ssh/id_[[:alpha:]]sa", {"repo.read", "secrets.modify"}),  # a class that may be id_rsa
        ("cat ~/.ssh/id_[]r]sa", {"repo.read", "secrets.modify"}),
        ("cat ~/.ssh/id_[r-s]sa", {"repo.read", "secrets.modify"}),
    ],
)
def test_bracket_globs_never_break_the_path_regex(command: str, want: set[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a nested set ("[[") was a FutureWarning from re
        assert classes(command) == want
