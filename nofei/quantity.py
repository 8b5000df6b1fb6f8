"""Exact quantities. Stored as integer kilograms; shown as tonnes with three decimals.

Ledger quantities are tonnes "to the kilogram" (ledger-workbook.md, File), so an integer count of
kilograms is exact and sums never drift as binary floats do.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

KG_PER_T = 1000
_MILLI = Decimal("0.001")


def tonnes_to_kg(t: Decimal | int | str) -> int:
    """Tonnes (exact decimal or text) to integer kilograms, rounding half-even below 1 kg."""
    try:
        d = Decimal(t) if not isinstance(t, Decimal) else t
    except InvalidOperation as e:
        raise ValueError(f"not a number: {t!r}") from e
    if not d.is_finite():
        raise ValueError(f"not a finite number: {t!r}")
    return int((d * KG_PER_T).to_integral_value(rounding=ROUND_HALF_EVEN))


def kg_to_tonnes(kg: int) -> Decimal:
    """Integer kilograms to tonnes as an exact Decimal with three places."""
    return (Decimal(kg) / KG_PER_T).quantize(_MILLI)


def kg_to_t_float(kg: int) -> float:
    """For JSON output only: tonnes with 3 decimals. Never sum these."""
    return float(kg_to_tonnes(kg))
