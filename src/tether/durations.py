"""Durations as the runbook spells them: ``250ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``, or seconds."""

from __future__ import annotations

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)"
_WHOLE = r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+"


def parse_duration(value: object) -> float:
    """Seconds as a float. Raises ``ValueError`` with the expected form on anything else."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(value)
        return float(value)
    if isinstance(value, str):
        import re  # here, not at the top: `tether status` formats durations but never parses them

        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return float(text)
        if re.fullmatch(_WHOLE, text):
            return sum(float(n) * _UNITS[u] for n, u in re.findall(_PART, text))
    raise ValueError(value)


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 0.25 -> ``250ms``, 90 -> ``1m30s``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    out = []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"
