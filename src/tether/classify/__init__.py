"""The action classifier: shell commands, tool calls, paths and URLs -> action classes and resources.

Pure and fast: stdlib plus tree-sitter-bash, no state kept between calls but a count of its own
errors. The policy module combines the result with the agent's scope and the runbook's verdicts.
"""

from tether.classify.api import classify_path, classify_shell, classify_tool, classify_url, errors_total, input_hash
from tether.classify.model import Action, Classification, Context, Resource

__all__ = [
    "Action",
    "Classification",
    "Context",
    "Resource",
    "classify_path",
    "classify_shell",
    "classify_tool",
    "classify_url",
    "errors_total",
    "input_hash",
]
