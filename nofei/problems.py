"""Problems found in client input, pinned to where they are (sheet, row, cell or field)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a value came from in an uploaded workbook: sheet name, 1-based row, column letter."""

    sheet: str
    row: int | None = None
    column: str | None = None
    header: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) in what a client sent.

    ``code`` is stable and machine-readable; ``message`` is Chinese, ``message_en`` English.
    ``field`` names a JSON field for API bodies; ``sheet``/``row``/``column`` a workbook cell.
    """

    code: str
    message: str
    message_en: str = ""
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    header: str | None = None
    value: Any = None
    field: str | None = None
    severity: Severity = "error"

    @classmethod
    def at(
        cls,
        ref: SourceRef | None,
        code: str,
        message: str,
        message_en: str = "",
        *,
        value: Any = None,
        severity: Severity = "error",
        field: str | None = None,
    ) -> Problem:
        """A problem at a workbook location (``ref`` may be None for whole-file problems)."""
        return cls(
            code=code,
            message=message,
            message_en=message_en,
            sheet=ref.sheet if ref else None,
            row=ref.row if ref else None,
            column=ref.column if ref else None,
            header=ref.header if ref else None,
            value=value,
            field=field,
            severity=severity,
        )

    def as_warning(self) -> Problem:
        return Problem(**{**asdict(self), "severity": "warning"})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        v = d["value"]
        if v is not None and not isinstance(v, str | int | float | bool):
            d["value"] = str(v)
        return d


def errors_only(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def warnings_only(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "warning"]
