"""Agent CLI integrations: Claude Code and Codex CLI hooks, OpenClaw's plugin, the git pre-push hook, token
usage from transcripts. ``tether integrate`` installs them; ``tether.api.hooks`` answers them in the daemon;
``agents`` holds what the supervisor calls for the ``claude-code`` and ``codex`` agent kinds.

What each CLI can and cannot be made to do is written in ``docs/INTEGRATIONS.md``.
"""

#: The daemon's hook endpoints (``tether.api.hooks``).
CLAUDE_PATH = "/v1/hooks/claude-code"
CODEX_PATH = "/v1/hooks/codex"
OPENCLAW_PATH = "/v1/hooks/openclaw"
