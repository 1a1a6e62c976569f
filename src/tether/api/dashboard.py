"""The web dashboard (server-rendered pages, live by server-sent events) and the JSON endpoints it and the
CLI need beyond ``tether.api.app``: the dashboard work owns this module (the code is in ``tether.web``)."""

from __future__ import annotations

from fastapi import APIRouter

from tether.web.api import router as api_router
from tether.web.links import router as links_router
from tether.web.pages import router as pages_router

router = APIRouter()
router.include_router(api_router)
router.include_router(pages_router)
router.include_router(links_router)  # signed one-time links from notifications (issue 21)
