"""Whether inline JavaScript only computes and prints: ``node -e 'console.log(1)'``, ``node -p '2 ** 10'``.

The small analogue of ``pyinert`` for ``node -e``/``-p``, read from tree-sitter-javascript's syntax tree and never
run. Only an allow-list of node types passes: literals (numbers, strings, templates, arrays, objects of plain
``key: value`` pairs, ``true``/``false``/``null``/``undefined``/``NaN``/``Infinity``), operators on them, and calls
of ``console.log`` (and its siblings), ``Math`` and ``JSON``, each member named in full (``console.log(...)``,
never ``console["log"]``, ``Math.constructor`` or ``JSON.parse(s, reviver)`` with a function). No variables,
functions, ``require``, ``process``, ``globalThis``, ``new`` or assignment: anything else is ``unknown``, as before.

The parser sees ASCII only (as ``shell.parse``: every byte >= 0x80 becomes 0x01, which is a plain character
inside a string and a syntax error outside one).
"""

from __future__ import annotations

import threading
from typing import Final

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

#: The members each global may be used through (called or read).
MEMBERS: Final[dict[str, frozenset[str]]] = {
    "console": frozenset({"log", "info", "warn", "error", "debug", "dir", "table"}),
    "JSON": frozenset({"stringify", "parse"}),
    "Math": frozenset(
        {
            "abs",
            "acos",
            "acosh",
            "asin",
            "asinh",
            "atan",
            "atan2",
            "atanh",
            "cbrt",
            "ceil",
            "clz32",
            "cos",
            "cosh",
            "exp",
            "expm1",
            "floor",
            "fround",
            "hypot",
            "imul",
            "log",
            "log10",
            "log1p",
            "log2",
            "max",
            "min",
            "pow",
            "random",
            "round",
            "sign",
            "sin",
            "sinh",
            "sqrt",
            "tan",
            "tanh",
            "trunc",
            "E",
            "LN10",
            "LN2",
            "LOG10E",
            "LOG2E",
            "PI",
            "SQRT1_2",
            "SQRT2",
        }
    ),
}
#: Bare names that are values, not variables.
CONSTANTS: Final = frozenset({"undefined", "NaN", "Infinity"})
#: Node types that only hold or combine values (their children are checked too).
ALLOWED: Final = frozenset(
    {
        "program",
        "expression_statement",
        "empty_statement",
        "comment",
        "parenthesized_expression",
        "sequence_expression",
        "binary_expression",
        "unary_expression",
        "ternary_expression",
        "number",
        "string",
        "string_fragment",
        "escape_sequence",
        "template_string",
        "template_substitution",
        "true",
        "false",
        "null",
        "undefined",
        "array",
        "object",
        "pair",
        "spread_element",
        "arguments",
    }
)
#: Unary operators that do not change anything (``delete`` does).
UNARY: Final = frozenset({"-", "+", "!", "~", "typeof", "void"})
MAX_CODE: Final = 64 * 1024
MAX_NODES: Final = 20_000

_LANGUAGE: Final = Language(tree_sitter_javascript.language())
_LOCAL = threading.local()  # a Parser per thread: one is not safe to share
_ASCII_ONLY: Final = bytes(range(128)) + b"\x01" * 128


def _parse(src: bytes) -> Node:
    parser: Parser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = Parser(_LANGUAGE)
    return parser.parse(src.translate(_ASCII_ONLY)).root_node


def _text(node: Node) -> str:
    return (node.text or b"").decode("ascii", "replace")


def _member(node: Node) -> str | None:
    """Why a ``member_expression`` is not ``console.log``, ``Math.max``, ``JSON.stringify``..., or None."""
    obj, prop = node.child_by_field_name("object"), node.child_by_field_name("property")
    if obj is None or prop is None or obj.type != "identifier" or prop.type != "property_identifier":
        return f"it reaches {_text(node)[:40]}"
    allowed = MEMBERS.get(_text(obj))
    if allowed is None or _text(prop) not in allowed or node.child_count != 3:  # 3: object . property (no ?.)
        return f"it reaches {_text(node)[:40]}"
    return None


def not_inert(code: str) -> str | None:
    """Why ``code`` may do more than compute and print (one short reason), or None when it only computes."""
    if len(code) > MAX_CODE:
        return "the code is too long to read"
    root = _parse(code.encode("utf-8", "replace"))
    if root.has_error:
        return "the code does not parse"
    stack = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return "the code is too long to read"
        if not node.is_named:
            continue
        kind = node.type
        if kind == "call_expression":
            fn = node.child_by_field_name("function")
            if fn is None or fn.type != "member_expression":
                return f"it calls {_text(fn)[:40] if fn is not None else '?'}"
            why = _member(fn)
            if why:
                return why
            args = node.child_by_field_name("arguments")
            if args is None or args.type != "arguments":  # a tagged template: console.log`...`
                return "it calls a function with a template"
            stack.append(args)
            continue
        if kind == "member_expression":
            why = _member(node)
            if why:
                return why
            continue
        if kind == "identifier":
            if _text(node) not in CONSTANTS:
                return f"it uses {_text(node)[:40]}"
            continue
        if kind == "pair":
            key = node.child_by_field_name("key")
            if key is None or key.type not in ("property_identifier", "string", "number"):
                return "it computes an object key"
            value = node.child_by_field_name("value")
            if value is not None:
                stack.append(value)
            continue
        if kind == "unary_expression":
            op = node.child_by_field_name("operator")
            if op is None or op.type not in UNARY:
                return f"it uses {op.type if op is not None else '?'}"
        elif kind not in ALLOWED:
            return f"it uses {kind.replace('_', ' ')}"
        stack.extend(node.children)
    return None
