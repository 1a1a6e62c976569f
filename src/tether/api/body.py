"""Request bodies: one strict JSON parser for every route, with the limits every request is held to.

The size limit is FastAPI's own (``max_body_size``: refused by ``Content-Length`` and by counting the chunks
as they come, 413). The parser is pydantic's (Rust): strict UTF-8, no lone surrogates, no ``NaN`` or
``Infinity``; on top of it, nesting at most ``MAX_DEPTH`` deep and every number finite. Routes with a body
model get it through ``StrictRoute``; the handlers that read their body themselves call ``parse``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import pydantic_core
from fastapi import HTTPException, Request, Response
from fastapi import Path as FastAPIPath
from fastapi.routing import APIRoute

MAX_BODY = 1024 * 1024  # every route but these two:
MAX_REPORT = 64 * 1024  # what an agent reports is a few fields, kept forever in the events table
MAX_HOOK = 8 * 1024 * 1024  # a hook event carries the tool's input: a file an agent writes, whole
MAX_DEPTH = 64


class BadBody(ValueError):
    """The body is not JSON tether accepts; ``str(err)`` says why in one line."""


def parse(raw: bytes) -> Any:
    """The JSON document in ``raw`` (an empty body is ``{}``), or ``BadBody``."""
    if not raw.strip():
        return {}
    try:
        doc = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as err:
        why = str(err)
        if "recursion limit" in why:
            raise BadBody(f"the body is nested more than {MAX_DEPTH} levels deep") from None
        raise BadBody(f"the body is not valid JSON (UTF-8, no lone surrogates, no NaN): {why}") from None
    check(doc)
    return doc


def check(doc: Any) -> None:
    """``BadBody`` unless ``doc`` nests at most ``MAX_DEPTH`` deep and its numbers are finite
    (``1e400`` parses as infinity)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise BadBody(f"the body is nested more than {MAX_DEPTH} levels deep")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items if isinstance(v, dict | list | float))
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadBody("the body holds a number too large to be finite")


class StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse(await self.body())
            except BadBody as err:
                raise HTTPException(400, str(err)) from None
        return self._json


class StrictRoute(APIRoute):
    """A route whose JSON body (FastAPI's body models) goes through ``parse``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await original(StrictRequest(request.scope, request.receive))

        return handler

#: The store's row ids are 64-bit integers: anything larger is a 422, not an overflow deep in SQLite.
MAX_ID = 2**63 - 1
Id = Annotated[int, FastAPIPath(ge=0, le=MAX_ID)]
