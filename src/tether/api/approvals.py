"""The approval endpoints (``/v1/approvals``, ``/v1/agents/{agent}/check|ask``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
