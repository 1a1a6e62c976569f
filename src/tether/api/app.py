"""The daemon's HTTP API (FastAPI): ``/v1/`` paths, bearer tokens with roles, OpenAPI at /openapi.json.

Views hold no logic: they check the caller's role and call the daemon's core (``Control``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from tether import __version__
from tether import tasks as tasks_
from tether.api import body as bodies
from tether.api import errors
from tether.api.access import Caller, principal, require
from tether.api.admin import router as admin_router
from tether.api.approvals import router as approvals_router
from tether.api.body import MAX_ID, Id
from tether.api.hooks import router as hooks_router
from tether.api.metrics import router as metrics_router
from tether.api.parts import Control
from tether.api.reports import Report
from tether.auth import Principal
from tether.errors import RunbookError
from tether.status_report import report


class Beat(BaseModel):
    task: str | None = Field(default=None, max_length=1000)
    progress: str | None = Field(default=None, max_length=1000)


OK = b'{"status":"ok"}'


class NewTask(BaseModel):
    text: str = Field(min_length=1, max_length=10000)


class TaskEnd(BaseModel):
    ok: bool = True
    note: str | None = Field(default=None, max_length=10000)


class KillBody(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


def create_app(control: Control) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    # /v1/docs loads Swagger UI from the package (/v1/docs/static), not a CDN: a host that reaches nothing
    # outside (or a browser that may not) still gets working docs. No ReDoc: its bundle fetches a logo online.
    app = FastAPIOffline(title="tether", version=__version__, docs_url="/v1/docs", redoc_url=None,
                         static_url="/v1/docs/static", openapi_url="/openapi.json", max_body_size=bodies.MAX_BODY)
    app.router.route_class = bodies.StrictRoute
    app.state.control = control
    errors.install(app)
    store = control.store

    def known(agent: str) -> None:
        if agent not in control.agent_names():
            raise HTTPException(404, f"no agent named {agent!r}")

    def own(who: Principal, agent: str) -> None:
        """Agent tokens act only for their own agent; admins for every agent."""
        known(agent)
        require(who, "act", agent)

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/agents")
    def agents(who: Caller) -> dict[str, Any]:
        require(who, "read")
        return {"agents": report(store)}

    @app.get("/v1/agents/{agent}")
    def agent_status(agent: str, who: Caller) -> dict[str, Any]:
        known(agent)
        require(who, "read", agent)
        return report(store, agent)[0]

    @app.post("/v1/agents/{agent}/heartbeat", response_class=Response,
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": Beat.model_json_schema()}}}},
              responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
    async def heartbeat(agent: str, request: Request) -> Response:
        """The hot path, on the event loop with no thread: the token and the body are read here rather than
        through FastAPI's dependency and body machinery (a third of the cost of a beat), and the beat
        joins the next write; the answer waits for it."""
        require(principal(request), "act", agent)  # an unknown agent: beat_soon's 404
        raw = await request.body()
        try:
            body = Beat.model_validate(bodies.parse(raw))
        except bodies.BadBody as err:
            raise HTTPException(400, str(err)) from None
        except ValidationError as err:
            raise RequestValidationError([  # as FastAPI words it, without echoing the (maybe binary) input
                {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]} for e in err.errors()]) from None
        await control.beat_soon(agent, body.task, body.progress)
        return Response(OK, media_type="application/json")

    @app.post("/v1/agents/{agent}/report", max_body_size=bodies.MAX_REPORT)
    def agent_report(agent: str, body: Report, who: Caller) -> dict[str, Any]:
        """Something only the agent knows: files changed, a command run, tests, usage, an error, a retry, a
        log line (``tether.api.reports``: the fields of each kind, and their bounds)."""
        own(who, agent)
        event_id = store.emit(body.kind, agent, **body.data.model_dump(exclude_unset=True))
        control.beat(agent, None, None)
        return {"status": "ok", "event": event_id}

    @app.get("/v1/agents/{agent}/tasks")
    def tasks(agent: str, who: Caller,
              limit: Annotated[int, Query(ge=1, le=1000, description="the newest this many, in id order")] = 200,
              ) -> dict[str, Any]:
        """The agent's newest ``limit`` tasks; ``more`` says whether older ones exist (an agent can add tasks
        without end: a listing is bounded, like every other)."""
        known(agent)
        require(who, "read", agent)
        got = store.tasks(agent, limit=limit + 1)
        return {"tasks": [t._asdict() for t in got[-limit:]], "more": len(got) > limit}

    @app.post("/v1/agents/{agent}/tasks", status_code=201)
    def add_task(agent: str, body: NewTask, who: Caller) -> dict[str, Any]:
        own(who, agent)
        task_id = store.emit("task.added", agent, text=body.text)
        return {"id": task_id, "text": body.text, "state": "queued"}

    @app.post("/v1/agents/{agent}/tasks/next")
    def next_task(agent: str, who: Caller) -> dict[str, Any]:
        own(who, agent)
        task = tasks_.claim(control.loaded, store, agent)
        if task is not None:
            control.touched(agent)
        return {"task": task._asdict() if task else None}

    @app.post("/v1/agents/{agent}/tasks/{task_id}/start")
    def start_task(agent: str, task_id: Id, body: NewTask, who: Caller) -> dict[str, Any]:
        """Start an ad-hoc task (``with agent.task("...")``) recorded under this id."""
        own(who, agent)
        started = tasks_.start(control.loaded, store, agent, task_id, body.text)
        control.touched(agent)
        return started._asdict() if started is not None else {"id": task_id, "state": "started"}

    @app.post("/v1/agents/{agent}/tasks/{task_id}/end")
    def end_task(agent: str, task_id: Id, body: TaskEnd, who: Caller) -> dict[str, Any]:
        own(who, agent)
        state = tasks_.end(control.loaded, store, agent, task_id, body.ok, body.note)
        control.touched(agent)
        return {"id": task_id, "state": state}

    @app.get("/v1/events")
    def events(who: Caller, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0, agent: str | None = None,
               limit: Annotated[int, Query(ge=1, le=MAX_ID, description="at most 1000 are returned")] = 200,
               ) -> dict[str, Any]:
        if who.role == "agent" and agent is None:
            raise HTTPException(403, "an agent token reads only its own events (?agent=NAME)")
        require(who, "read", agent)
        got = store.events(agent, after=after, limit=min(limit, 1000))
        return {"events": [e._asdict() for e in got]}

    @app.get("/v1/incidents")
    def incidents(who: Caller, state: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000, description="the newest this many, in id order")] = 200,
                  ) -> dict[str, Any]:
        """The newest ``limit`` incidents; ``more`` says whether older ones exist (bounded like every listing:
        an agent can open incidents without end, by its violations, stale beats and crashes)."""
        require(who, "read")
        got = store.incidents(state, limit=limit + 1)
        return {"incidents": got[-limit:], "more": len(got) > limit}

    for verb in ("start", "stop", "restart", "resume"):
        app.post(f"/v1/agents/{{agent}}/{verb}", name=verb)(_control_view(control, verb, known))

    @app.post("/v1/agents/{agent}/kill")
    def kill(agent: str, body: KillBody, who: Caller) -> dict[str, Any]:
        require(who, "control")
        routed = control.place.route(control, "kill", agent, body.reason)  # another node's agent: its answer
        if routed is not None:
            return routed
        known(agent)
        got = control.kill(agent, body.reason, by=f"{who.role} token {who.token_id}") or {}
        from tether.killswitch import problem as kill_problem  # lazy: +15 ms to importing api.hooks (the hook path)

        problem = kill_problem(agent, {"survivors": [], "signalled": [], "marked": "file", **got, "told": True})
        if problem is not None:  # say exactly what happened: never "killed" when something lived on
            raise HTTPException(500 if got.get("survivors") else 409, {"problem": problem, "kill": got})
        return {"status": "killed", "agent": agent, "kill": got}

    @app.post("/v1/reload")
    def reload(who: Caller) -> dict[str, Any]:
        require(who, "control")
        try:
            changed = control.reload()
        except RunbookError as err:  # every problem, one per line, as `tether check` prints them
            raise HTTPException(422, {"runbook": err.problems}) from None
        return {"status": "reloaded", "restarted": changed}

    @app.post("/v1/shutdown")
    def shutdown(who: Caller) -> dict[str, str]:
        require(who, "control")
        control.shutdown()
        return {"status": "stopping"}

    # The other modules' routes come after this module's: a request is matched against the routes in
    # order, and the hot ones (heartbeat, health) should not first be tried against every dashboard page.
    # Imported here, not at the top: each of them imports this module (the dashboard through web.api).
    app.include_router(approvals_router)  # the approvals issue owns that module
    app.include_router(hooks_router)  # the integrations issue owns that module
    app.include_router(metrics_router)  # the monitoring issue owns that module
    app.include_router(admin_router)  # tokens, backup, prune, the audit log, the runbook summary
    from tether.web.router import router as dashboard_router  # web imports api: mounted here, the one place they meet

    app.include_router(dashboard_router)
    return app


def _control_view(control: Control, verb: str, known: Any) -> Any:
    def view(agent: str, who: Caller) -> dict[str, Any]:
        require(who, "control")
        routed = control.place.route(control, verb, agent)  # another node's agent: its answer
        if routed is not None:
            return routed
        known(agent)
        getattr(control, verb)(agent)
        return {"status": "ok", "agent": agent, "action": verb}

    view.__name__ = f"{verb}_agent"
    return view
