"""The canary's stand-in model API: a small HTTP server on 127.0.0.1 that an agent CLI is pointed at for one
canary run (``integrations.canary``), so the canary spends nothing and reaches no real model.

It speaks just enough of two APIs to make a headless CLI call one tool:

- Anthropic Messages (``POST /v1/messages``, JSON or SSE), for Claude Code via ``ANTHROPIC_BASE_URL``;
- OpenAI Responses (``POST /v1/responses``, SSE), for Codex via a model provider given with ``-c``.

Its whole script: the first request that offers tools is answered with one call of the CLI's shell tool
running ``command`` (the canary); the request after it carries the CLI's result for that call, which is
kept (``results``) and answered with a final text. Requests without tools (titles, quota checks) get a
short text. The shell tool is found by name in the request's own tool list (``Bash``; ``exec_command``
with ``cmd``, or ``shell`` with an argv), so a CLI that renames its tools is told apart from one that
ignores its hooks: ``problem`` then says what it offered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Bodies larger than this are refused: a CLI's request with its system prompt is a few hundred KiB.
MAX_BODY = 16 * 1024 * 1024
CALL_ID = "tether_canary_0"
FINAL = "The canary is done."
USAGE_ANTHROPIC = {
    "input_tokens": 1,
    "output_tokens": 1,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
USAGE_OPENAI = {
    "input_tokens": 1,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 1,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 2,
}


class StandIn:
    """One canary's model API. ``api`` is ``anthropic`` or ``openai``; use as a context manager."""

    def __init__(self, api: str, command: str) -> None:
        if api not in ("anthropic", "openai"):
            raise ValueError(f"unknown model API {api!r}")
        self.api = api
        self.command = command
        self.asked = threading.Event()  # the tool call was sent
        self.answered = threading.Event()  # the CLI came back with its result for it
        self.results: list[str] = []  # what the CLI said the call gave (its hook's reason, or the output)
        self.requests = 0
        self.problem: str | None = None  # why the script could not be played (no shell tool offered)
        self.client = ""  # the CLI's User-Agent (its name and version)
        self.tool = ""  # the tool the call went through (Bash, exec_command, shell, or exec: Codex's code mode)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="tether-canary-model", daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give the CLI (``ANTHROPIC_BASE_URL``, or a provider's ``base_url``)."""
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.api == "openai" else "")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the script ---------------------------------------------------------------------------------------
    def anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        msg: dict[str, Any] = {
            "id": f"msg_tether_canary_{self.requests}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or "canary",
            "stop_sequence": None,
            "usage": dict(USAGE_ANTHROPIC),
        }
        if not tools:
            return {**msg, "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"}
        results = _anthropic_results(body.get("messages"))
        if results is not None:
            self._answered(results)
        elif not self.asked.is_set():
            if "Bash" not in tools:
                return self._refuse(msg, tools)
            self.asked.set()
            self.tool = "Bash"
            call = {
                "type": "tool_use",
                "id": "toolu_" + CALL_ID,
                "name": "Bash",
                "input": {"command": self.command, "description": "tether canary"},
            }
            return {**msg, "content": [call], "stop_reason": "tool_use"}
        return {**msg, "content": [{"type": "text", "text": FINAL}], "stop_reason": "end_turn"}

    def openai(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            self.requests += 1
            n = self.requests
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        results = [
            _text(i.get("output"))
            for i in items
            if i.get("call_id") == CALL_ID and i.get("type") in ("function_call_output", "custom_tool_call_output")
        ]
        final = [
            {
                "type": "message",
                "id": f"msg_tether_canary_{n}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": FINAL, "annotations": []}],
            }
        ]
        if results:
            self._answered(results)
            return final
        tools = _openai_tools([*(body.get("tools") or []), *(i for i in items if i.get("type") == "additional_tools")])
        if self.asked.is_set() or not tools:
            return final
        call: dict[str, Any] = {"id": f"fc_tether_canary_{n}", "call_id": CALL_ID}
        if tools.get("exec_command") == "function":
            call.update(type="function_call", name="exec_command", arguments=json.dumps({"cmd": self.command}))
        elif tools.get("shell") == "function":
            call.update(
                type="function_call", name="shell", arguments=json.dumps({"command": ["bash", "-lc", self.command]})
            )
        elif tools.get("exec") == "custom":  # "code mode": a JavaScript cell that calls the nested shell tool
            script = f"const r = await tools.exec_command({{cmd: {json.dumps(self.command)}}});\ntext(r);\n"
            call.update(type="custom_tool_call", name="exec", input=script)
        else:
            self.problem = f"the CLI offered no shell tool (tools: {', '.join(sorted(tools))[:200]})"
            self.answered.set()
            return final
        self.asked.set()
        self.tool = str(call["name"])
        return [call]

    def _answered(self, results: list[str]) -> None:
        with self._lock:
            if not self.answered.is_set():
                self.results = results
        self.answered.set()

    def _refuse(self, msg: dict[str, Any], tools: list[Any]) -> dict[str, Any]:
        self.problem = f"the CLI offered no shell tool (tools: {', '.join(map(str, tools))[:200]})"
        self.answered.set()
        return {**msg, "content": [{"type": "text", "text": FINAL}], "stop_reason": "end_turn"}


def _anthropic_results(messages: Any) -> list[str] | None:
    """The text of every ``tool_result`` for the canary's call in the conversation, or None when none."""
    if not isinstance(messages, list):
        return None
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            continue
        for block in m["content"]:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_result"
                and block.get("tool_use_id") == "toolu_" + CALL_ID
            ):
                out.append(_text(block.get("content")))
    return out or None


def _openai_tools(tools: list[Any]) -> dict[str, str]:
    """Every tool a Responses request offers, name -> type, namespaces (``additional_tools``) included."""
    out: dict[str, str] = {}
    for t in tools:
        if not isinstance(t, dict):
            continue
        if isinstance(t.get("tools"), list):
            out.update(_openai_tools(t["tools"]))
        elif isinstance(t.get("name"), str):
            out[t["name"]] = str(t.get("type"))
    return out


def _text(output: Any) -> str:
    """A tool output as text: a string, or the text parts of a list of content items."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(str(p.get("text")) for p in output if isinstance(p, dict) and "text" in p)
    return json.dumps(output)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def anthropic_sse(message: dict[str, Any]) -> Iterator[bytes]:
    """``message`` as the Messages API streams it (its start reports one output token, as the real one does)."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield _event("message_start", {"message": start})
    for i, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            yield _event("content_block_start", {"index": i, "content_block": {**block, "input": {}}})
            yield _event(
                "content_block_delta",
                {"index": i, "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}},
            )
        else:
            yield _event("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
            yield _event("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": block["text"]}})
        yield _event("content_block_stop", {"index": i})
    yield _event(
        "message_delta",
        {
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield _event("message_stop", {})


def openai_sse(
    response_id: str, model: str, items: list[dict[str, Any]], usage: dict[str, Any] = USAGE_OPENAI
) -> Iterator[bytes]:
    """``items`` as the Responses API streams them, ``usage`` reported at the end."""
    base = {"id": response_id, "object": "response", "model": model, "status": "in_progress", "output": []}
    yield _event("response.created", {"response": base})
    for i, item in enumerate(items):
        yield _event("response.output_item.added", {"output_index": i, "item": item})
        yield _event("response.output_item.done", {"output_index": i, "item": item})
    yield _event("response.completed", {"response": {**base, "status": "completed", "output": items, "usage": usage}})


def send_json(h: BaseHTTPRequestHandler, obj: Any, code: int = 200, headers: dict[str, str] | None = None) -> None:
    """Answer ``h``'s request with ``obj`` as JSON (and ``headers``)."""
    data = json.dumps(obj).encode()
    h.send_response(code)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


def send_stream(h: BaseHTTPRequestHandler, chunks: Iterable[bytes], headers: dict[str, str] | None = None) -> None:
    """Answer ``h``'s request with ``chunks`` as an event stream (chunked, as the real APIs send it)."""
    h.send_response(200)
    h.send_header("content-type", "text/event-stream")
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("transfer-encoding", "chunked")
    h.end_headers()
    for chunk in chunks:
        h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()


class QuietHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler: HTTP/1.1 (the clients keep connections open), no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass


def _handler(model: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self._json({"error": {"message": "too large"}}, 413)
                return
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            model.client = model.client or str(self.headers.get("user-agent") or "")[:200]
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._json({"error": {"message": "not a JSON object"}}, 400)
                return
            if model.api == "anthropic" and path.endswith("/count_tokens"):
                self._json({"input_tokens": 1})
            elif model.api == "anthropic" and path.endswith("/messages"):
                message = model.anthropic(body)
                if body.get("stream"):
                    send_stream(self, anthropic_sse(message))
                else:
                    self._json(message)
            elif model.api == "openai" and path.endswith("/responses"):
                items = model.openai(body)
                send_stream(
                    self, openai_sse(f"resp_tether_canary_{model.requests}", str(body.get("model") or "canary"), items)
                )
            else:
                self._json({"error": {"type": "not_found_error", "message": f"no {path}"}}, 404)

        def do_GET(self) -> None:
            self._json({"data": [], "models": [], "object": "list", "has_more": False})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def _json(self, obj: Any, code: int = 200) -> None:
            send_json(self, obj, code, {"request-id": "req_tether_canary"})

    return Handler
