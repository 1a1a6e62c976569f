"""A scripted stand-in for the Anthropic Messages API (``POST /v1/messages``), for driving the real Claude
Code CLI headless. The script is a list of steps; the step answered is the number of assistant turns already
in the request's conversation, so a resumed session (``claude -p --resume``) picks up where it stopped.

A step is ``{"tool": NAME, "input": {...}}`` (a ``tool_use`` block) or ``{"text": "..."}`` (the end of the
turn). Requests without ``tools`` (titles, quota checks) get a short text. Streaming (SSE) or not, as asked.
Every response carries ``usage`` with cache tokens and a ``request-id`` header, like the real API.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.scripted import ScriptedServer
from tether.integrations.canary_model import QuietHandler, anthropic_sse, send_json, send_stream

USAGE = {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000}


class FakeAnthropic(ScriptedServer):
    def __init__(self, steps: list[dict[str, Any]], model: str = "claude-sonnet-4-5-20250929") -> None:
        super().__init__(steps, model)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    # -- answering --------------------------------------------------------------------------------------
    def main_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("tools")]

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        n = self.record(body)
        msg_id = f"msg_fake{n:04d}"
        if not body.get("tools"):
            content: list[dict[str, Any]] = [{"type": "text", "text": "ok"}]
            stop = "end_turn"
        else:
            step_no = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
            step = self.steps[step_no] if step_no < len(self.steps) else {"text": "All done."}
            if "tool" in step:
                content = [
                    {"type": "tool_use", "id": f"toolu_fake{step_no:02d}", "name": step["tool"], "input": step["input"]}
                ]
                stop = "tool_use"
            else:
                content = [{"type": "text", "text": step["text"]}]
                stop = "end_turn"
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": dict(USAGE),
        }


def _handler(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            if path.endswith("/count_tokens"):
                self._json({"input_tokens": 100})
                return
            if not path.endswith("/v1/messages"):
                self._json({"type": "error", "error": {"type": "not_found_error", "message": path}}, 404)
                return
            body = json.loads(raw or b"{}")
            message = fake.answer(body)
            request_id = "req_" + message["id"].removeprefix("msg_")
            if body.get("stream"):
                send_stream(self, anthropic_sse(message), {"request-id": request_id})
            else:
                self._json(message, headers={"request-id": request_id})

        def do_GET(self) -> None:
            self._json({"data": [], "has_more": False})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def _json(self, obj: Any, code: int = 200, headers: dict[str, str] | None = None) -> None:
            send_json(self, obj, code, headers)

    return Handler
