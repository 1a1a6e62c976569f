"""A stand-in for the OpenAI Chat Completions API (``POST /v1/chat/completions``, streamed), the way OpenClaw's
``openai-completions`` provider calls it, for driving the real OpenClaw gateway headless.

It follows instructions instead of a fixed script, so one stand-in serves every turn of a shared gateway: the
newest user message holding ``RUN: <command>`` (OpenClaw appends its own context message after the user's,
so every user message is searched) is answered with one ``exec`` tool call running that command; once the
request holds a ``tool`` message after that user message, with a final text quoting the tool's result.
Every answer reports ``usage``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.scripted import ScriptedServer
from tether.integrations.canary_model import QuietHandler, send_json, send_stream

RUN = re.compile(r"RUN: (.+)")
USAGE = {"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class FakeChat(ScriptedServer):
    PREFIX = "/v1"

    def __init__(self, model: str = "stand-in") -> None:
        super().__init__([], model)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def tool_results(self) -> list[str]:
        """Every tool result the gateway sent back, in order of arrival."""
        out: list[str] = []
        for body in self.requests:
            for m in body.get("messages", []):
                if isinstance(m, dict) and m.get("role") == "tool" and _text(m.get("content")) not in out:
                    out.append(_text(m.get("content")))
        return out

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"tool": command}`` or ``{"text": ...}`` for this request."""
        n = self.record(body)
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        asked = [(i, RUN.search(_text(m.get("content")))) for i, m in enumerate(messages) if m.get("role") == "user"]
        asked = [(i, found) for i, found in asked if found]
        if not asked:
            return {"text": "Nothing to do."}
        at, found = asked[-1]
        results = [_text(m.get("content")) for m in messages[at:] if m.get("role") == "tool"]
        if results:
            return {"text": f"done: {results[-1][:500]}"}
        return {"tool": found.group(1).strip(), "id": f"call_fake{n:04d}"}


def sse(model: str, step: dict[str, Any]) -> Iterator[bytes]:
    base = {
        "id": f"chatcmpl-fake{time.monotonic_ns()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: bool = False) -> bytes:
        body: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            body["usage"] = USAGE
        return f"data: {json.dumps(body)}\n\n".encode()

    if "tool" in step:
        call = {
            "index": 0,
            "id": step["id"],
            "type": "function",
            "function": {"name": "exec", "arguments": json.dumps({"command": step["tool"]})},
        }
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        yield chunk({}, "tool_calls", usage=True)
    else:
        yield chunk({"role": "assistant", "content": step["text"]})
        yield chunk({}, "stop", usage=True)
    yield b"data: [DONE]\n\n"


def _handler(fake: FakeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.split("?")[0].endswith("/chat/completions"):
                self._json({"error": {"message": f"no {self.path}"}}, 404)
                return
            body = json.loads(raw or b"{}")
            step = fake.answer(body)
            send_stream(self, sse(body.get("model") or fake.model, step))

        def do_GET(self) -> None:
            self._json({"object": "list", "data": [{"id": fake.model, "object": "model"}]})

        def _json(self, obj: Any, code: int = 200) -> None:
            send_json(self, obj, code)

    return Handler
