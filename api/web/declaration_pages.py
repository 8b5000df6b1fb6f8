"""Declaration pages (issue 14): the enterprise's tiers, calendar and downloads of its HJ 1259 declarations,
and the regulator's grid of who is late, per district. Same use cases as ``/api/v1/.../declarations``."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from api.web import actor, bp, require_roles, uow
from ledgers import declarations as svc
from nofei.catalogue import CITY
from nofei.errors import NotFound

GRID_COLUMNS = [(f"{{y}}-{m:02d}", f"{m}月") for m in range(1, 13)] + [(f"{{y}}-Q{q}", f"Q{q}") for q in range(1, 5)] + \
    [("{y}", "年度")]


def _year() -> int:
    today = svc.today_cst()
    try:
        y = int(request.args.get("year", today.year))
    except ValueError:
        return today.year
    return y if 2000 <= y <= 2100 else today.year


def _suggested_periods(year: int, tier: str) -> list[tuple[str, str]]:
    """The periods worth a one-click download: the last finished month or quarter, this one, last year's annual."""
    today = svc.today_cst()
    out: list[tuple[str, str]] = []
    if tier == "key":
        m = today.month - 1 or 12
        y = today.year if today.month > 1 else today.year - 1
        out.append((f"{y}-{m:02d}", f"{y}年{m}月"))
    if tier in ("key", "simplified"):
        q = (today.month - 1) // 3
        y = today.year if q else today.year - 1
        q = q or 4
        out.append((f"{y}-Q{q}", f"{y}年第{q}季度"))
        cq = (today.month - 1) // 3 + 1
        out.append((f"{today.year}-Q{cq}", f"{today.year}年第{cq}季度（本季度，截至目前）"))
    out.append((str(today.year - 1), f"{today.year - 1}年度"))
    return out


@bp.route("/declarations")
@require_roles("enterprise", "admin", "regulator")
def declarations() -> Any:
    """The signed-in enterprise's units: tier with reason, the next declarations, the late ones, downloads."""
    from ledgers import registry

    year = _year()
    a = actor()
    one = request.args.get("unit") or None
    with uow() as u:
        if one:
            units = [registry.get_unit(uow=u, actor=a, credit_code=one)]
        else:
            units, _ = registry.list_units(uow=u, actor=a, per_page=50)
        cards: list[dict[str, Any]] = []
        for unit in units:
            try:
                cal = svc.unit_calendar(uow=u, actor=a, credit_code=unit["credit_code"], year=year)
            except NotFound as e:
                if e.code != "no_hazardous_waste":
                    raise
                cards.append({"unit": unit, "cal": None, "periods": []})
                continue
            cards.append({"unit": unit, "cal": cal, "periods": _suggested_periods(year, cal["tier"])})
    return render_template("declarations.html", cards=cards, year=year)


@bp.route("/declarations/download")
@require_roles("enterprise", "admin", "regulator")
def declaration_download() -> Any:
    """The declaration of a unit and period as the workbook laid out like the official table."""
    from api.resources.declarations import declaration, xlsx_response

    code = request.args.get("unit", "")
    d = declaration(uow_factory=uow, actor=actor(), code=code, period_text=request.args.get("period", ""))
    return xlsx_response(d)


@bp.route("/declarations/status")
@require_roles("regulator", "admin")
def declaration_status() -> Any:
    """Per district, each hazardous-waste unit's declarations of the year: who is late, without asking."""
    from api.web.views import regions_for

    year = _year()
    a = actor()
    district = request.args.get("district") or (a.district if a.role == "regulator" else CITY)
    with uow() as u:
        st = svc.declaration_status(uow=u, actor=a, year=year, district=district)
    cols = [(k.format(y=year), label) for k, label in GRID_COLUMNS]
    for g in st["districts"]:
        for unit in g["units"]:
            unit["cells"] = {i["period"]: i for i in unit["items"]}
    return render_template("declaration_status.html", st=st, year=year, district=district, cols=cols,
                           regions=[r for r in regions_for() if r[0] == CITY or len(r[0]) == 6])


@bp.route("/declarations/plan")
@require_roles("enterprise", "admin", "regulator")
def declaration_plan() -> Any:
    """The 管理计划 of a year pre-filled from the year before (HJ 1259 附录 A), as a workbook."""
    from api.resources.declarations import management_plan, plan_response

    return plan_response(management_plan(uow_factory=uow, actor=actor(), code=request.args.get("unit", ""),
                                         year=_year()))
