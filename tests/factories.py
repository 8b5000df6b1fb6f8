"""Plain factory functions for tests: units, credit codes."""

from __future__ import annotations

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
