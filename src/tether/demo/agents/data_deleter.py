"""Demo agent: tries to delete data; the runbook blocks it and it reports so."""

import time

from tether import Agent

agent = Agent.from_env()
got = agent.check(command="rm -rf ./data")
print(f"rm -rf ./data: {got['decision']} ({got['reason']})", flush=True)
if got["decision"] != "allow":
    agent.report("error", kind="blocked", detail=got["reason"])
while True:
    agent.heartbeat(task="cleanup", progress="blocked: waiting for a human to change the runbook")
    time.sleep(1)
