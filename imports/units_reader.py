"""The units registry workbook (``nofei units import FILE.xlsx``): first sheet with columns credit_code,
name, district, park, roles (comma-separated), optionally unit_type (industrial, social_source,
medical_institution, licensed) and small_clinic (是/1/true: a clinic with ≤ 19 beds) → unit objects. Read in the parse worker (issue 17)."""

from __future__ import annotations

from typing import Any

from imports.safety import ReadLimits
from imports.table_reader import first_sheet_rows

MAX_ROWS = 100_000


def read_units_workbook(data: bytes, limits: ReadLimits | None = None) -> list[dict[str, Any]]:
    _sheet, rows = first_sheet_rows(data, limits or ReadLimits(), max_rows=MAX_ROWS, kinds=("xlsx", "xls", "ods"),
                                    skip_empty_area=True)
    if not rows:
        return []
    head = [str(h).strip() for h in rows[0]]
    out = []
    for r in rows[1:]:
        d = {h: (str(v).strip() if v is not None else "") for h, v in zip(head, r, strict=False)}
        if not any(d.values()):
            continue
        item: dict[str, Any] = {
            "credit_code": d.get("credit_code", ""), "name": d.get("name", ""), "district": d.get("district", ""),
            "park": d.get("park") or None,
            "roles": [x.strip() for x in d.get("roles", "").split(",") if x.strip()], "permits": []}
        if d.get("unit_type"):
            item["unit_type"] = d["unit_type"]
        if d.get("small_clinic"):
            item["small_clinic"] = d["small_clinic"].lower() in ("1", "true", "yes", "是", "y")
        out.append(item)
    return out
