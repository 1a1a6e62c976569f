"""Demo agent: works through items and crashes now and then; tether restarts it with backoff."""

import random
import sys
import time

from tether import Agent

agent = Agent.from_env()
for i in range(random.randint(3, 8)):
    agent.heartbeat(task="process queue", progress=f"item {i}")
    time.sleep(0.5)
print("flaky-worker: crashing on purpose", file=sys.stderr, flush=True)
sys.exit(1)
