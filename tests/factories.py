"""Plain factory functions for tests: units, credit codes, and the one workbook builder (openpyxl)."""

from __future__ import annotations

import io
import itertools
from typing import Any

from nofei.domain.units import make_credit_code

_serial = itertools.count(1)


def credit_code(district: str = "630104", n: int | None = None) -> str:
    """A valid GB 32100-2015 credit code, unique per call unless ``n`` is given."""
    n = next(_serial) if n is None else n
    return make_credit_code(district, f"MA{n:07d}")


def unit_payload(district: str = "630104", *, roles: list[str] | None = None, code: str | None = None,
                 permits: list[dict[str, Any]] | None = None, name: str | None = None,
                 park: str | None = None) -> dict[str, Any]:
    cc = code or credit_code(district)
    return {"credit_code": cc, "name": name or f"测试单位{cc[-6:]}", "district": district, "park": park,
            "roles": roles or ["producer"], "permits": permits or []}


def register(client, admin_headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    r = client.post("/api/v1/units", json=unit_payload(**kw), headers=admin_headers)
    assert r.status_code == 201, r.json
    return r.json


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    """An xlsx with one sheet per item, in order, each row appended as given (``None``: an empty cell).
    Every test workbook is built here (ledgers, manifest and unit imports), so they differ only in content."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def sheet(rows: list[list[Any]], name: str = "Sheet") -> bytes:
    """An xlsx of a single sheet (the manifest and unit imports read the first sheet)."""
    return workbook({name: rows})
