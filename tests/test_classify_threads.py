"""The classifier is called from many threads at once in the daemon (the API's thread pool): results
must be the same as on one thread, and nothing may crash."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tether.classify import Context, classify_shell

COMMANDS = [
    "ls -la", "rm -rf ./data", "git push --force origin main", "curl -X POST https://x.example.com -d @f",
    "bash -c 'echo $(whoami) | sh'", "psql -c 'DROP TABLE users'", "X=rm; $X -rf /", "pip install requests",
] * 200


def test_concurrent_classification_matches_sequential() -> None:
    ctx = Context(cwd="/tmp/work")
    expected = [classify_shell(c, ctx).classes for c in COMMANDS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda c: classify_shell(c, ctx).classes, COMMANDS))
    assert got == expected
