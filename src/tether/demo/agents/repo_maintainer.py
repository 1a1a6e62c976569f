"""Demo agent: opens a cleanup PR in its repo, then asks to merge it and waits for a human."""

import subprocess

from tether import Agent

agent = Agent.from_env()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()


with agent.task("open cleanup PR"):
    agent.heartbeat(progress="branching")
    git("checkout", "-q", "-B", "cleanup")
    with open("util.py", "a") as f:
        f.write("\n# tidied by repo-maintainer\n")
    agent.files_changed("util.py")
    git("commit", "-qam", "Tidy util.py")
    agent.command_run("git commit -qam 'Tidy util.py'", 0)
    agent.heartbeat(progress="checking the PR gate")
    opened = agent.check(command="gh pr create --title 'Tidy util.py' --body cleanup")
    print(f"open PR: {opened['decision']} ({opened['reason']})", flush=True)
    agent.heartbeat(progress="waiting to merge")
    merged = agent.check(command="gh pr merge --squash cleanup", wait=3600)
    print(f"merge: {merged['decision']} ({merged['reason']})", flush=True)

print("repo-maintainer: its task is done; exiting", flush=True)  # exit 0: done (on-failure: not restarted)
