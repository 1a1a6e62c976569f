"""Demo agent: keeps beating but its progress never moves: tether marks it stuck."""

import time

from tether import Agent

agent = Agent.from_env()
while True:
    agent.heartbeat(task="reindex", progress="step 3/10")
    time.sleep(1)
