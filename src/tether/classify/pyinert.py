"""Whether Python code only computes: the everyday ``python3 -c 'print(1)'`` and ``python3 script.py`` of a
script that imports nothing but pure-computation modules, opens no file, and reaches no builtin that runs,
imports or introspects code. Anything else is ``unknown`` (held), as before: this only frees code whose
whole effect is its output.

Read from the syntax tree (``ast``), never run. Conservative by construction: an allow-list of modules and
a deny-list of names and dunder attributes, so a new trick is held, not let through. Three ways out of the
allow-list are closed too: a module another module imported is reached through it (``typing.sys``,
``uuid.os``, ``dataclasses.builtins``: an attribute of an imported module that is itself a module must be one
of the allowed ones, looked up in the real module's namespace, without running anything); ``sys`` is
imported only to read what the interpreter is (``SYS_READS``: no ``sys.modules``, ``sys.path``, ``sys.exit``
or setters); and a module of the working folder (or the script's, or ``PYTHONPATH``'s) named like a standard
one would be imported instead of it (``json.py`` beside ``python3 -c 'import json'``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import sys
import types
from typing import Final

#: Modules whose whole surface computes in memory (no files, processes, network, import machinery).
PURE_MODULES: Final = frozenset(
    {
        "math",
        "cmath",
        "json",
        "re",
        "string",
        "textwrap",
        "itertools",
        "functools",
        "collections",
        "datetime",
        "time",
        "decimal",
        "fractions",
        "statistics",
        "random",
        "typing",
        "dataclasses",
        "enum",
        "operator",
        "copy",
        "pprint",
        "unicodedata",
        "heapq",
        "bisect",
        "uuid",
        "hashlib",
        "difflib",
        "calendar",
        "abc",
        "numbers",
        "zlib",
        "binascii",
        "struct",
        "base64",
        "secrets",
        "__future__",
        "colorsys",
        "graphlib",
        "array",
    }
)
#: What code may read of ``sys``: what the interpreter is. Not ``modules``, ``path``, ``meta_path`` (every module,
#: the import machinery), ``exit``, ``stdin``/``stdout`` (their classes open files), nor any setter.
SYS_READS: Final = frozenset(
    {
        "version",
        "version_info",
        "hexversion",
        "platform",
        "implementation",
        "maxsize",
        "maxunicode",
        "byteorder",
        "float_info",
        "int_info",
        "hash_info",
        "thread_info",
        "api_version",
        "copyright",
        "executable",
        "prefix",
        "base_prefix",
        "exec_prefix",
        "base_exec_prefix",
        "platlibdir",
        "argv",
        "orig_argv",
        "flags",
        "float_repr_style",
        "getrecursionlimit",
        "getdefaultencoding",
        "getfilesystemencoding",
        "getsizeof",
        "stdlib_module_names",
        "builtin_module_names",
        "abiflags",
    }
)
#: Module functions that act on the command line (``base64.main()`` reads the file named in ``sys.argv``).
MODULE_MAINS: Final = frozenset({"main", "test"})
#: Builtins that open files, run or import code, or reach objects' internals.
UNSAFE_NAMES: Final = frozenset(
    {
        "open",
        "eval",
        "exec",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "help",
        "memoryview",
        "__builtins__",
        "__loader__",
        "__spec__",
        "exit",
        "quit",
    }
)
MAX_CODE: Final = 256 * 1024
MAX_NODES: Final = 20_000
_MISSING: Final = object()


def _pure(module: types.ModuleType) -> bool:
    name = getattr(module, "__name__", "")
    return isinstance(name, str) and name.split(".")[0] in PURE_MODULES


def _load(name: str) -> types.ModuleType | None:
    """The allowed module ``name`` itself (imported into tether's process: each is pure), or None."""
    if name.split(".")[0] not in PURE_MODULES:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # a name that is no module: the code would fail
        return None


def _reach(module: types.ModuleType, attrs: list[str]) -> str | None:
    """Why reading ``attrs`` one after the other from ``module`` may leave the allowed modules, or None."""
    obj: object = module
    for attr in attrs:
        if not isinstance(obj, types.ModuleType):
            return None  # past the modules: a value's own attributes (dunders and privates are checked apart)
        name = obj.__name__
        if obj is sys:
            return None if attr in SYS_READS else f"it reaches sys.{attr}"
        if attr in MODULE_MAINS:
            return f"it runs {name}.{attr}, which acts on the command line"
        obj = vars(obj).get(attr, _MISSING)  # the namespace itself: no module __getattr__ runs
        if obj is _MISSING:
            sub = _load(f"{name}.{attr}")
            if sub is None:
                return f"it reaches {name}.{attr}, which the classifier cannot see"
            obj = sub
        if isinstance(obj, types.ModuleType) and obj is not sys and not _pure(obj):
            return f"it reaches module {obj.__name__} through {name}"
    return None


def _chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"]); None when the chain does not start at a plain name."""
    attrs: list[str] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        attrs.append(cur.attr)
        cur = cur.value
    return (cur.id, attrs[::-1]) if isinstance(cur, ast.Name) else None


def _shadowed(name: str, folder: str) -> bool:
    """Whether ``folder`` holds a module or package ``name`` that Python would import instead of the standard one."""
    base = os.path.join(folder, name)
    if os.path.isdir(base):
        return True
    return any(os.path.lexists(base + suffix) for suffix in importlib.machinery.all_suffixes())


def not_inert(code: str, folder: str | None = None, path_set: bool = False) -> str | None:
    """Why ``code`` may do more than compute and print (one short reason), or None when it only computes.

    ``folder``: the folder Python puts first on its import path (the working folder for ``-c``, the script's
    own folder for a script; None: not checked); ``path_set``: ``PYTHONPATH`` or ``PYTHONHOME`` is set, so any
    module not built into the interpreter may come from elsewhere."""
    if len(code) > MAX_CODE:
        return "the code is too long to read"
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "the code does not parse"
    bound: dict[str, types.ModuleType] = {}  # names the code binds to modules
    imported: set[str] = set()
    attributes: list[ast.Attribute] = []
    names: list[ast.Name] = []
    for n, node in enumerate(ast.walk(tree)):
        if n > MAX_NODES:
            return "the code is too long to read"
        if isinstance(node, ast.Import):
            for a in node.names:
                why = _import(a.name, a.asname, bound)
                if why:
                    return why
                imported.add(a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                return "it imports project code"
            name = node.module or ""
            mod = sys if name == "sys" else _load(name)
            if mod is None:
                return f"it imports {name}"
            imported.add(name.split(".")[0])
            for a in node.names:
                if a.name == "*":
                    return f"it imports every name of {name}"
                why = _reach(mod, [a.name])
                if why:
                    return why
                value = vars(mod).get(a.name)
                if isinstance(value, types.ModuleType):
                    bound[a.asname or a.name] = value
        elif isinstance(node, ast.Name):
            if node.id in UNSAFE_NAMES:
                return f"it uses {node.id}"
            names.append(node)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr.endswith("__"):
                return f"it reaches {node.attr}"
            if node.attr.startswith("_"):
                return f"it reaches private {node.attr}"
            attributes.append(node)
    why = _uses(bound, attributes, names)
    if why is None and (folder is not None or path_set):
        for name in sorted(imported - set(sys.builtin_module_names) - {"__future__"}):
            if path_set:
                return f"it imports {name} with PYTHONPATH or PYTHONHOME set"
            if folder is not None and _shadowed(name, folder):
                return f"it imports {name}, which {folder} has a module of its own for"
    return why


def _import(name: str, asname: str | None, bound: dict[str, types.ModuleType]) -> str | None:
    if name == "sys":
        bound[asname or "sys"] = sys
        return None
    mod = _load(name)
    if mod is None:
        return f"it imports {name}"
    if asname:
        bound[asname] = mod
    else:
        top = _load(name.split(".")[0])
        if top is None:
            return f"it imports {name}"
        bound[name.split(".")[0]] = top
    return None


def _uses(bound: dict[str, types.ModuleType], attributes: list[ast.Attribute], names: list[ast.Name]) -> str | None:
    """Every use of a name bound to a module reads an allowed attribute of it, and nothing else."""
    if not bound:
        return None
    roots: set[int] = set()
    for node in attributes:
        chain = _chain(node)
        if chain is None or chain[0] not in bound:
            continue
        if not isinstance(node.ctx, ast.Load):
            return f"it changes {'.'.join((chain[0], *chain[1]))}"
        if node.value.__class__ is ast.Name:
            roots.add(id(node.value))
        why = _reach(bound[chain[0]], chain[1])
        if why:
            return why
    for name in names:
        if name.id in bound and id(name) not in roots:
            return f"it uses module {name.id} as a value"
    return None
