"""What each of ``tether doctor``'s checks answers: one line, a status and the fix. Its own module, stdlib only,
so the parts that make checks (the integrations', the phone channels') share it without importing the doctor."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail", "unknown"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<7} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix and self.status != "ok" else text

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
