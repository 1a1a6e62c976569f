"""Whether Python code only computes: the everyday ``python3 -c 'print(1)'`` and ``python3 script.py`` of a
script that imports nothing but pure-computation modules, opens no file, and reaches no builtin that runs,
imports or introspects code. Anything else is ``unknown`` (held), as before: this only frees code whose
whole effect is its output.

Read from the syntax tree (``ast``), never run. Conservative by construction: an allow-list of modules and
a deny-list of names and dunder attributes, so a new trick is held, not let through.
"""

from __future__ import annotations

import ast
from typing import Final

#: Modules whose whole surface computes in memory (no files, processes, network, import machinery).
PURE_MODULES: Final = frozenset({
    "math", "cmath", "json", "re", "string", "textwrap", "itertools", "functools", "collections", "datetime",
    "time", "decimal", "fractions", "statistics", "random", "typing", "dataclasses", "enum", "operator", "copy",
    "pprint", "unicodedata", "heapq", "bisect", "uuid", "hashlib", "difflib", "calendar", "abc", "numbers",
    "zlib", "binascii", "struct", "base64", "secrets", "__future__", "colorsys", "graphlib", "array",
})
#: Builtins that open files, run or import code, or reach objects' internals.
UNSAFE_NAMES: Final = frozenset({
    "open", "eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "breakpoint", "help", "memoryview", "__builtins__", "__loader__", "__spec__", "exit", "quit",
})
MAX_CODE: Final = 256 * 1024
MAX_NODES: Final = 20_000


def not_inert(code: str) -> str | None:
    """Why ``code`` may do more than compute and print (one short reason), or None when it only computes."""
    if len(code) > MAX_CODE:
        return "the code is too long to read"
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "the code does not parse"
    for n, node in enumerate(ast.walk(tree)):
        if n > MAX_NODES:
            return "the code is too long to read"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level:
                return "it imports project code"
            for name in names:
                if name.split(".")[0] not in PURE_MODULES:
                    return f"it imports {name}"
        elif isinstance(node, ast.Name) and node.id in UNSAFE_NAMES:
            return f"it uses {node.id}"
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            return f"it reaches {node.attr}"
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return f"it reaches private {node.attr}"
    return None
