"""The supervisor's functions for claude-code/codex agents (task queue, exits) and transcript usage, without
any CLI: a real store in a temp dir, real transcript lines."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.tether_host import Host
from tether.integrations import agents, transcript
from tether.paths import StateDir
from tether.runbook import load
from tether.store import open_store


def test_task_queue_run_done_and_failed(tmp_path: Path) -> None:
    h = Host(tmp_path, {"cc": {"kind": "claude-code", "command": [], "prompt": "x", "cwd": str(tmp_path)}})
    loaded = load(h.runbook)
    spec = loaded.runbook.agents["cc"].model_copy(update={"prompt": None})  # the runbook model wants a prompt
    state = StateDir(h.state)
    store = open_store(loaded.store_url)
    try:
        assert agents.launch(spec, state, store, "http://127.0.0.1:1", claude="claude") is None  # empty queue
        one = store.emit("task.added", "cc", text="fix the flaky test")
        two = store.emit("task.added", "cc", text="bump the version")
        run = agents.launch(spec, state, store, "http://127.0.0.1:1", claude="claude")
        assert run is not None and run.task_id == one and run.argv[:3] == ["claude", "-p", "fix the flaky test"]
        settings = json.loads(run.argv[run.argv.index("--settings") + 1])
        assert settings["hooks"]["PreToolUse"][0]["hooks"][0]["url"] == "http://127.0.0.1:1/v1/hooks/claude-code/cc"
        assert agents.exited(spec, state, store, 0) == "done"
        assert store.task(one).state == "done"  # type: ignore[union-attr]
        run = agents.launch(spec, state, store, "http://127.0.0.1:1", claude="claude")
        assert run is not None and run.task_id == two
        assert agents.exited(spec, state, store, 1) == "failed"
        assert store.task(two).state == "failed"  # type: ignore[union-attr]
    finally:
        store.close()


def test_claude_usage_counts_each_message_once_across_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 200}

    def line(msg: str, req: str, model: str = "claude-sonnet-4-5-20250929") -> str:
        return json.dumps({"type": "assistant", "requestId": req,
                           "message": {"id": msg, "model": model, "usage": usage}}) + "\n"

    # one message, two content blocks (two lines), then a second message; the last line is not finished yet
    path.write_text(line("m1", "r1") + line("m1", "r1") + line("m2", "r2") + line("m3", "r3")[:-10])
    cur = transcript.Cursor()
    got = transcript.read_usage("claude-code", path, cur)
    [u] = got.values()
    assert (u.calls, u.input_tokens, u.cache_read_input_tokens) == (2, 20, 400)
    # sonnet: 20*3 + 10*15 + 200*3.75 + 400*0.3 per million
    assert u.cost_usd == round((20 * 3 + 10 * 15 + 200 * 3.75 + 400 * 0.3) / 1e6, 8)
    with open(path, "a") as f:
        f.write(line("m3", "r3")[-10:] + line("m2", "r2") + line("m4", "r4", "some-new-model"))
    got = transcript.read_usage("claude-code", path, transcript.Cursor.of(json.loads(json.dumps(cur.__dict__))))
    assert {m: u.calls for m, u in got.items()} == {"claude-sonnet-4-5-20250929": 1, "some-new-model": 1}
    assert got["some-new-model"].cost_usd is None and got["some-new-model"].tokens == 315


def test_codex_usage_from_token_count_events(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    tc = {"type": "event_msg", "payload": {"type": "token_count", "info": {"last_token_usage": {
        "input_tokens": 500, "cached_input_tokens": 300, "output_tokens": 40, "reasoning_output_tokens": 10}}}}
    path.write_text("\n".join(json.dumps(x) for x in (
        {"type": "turn_context", "payload": {"model": "gpt-5-codex"}}, tc, tc)) + "\n")
    [u] = transcript.read_usage("codex", path, transcript.Cursor()).values()
    assert (u.model, u.calls, u.input_tokens, u.cache_read_input_tokens, u.output_tokens) == \
        ("gpt-5-codex", 2, 400, 600, 80)
