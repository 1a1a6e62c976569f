"""Agent hook endpoints (Claude Code's http hooks, Codex's command-hook relay): the integrations work
owns this module."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
