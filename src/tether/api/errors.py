"""The one map from tether's errors to HTTP statuses, registered once on the app as exception handlers.

Views raise the core's typed errors as they come (``NotFound``, ``StoreError``...); the answer is
``{"detail": "<the error's one line>"}`` with the status below, and the error's kind in the ``X-Tether-Error``
header (``ERROR_HEADER``): a client tells tether's own "no such agent" from a route this daemon lacks (an
older daemon) by it, not by the wording. A failing store is a 503, which the SDK
retries; a conflict with the state of things is a 409, which it does not.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.api.body import MAX_BODY, MAX_HOOK, MAX_REPORT
from tether.errors import NotFound, RunbookError, StoreError, TetherError

#: Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[TetherError], int], ...] = (
    (StoreError, 503),  # the store cannot be read or written (PostgreSQL restarting, a full disk)
    (NotFound, 404),
    (RunbookError, 422),
    (TetherError, 409),  # UsageError and the rest: the request conflicts with the state of things
)


#: The header every answer made from a tether error carries: ``not-found``, ``store``, ``runbook``, ``refused``.
ERROR_HEADER = "X-Tether-Error"
KIND: tuple[tuple[type[TetherError], str], ...] = (
    (StoreError, "store"), (NotFound, "not-found"), (RunbookError, "runbook"), (TetherError, "refused"))


def status_of(err: TetherError) -> int:
    return next(code for cls, code in STATUS if isinstance(err, cls))


def install(app: FastAPI) -> None:
    @app.exception_handler(TetherError)
    async def tether_error(request: Request, err: TetherError) -> JSONResponse:
        kind = next(name for cls, name in KIND if isinstance(err, cls))
        return JSONResponse({"detail": str(err)}, status_code=status_of(err), headers={ERROR_HEADER: kind})

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code == 413 and err.detail == "Content Too Large":  # FastAPI's body limit, in our words
            err = HTTPException(413, f"the request body is too large: at most {MAX_BODY // 1024} KiB ("
                                     f"{MAX_REPORT // 1024} KiB for a report, {MAX_HOOK // 1024} KiB for a hook event)")
        return await http_exception_handler(request, err)
