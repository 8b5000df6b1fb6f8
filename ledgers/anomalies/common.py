"""What every finding looks like, and the look-ups every family of findings shares."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nofei.domain.regions import in_region
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage.uow import UnitOfWork

KINDS: tuple[str, ...] = ("receipt_overdue", "discrepancy", "storage_over_year", "missing_manifest_number",
                          "permit_not_covering", "over_capacity", "reconciliation", "unresolved_mass",
                          "missing_ledger")
TITLES: dict[str, str] = {
    "receipt_overdue": "超过5个工作日未确认接收", "discrepancy": "接收量与转移量差异",
    "storage_over_year": "危险废物贮存超过一年", "missing_manifest_number": "转移未填联单编号",
    "permit_not_covering": "接受单位许可证未覆盖该代码或方式", "over_capacity": "接受单位超过许可年经营规模",
    "reconciliation": "转出、联单、转入三方核对不一致", "unresolved_mass": "去向不明（X）",
    "missing_ledger": "月度台账逾期未报",
}
MAX_NAMED = 50  # manifests / ledger rows named per anomaly; ``*_count`` says how many there are
Finding = dict[str, Any]


class Units:
    """All registered units (id, credit code, district, park), loaded once per call."""

    def __init__(self, uow: UnitOfWork) -> None:
        rows = repo.units(uow.session)
        self.by_id = {r.id: r.credit_code for r in rows}
        self.region = {r.credit_code: (r.district, r.park) for r in rows}

    def in_region(self, cc: str | None, region: str) -> bool:
        if cc is None or cc not in self.region:
            return False
        return in_region(region, *self.region[cc])

    def code(self, unit_id: int | None) -> str | None:
        return self.by_id.get(unit_id) if unit_id is not None else None


def anomaly(kind: str, *, units: list[str], mass_kg: int, message: str, manifests: list[str] | None = None,
            ledger_rows: list[dict[str, Any]] | None = None, waste_code: str | None = None,
            detail: dict[str, Any] | None = None, manifest_count: int | None = None,
            ledger_row_count: int | None = None) -> Finding:
    """One finding as the API and the annual report carry it (names at most ``MAX_NAMED`` of each)."""
    ms = manifests or []
    lr = ledger_rows or []
    return {
        "kind": kind, "title": TITLES[kind], "message": message, "units": list(dict.fromkeys(u for u in units if u)),
        "manifests": ms[:MAX_NAMED], "manifest_count": manifest_count if manifest_count is not None else len(ms),
        "ledger_rows": lr[:MAX_NAMED], "ledger_row_count": ledger_row_count if ledger_row_count is not None else len(lr),
        "waste_code": waste_code, "mass_kg": int(mass_kg), "mass_t": kg_to_t_float(int(mass_kg)),
        "detail": detail or {},
    }


def ledger_rows(uow: UnitOfWork, ids: Iterable[int], units: Units) -> dict[int, dict[str, Any]]:
    """Where each transfer row is, as a finding names it: ledger version, unit, month, sheet, row number."""
    return {p.entry_id: {"entry_id": p.entry_id, "ledger_id": p.ledger_id, "version": p.version,
                         "unit": units.by_id.get(p.unit_id), "month": p.month,
                         "sheet": "转出" if p.direction == "out" else "转入", "row": p.row}
            for p in repo.transfer_places(uow.session, ids).values()}
