"""A scripted stand-in for the OpenAI Responses API (``POST /v1/responses``, streamed), for driving the real
Codex CLI headless (``codex exec --json``) through a custom model provider with ``wire_api = "responses"``.

The step answered is the number of assistant outputs (function calls, messages) already in the request's
``input``. A step is ``{"tool": "exec_command", "input": {"cmd": ...}}`` (a ``function_call``) or
``{"text": "..."}`` (a final message). Every response reports ``usage``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.scripted import ScriptedServer

USAGE = {"input_tokens": 500, "input_tokens_details": {"cached_tokens": 300}, "output_tokens": 40,
         "output_tokens_details": {"reasoning_tokens": 10}, "total_tokens": 540}


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
        return [str(i.get("output")) for i in self.requests[-1].get("input", [])
                if isinstance(i, dict) and i.get("type") == "function_call_output"]

    def answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        n = self.record(body)
        items = [i for i in body.get("input", []) if isinstance(i, dict)]
        step_no = sum(1 for i in items if i.get("type") == "function_call"
                      or (i.get("type") == "message" and i.get("role") == "assistant"))
        step = self.steps[step_no] if step_no < len(self.steps) else {"text": "All done."}
        if "tool" in step:
            return [{"type": "function_call", "id": f"fc_fake{n:04d}", "call_id": f"call_fake{step_no:02d}",
                     "name": step["tool"], "arguments": json.dumps(step["input"])}]
        return [{"type": "message", "id": f"msg_fake{n:04d}", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": step["text"], "annotations": []}]}]


def sse(response_id: str, model: str, items: list[dict[str, Any]]) -> Iterator[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    base = {"id": response_id, "object": "response", "model": model, "status": "in_progress", "output": []}
    yield event("response.created", {"response": base})
    for i, item in enumerate(items):
        yield event("response.output_item.added", {"output_index": i, "item": item})
        yield event("response.output_item.done", {"output_index": i, "item": item})
    yield event("response.completed", {"response": {**base, "status": "completed", "output": items,
                                                    "usage": USAGE}})


def _handler(fake: FakeResponses) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

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
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for chunk in sse(response_id, body.get("model") or fake.model, items):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def do_GET(self) -> None:
            fake.paths.append(self.path)
            self._json({"models": [], "data": [], "object": "list"})

        def _json(self, obj: Any, code: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
