"""The web dashboard (server-rendered pages, live by server-sent events): the dashboard work owns this module."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
