"""A scripted stand-in for the OpenAI Responses API (``POST /v1/responses``, streamed), for driving the real
Codex CLI headless (``codex exec --json``) through a custom model provider with ``wire_api = "responses"``.

The step answered is the number of assistant outputs (function calls, messages) already in the request's
``input``. A step is ``{"tool": "exec_command", "input": {"cmd": ...}}`` (a ``function_call``) or
``{"text": "..."}`` (a final message). Every response reports ``usage``.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.scripted import ScriptedServer
from tether.integrations.canary_model import QuietHandler, openai_sse, send_json, send_stream

USAGE = {
    "input_tokens": 500,
    "input_tokens_details": {"cached_tokens": 300},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 10},
    "total_tokens": 540,
}


class FakeResponses(ScriptedServer):
    PREFIX = "/v1"

    def __init__(self, steps: list[dict[str, Any]], model: str = "gpt-5-codex") -> None:
        super().__init__(steps, model)
        self.paths: list[str] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def tool_outputs(self) -> list[str]:
        """The outputs of function calls the CLI sent back, in order (the last request holds them all)."""
        if not self.requests:
            return []
        return [
            str(i.get("output"))
            for i in self.requests[-1].get("input", [])
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]

    def answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        n = self.record(body)
        items = [i for i in body.get("input", []) if isinstance(i, dict)]
        step_no = sum(
            1
            for i in items
            if i.get("type") == "function_call" or (i.get("type") == "message" and i.get("role") == "assistant")
        )
        step = self.steps[step_no] if step_no < len(self.steps) else {"text": "All done."}
        if "tool" in step:
            return [
                {
                    "type": "function_call",
                    "id": f"fc_fake{n:04d}",
                    "call_id": f"call_fake{step_no:02d}",
                    "name": step["tool"],
                    "arguments": json.dumps(step["input"]),
                }
            ]
        return [
            {
                "type": "message",
                "id": f"msg_fake{n:04d}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": step["text"], "annotations": []}],
            }
        ]


def _handler(fake: FakeResponses) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.paths.append(self.path)
            if not self.path.split("?")[0].endswith("/responses"):
                self._json({"error": {"message": f"no {self.path}"}}, 404)
                return
            body = json.loads(raw or b"{}")
            items = fake.answer(body)
            response_id = f"resp_fake{len(fake.requests):04d}"
            send_stream(self, openai_sse(response_id, body.get("model") or fake.model, items, USAGE))

        def do_GET(self) -> None:
            fake.paths.append(self.path)
            self._json({"models": [], "data": [], "object": "list"})

        def _json(self, obj: Any, code: int = 200) -> None:
            send_json(self, obj, code)

    return Handler
