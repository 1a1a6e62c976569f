"""What an agent may report (``POST /v1/agents/{agent}/report``), one typed model per kind.

The figures that feed budgets, signals and ``/metrics`` are checked here: token counts are whole numbers
from 0 to ``MAX_TOKENS``, a cost is finite and from 0 to ``MAX_COST``, a model name or an error kind is a
short identifier. Other fields an agent adds are kept as sent (the body is at most ``body.MAX_REPORT``).
A bad field is a 422 whose ``loc`` names it, e.g. ``["body", "usage", "data", "cost_usd"]``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TOKENS = 10**12  # per report: far beyond any one model call
MAX_COST = 10_000.0  # USD per report
MAX_COUNT = 10**9

#: A model id or an error kind: ``claude-sonnet-4-5``, ``openai/gpt-5``, ``llama3:8b``, ``rate_limit``.
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Text = Annotated[str, Field(max_length=10_000)]


class Data(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class Usage(Data):
    model: Name = "unknown"
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    cache_write_tokens: Tokens = 0
    cost_usd: float = Field(default=0.0, ge=0.0, le=MAX_COST)


class Error(Data):
    kind: Name | None = None
    error_type: Name | None = None
    detail: Text | None = None


class FilesChanged(Data):
    paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(default=[], max_length=10_000)
    count: Count | None = None


class CommandRun(Data):
    command: Annotated[str, Field(max_length=32_768)] | None = None
    exit_code: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | None = None


class TestsReported(Data):
    passed: Count | None = None
    failed: Count | None = None


class _Report(BaseModel):
    pass


class UsageReport(_Report):
    kind: Literal["usage"]
    data: Usage = Usage()


class ErrorReport(_Report):
    kind: Literal["error"]
    data: Error = Error()


class FilesReport(_Report):
    kind: Literal["files.changed"]
    data: FilesChanged = FilesChanged()


class CommandReport(_Report):
    kind: Literal["command.run"]
    data: CommandRun = CommandRun()


class TestsReport(_Report):
    kind: Literal["tests.reported"]
    data: TestsReported = TestsReported()


class FreeReport(_Report):
    """A retry or a log line: fields of the agent's choosing."""

    kind: Literal["retry", "log"]
    data: Data = Data()


Report = Annotated[UsageReport | ErrorReport | FilesReport | CommandReport | TestsReport | FreeReport,
                   Field(discriminator="kind")]
