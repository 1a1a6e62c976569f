"""Every route of ``tether.web``, in one router ``tether.api.app`` mounts: the dashboard's pages (server-rendered,
live by server-sent events), the JSON endpoints it and the CLI need beyond the agent API, and the signed links.
``web`` depends on ``api`` (its access checks, its error map), never the other way round."""

from __future__ import annotations

from fastapi import APIRouter

from tether.web.api import router as api_router
from tether.web.links import router as links_router
from tether.web.pages import router as pages_router

router = APIRouter()
router.include_router(api_router)
router.include_router(pages_router)
router.include_router(links_router)  # signed one-time links from notifications (issue 21)
