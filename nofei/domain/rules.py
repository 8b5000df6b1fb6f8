"""The city's rule settings, typed and frozen: built once when the app starts, read by every use case.

Each field is either the official text's figure or a LOCAL choice, and says which; the defaults live here
and nowhere else. ``Rules.from_settings`` reads them from the app's settings (``NOFEI_*`` variables).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from nofei.domain.calendar import WorkCalendar, parse_dates

SETTING_KEYS: tuple[str, ...] = ("DISCREPANCY_RATIO", "DISCREPANCY_MIN_KG", "RECEIPT_WORKING_DAYS",
                                 "STORAGE_LIMIT_DAYS", "HOLIDAYS", "EXTRA_WORKDAYS")
"""The settings a :class:`Rules` is read from (each also as a ``NOFEI_`` environment variable)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What a use case may be configured with; hashable, so it can key a cache."""

    discrepancy_ratio: Decimal = Decimal("0.05")
    """A receipt differs when it is off by more than this share ... (LOCAL: 第十八条 names no figure)."""
    discrepancy_min_kg: int = 100
    """... and by more than this many kg (LOCAL, 0.1 t; ledger-workbook.md "Counterparts")."""
    receipt_working_days: int = 5
    """The receiver confirms within 5 working days (危险废物转移管理办法, regulations.md §2.3)."""
    storage_limit_days: int = 365
    """Hazardous waste stored longer than a year (固体废物污染环境防治法 第八十一条)."""
    holidays: frozenset[date] | None = None
    """Dates that are holidays whatever chinesecalendar says (None: the package's calendar alone)."""
    extra_workdays: frozenset[date] | None = None
    """Weekend days worked in exchange (调休) on top of the package's."""
    calendar: WorkCalendar = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "calendar", WorkCalendar.from_settings(self.holidays, self.extra_workdays))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rules:
        """Read the rules from an app's settings; a key that is absent or None keeps the default.

        Raises ``ValueError`` naming the setting when a value cannot be read."""
        d = cls()

        def get(key: str, default: Any, conv: Any) -> Any:
            raw = settings.get(key)
            if raw is None:
                return default
            try:
                return conv(raw)
            except (TypeError, ValueError, InvalidOperation) as e:
                raise ValueError(f"setting {key}: cannot read {raw!r}") from e

        def dates(raw: Any) -> frozenset[date]:
            return parse_dates(raw)

        return cls(
            discrepancy_ratio=get("DISCREPANCY_RATIO", d.discrepancy_ratio, lambda v: Decimal(str(v))),
            discrepancy_min_kg=get("DISCREPANCY_MIN_KG", d.discrepancy_min_kg, int),
            receipt_working_days=get("RECEIPT_WORKING_DAYS", d.receipt_working_days, int),
            storage_limit_days=get("STORAGE_LIMIT_DAYS", d.storage_limit_days, int),
            holidays=get("HOLIDAYS", None, dates),
            extra_workdays=get("EXTRA_WORKDAYS", None, dates),
        )

    @property
    def discrepancy(self) -> tuple[Decimal, int]:
        """(ratio, minimum kg) of the discrepancy rule, as ``nofei.domain.manifests`` takes them."""
        return self.discrepancy_ratio, self.discrepancy_min_kg
