"""Demo agent: works through items and crashes now and then; tether restarts it with backoff."""

import random
import signal
import sys
import time

from tether import Agent


def stopped(signum: int, _frame: object) -> None:  # `tether kill flaky-worker` (or stop) reaches it here
    print(f"flaky-worker: got {signal.Signals(signum).name}, stopping", file=sys.stderr, flush=True)
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, stopped)
agent = Agent.from_env()
for i in range(random.randint(3, 8)):
    agent.heartbeat(task="process queue", progress=f"item {i}")
    time.sleep(1)
print("flaky-worker: crashing on purpose", file=sys.stderr, flush=True)
sys.exit(1)
