"""Whether a perl one-liner only substitutes text: the everyday ``perl -pi -e 's/foo/bar/g' FILES`` is an edit,
like ``sed -i``; any other perl inline code stays ``unknown`` (held), as before.

Read from the code's text, never run, and conservative: the code must be nothing but ``s///`` (flags ``gimsx``,
never ``e``) and ``tr///``/``y///`` with plain delimiters, and no part may interpolate more than a capture group.
Interpolation is where perl runs code inside a substitution (``@{[ system ... ]}``, ``${\\ ...}``, ``$h{`...`}``,
a ``(?{ ... })`` block), so any ``@``, any ``$`` other than ``$1``/``$&`` or an end anchor, and any ``(?{`` hold it.
"""

from __future__ import annotations

import re
from typing import Final

_D: Final = r"[/|#!,:]"
_PART: Final = r"((?:\\.|(?!\{d})[^\\])*)"
_SUB: Final = re.compile(
    rf"\s*(?:s({_D}){_PART.format(d=1)}\1{_PART.format(d=1)}\1([gimsx]*)"
    rf"|(?:tr|y)({_D}){_PART.format(d=5)}\5{_PART.format(d=5)}\5[cdsr]*)\s*(?:;|$)",
    re.DOTALL,
)
#: The ``$`` forms that interpolate nothing but a match: ``$1``, ``$&`` (not subscripted), an end anchor.
_SAFE_DOLLAR: Final = re.compile(r"\$\d+(?![\d\[{])|\$&(?![\[{\w])|\$(?=[)|]|$)")
_ESCAPE: Final = re.compile(r"\\.", re.DOTALL)
MAX_CODE: Final = 4096


def substitutes_only(code: str) -> bool:
    """Whether perl ``code`` (one ``-e`` argument) is only plain substitutions and transliterations."""
    if not code.strip() or len(code) > MAX_CODE or "@" in code or "(?{" in code or "(??{" in code:
        return False
    i = 0
    while i < len(code):
        m = _SUB.match(code, i)
        if m is None or m.end() == i:
            return False
        for part in (m.group(2), m.group(3)):
            if part is not None and "$" in _SAFE_DOLLAR.sub("", _ESCAPE.sub("", part)):
                return False
        i = m.end()
    return True


def edit_args(args: list[str]) -> tuple[list[str], list[str], bool] | None:
    """perl's argv as (inline code, files, in place), or None when it uses any switch beyond ``-p -n -l -w -a
    -0 -i[SUFFIX] -e -E`` (``-M`` loads a module, ``-x``/``-S`` find a script, ``-pie`` takes ``e`` as the
    backup suffix and runs the next argument as a script file)."""
    code: list[str] = []
    files: list[str] = []
    inplace = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            files += args[i:]
            break
        if a[:1] != "-" or a == "-":
            files.append(a)
            continue
        j = 1
        while j < len(a):
            c = a[j]
            j += 1
            if c in "pnwa":
                continue
            if c == "l" or c == "0":
                digits = "0123456789abcdefABCDEF" if c == "0" and a[j : j + 1] == "x" else "01234567"
                j += c == "0" and a[j : j + 1] == "x"
                while j < len(a) and a[j] in digits:
                    j += 1
            elif c == "i":
                inplace, j = True, len(a)
            elif c in "eE":
                if j < len(a):
                    code.append(a[j:])
                elif i < len(args):
                    code.append(args[i])
                    i += 1
                else:
                    return None
                j = len(a)
            else:
                return None
    return (code, files, inplace) if code else None
