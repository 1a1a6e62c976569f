"""Demo agent: tries to delete data; the runbook blocks it, and it says it is blocked (not stuck)."""

import time

from tether import Agent

agent = Agent.from_env()
agent.heartbeat(task="cleanup", progress="deleting ./data")
got = agent.check(command="rm -rf ./data")
print(f"rm -rf ./data: {got['decision']} ({got['reason']})", flush=True)
if got["decision"] != "allow":
    # blocked until its next run: a human changes the runbook (or the data) and restarts it
    agent.report("error", kind="blocked", detail=f"rm -rf ./data: {got['reason']}; it waits for a human")
while True:
    agent.heartbeat()  # alive; its progress stays where the block left it
    time.sleep(1)
