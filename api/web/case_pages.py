"""Casework pages (issue 13): the regulator's case list and case page, the enterprise's 我的待办, and the unit
directory and profile. Each calls the same use case as its API endpoint with the signed-in Actor."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask import Response, redirect, render_template, request, url_for

from api.web import actor, bp, require_roles, uow
from api.web.views import default_year, regions_for
from imports import XLSX_MIME
from ledgers import anomalies as anomalies_uc
from ledgers import cases as cases_uc
from nofei.catalogue import CITY
from nofei.domain import cases as C  # noqa: N812
from nofei.domain.calendar import to_cst
from nofei.domain.completeness import month_deadline, months_owed
from nofei.errors import InputRejected, NofeiError

PER_PAGE = 50


def _date_arg(name: str) -> date | None:
    v = request.args.get(name) or ""
    try:
        d = date.fromisoformat(v)
    except ValueError:
        return None
    return d if date(2000, 1, 1) <= d <= date(2100, 12, 31) else None


def _year_arg() -> int:
    """``?year=`` between 2000 and 2100, else the default year."""
    try:
        year = int(request.args.get("year") or default_year())
    except ValueError:
        year = default_year()
    return year if 2000 <= year <= 2100 else default_year()


def _page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page") or 1), 10**6))
    except ValueError:
        return 1


def _text_arg(name: str, limit: int) -> str | None:
    return (request.args.get(name) or "").strip()[:limit] or None


def _filters() -> dict[str, Any]:
    """The case filters the page shows: a regulator's own district by default, unknown values dropped."""
    year = _year_arg()
    a = actor()
    region = request.args.get("region") or (a.district if a.role == "regulator" and a.district else CITY)
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    return {"year": year, "region": region, "kind": kind if kind in anomalies_uc.KINDS else None,
            "status": status if status in C.STATUSES else None, "assignee": _text_arg("assignee", 200),
            "unit": _text_arg("unit", 40), "opened_from": _date_arg("opened_from"), "opened_to": _date_arg("opened_to")}


def _query(page: int = 1, per_page: int = PER_PAGE) -> tuple[cases_uc.CaseQuery, dict[str, Any]]:
    """The case filters from the query string; what cannot be used is dropped, never a 500."""
    f = _filters()
    year, region = f["year"], f["region"]
    q = cases_uc.CaseQuery(year=year, region=None if region == CITY else region, kind=f["kind"], status=f["status"],
                           assignee=f["assignee"], unit=f["unit"], opened_from=f["opened_from"],
                           opened_to=f["opened_to"], page=page, per_page=per_page)
    return q, f


@bp.app_context_processor
def _names() -> dict[str, Any]:
    from flask import current_app

    from nofei.domain.units import ROLE_ZH

    cat = current_app.extensions["nofei.catalogue"]
    return {"unit_role_zh": ROLE_ZH, "region_name_of": lambda code: f"{cat.region_name(code)}（{code}）"}


@bp.route("/cases")
@require_roles("regulator", "admin")
def cases() -> Any:
    """The district's cases: filters, counts per status, the list, export."""
    page = _page_arg()
    q, f = _query(page)
    with uow() as u:
        data = cases_uc.list_cases(uow=u, actor=actor(), query=q)
    args = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in f.items() if v}
    return render_template("cases.html", data=data, f=f, args=args, page=page, per_page=PER_PAGE,
                           regions=regions_for(), kinds=[(k, anomalies_uc.TITLES[k]) for k in anomalies_uc.KINDS],
                           statuses=[(s, C.STATUS_ZH[s]) for s in C.STATUSES])


@bp.route("/cases/export.xlsx")
@require_roles("regulator", "admin")
def cases_export() -> Response:
    """Every case under the filters as a workbook (times in China Standard Time)."""
    from openpyxl import Workbook

    from imports.writer import workbook_bytes
    from nofei.text import neutralise_cell_text

    q, _f = _query(1, 10**6)
    with uow() as u:
        data = cases_uc.list_cases(uow=u, actor=actor(), query=q)
    wb = Workbook()
    ws = wb.active
    ws.title = "案件"
    ws.append(["案件编号", "类型", "状态", "结案方式", "说明", "涉及单位", "联单", "涉及量（吨）", "承办人", "期限",
               "立案时间（北京时间）", "结案时间（北京时间）"])
    for c in data["items"]:
        ws.append([neutralise_cell_text(v) for v in (
            c["id"], c["kind_zh"], c["status_zh"], c["resolution_zh"] or "", c["message"],
            "、".join(f"{x['name'] or ''}（{x['credit_code']}）" for x in c["units"]), "、".join(c["manifests"]),
            c["mass_t"], c["assignee"] or "", c["due"].isoformat() if c["due"] else "", _cst(c["opened_at"]),
            _cst(c["closed_at"]))])
    resp = Response(workbook_bytes(wb), mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = f'attachment; filename="cases-{q.year}.xlsx"'
    return resp


def _cst(t: datetime | None) -> str:
    from api.web import when

    return when(t) if t else ""


@bp.route("/cases/<int:case_id>", methods=["GET", "POST"])
def case_page(case_id: int) -> Any:
    """One case: its evidence (units, manifests, ledger rows, each linked) and thread, and the caller's actions."""
    problems: list[dict[str, Any]] = []
    if request.method == "POST":
        done, problems = _post_step(case_id)
        if done is not None:
            return done
    with uow() as u:
        c = cases_uc.get_case(uow=u, actor=actor(), case_id=case_id)
        readable = {n: _readable(u, n) for n in c["manifests"]}
    return render_template("case.html", c=c, readable=readable, problems=problems,
                           action_zh=C.ACTION_ZH), (422 if problems else 200)


def _form_step() -> tuple[cases_uc.CaseStep, list[dict[str, Any]]]:
    """The step the form asks for, and the problems of its fields the use case cannot see (a bad date)."""
    problems = []
    due = None
    if request.form.get("due"):
        try:
            due = date.fromisoformat(request.form["due"])
        except ValueError:
            problems.append({"field": "due", "message": "期限日期格式应为 YYYY-MM-DD"})
    step = cases_uc.CaseStep(action=request.form.get("action") or "", text=(request.form.get("text") or ""),
                             assignee=(request.form.get("assignee") or "").strip() or None, due=due,
                             link=(request.form.get("link") or "").strip() or None)
    return step, problems


def _post_step(case_id: int) -> tuple[Any, list[dict[str, Any]]]:
    """Take the posted step: a redirect when it is recorded, else the problems to show with the page."""
    step, problems = _form_step()
    if problems:
        return None, problems
    try:
        with uow() as u:
            cases_uc.add_event(uow=u, actor=actor(), case_id=case_id, step=step)
    except InputRejected as e:
        return None, [p.to_dict() for p in e.problems] or [{"message": e.message}]
    nxt = request.form.get("next") or ""
    return redirect(url_for("web.todo") if nxt == "todo" else url_for("web.case_page", case_id=case_id)), []


def _readable(u: Any, number: str) -> bool:
    from ledgers import manifests

    try:
        manifests.get_manifest(uow=u, actor=actor(), number=number)
    except NofeiError:
        return False
    return True


@bp.route("/todo")
@require_roles("enterprise", "admin")
def todo() -> Any:
    """我的待办: what is asked of the enterprise — its open cases (answer on the page), the months it still
    owes and its next deadlines."""
    with uow() as u:
        data = cases_uc.my_todo(uow=u, actor=actor())
    return render_template("todo.html", d=data)


# --- units for regulators ---------------------------------------------------------------------------------
@bp.route("/units")
def units_directory() -> Any:
    """Find any unit the caller may see: by name or credit code, district, role."""
    from ledgers import registry
    from nofei.domain.units import ROLES

    q = (request.args.get("q") or "").strip()[:100] or None
    district = request.args.get("district") or None
    role = request.args.get("role") or None
    page = _page_arg()
    with uow() as u:
        cat = u.catalogue
        if district is not None and not cat.is_region(district):
            district = None
        items, total = registry.list_units(uow=u, actor=actor(), q=q, district=district,
                                           role=role if role in ROLES else None, page=page, per_page=PER_PAGE)
        from ledgers.declarations import tiers_by_code, today_cst  # the HJ 1259 tier column (issue 14)

        tier_year = today_cst().year
        tiers = tiers_by_code(uow=u, actor=actor(), year=tier_year, codes=[x["credit_code"] for x in items])
    return render_template("units.html", items=items, total=total, page=page, per_page=PER_PAGE, q=q or "",
                           district=district or "", role=role or "", roles=ROLES, regions=regions_for(),
                           region_name=cat.region_name, tiers=tiers, tier_year=tier_year)


@bp.route("/units/<code>")
def unit_profile(code: str) -> Any:
    """A unit's profile: permits, a 12-month grid of filed / missing / amended ledgers, manifests in and out,
    its cases and the balance per code for the year."""
    from ledgers import ledger as ledger_uc
    from ledgers import manifests, registry

    year = _year_arg()
    today = to_cst(datetime.now(UTC)).date()
    with uow() as u:
        unit = registry.get_unit(uow=u, actor=actor(), credit_code=code)
        cc = unit["credit_code"]
        region_name = u.catalogue.region_name
        ledgers, _n = ledger_uc.list_ledgers(uow=u, actor=actor(), unit=cc, year=year, page=1, per_page=200)
        ms, m_total = manifests.list_manifests(uow=u, actor=actor(), unit=cc, date_from=date(year, 1, 1),
                                               date_to=date(year, 12, 31), per_page=20)
        cs = cases_uc.list_cases(uow=u, actor=actor(), query=cases_uc.CaseQuery(year=year, unit=cc, per_page=100))
    grid = _month_grid(year, ledgers, set(months_owed(year, unit.get("reports_from"), today)))
    return render_template("unit.html", unit=unit, year=year, grid=grid, manifests=ms, m_total=m_total,
                           cases=cs, balance=_balance(ledgers), region_name=region_name)


def _grid_cell(month: str, versions: list[dict[str, Any]], owed: set[str]) -> dict[str, Any]:
    """One month of the grid: its newest ledger version (filed, or amended after version 1), or missing / not due."""
    cur = max(versions, key=lambda v: int(v.get("version") or 0)) if versions else None
    if cur is not None:
        state = "amended" if int(cur.get("version") or 1) > 1 else "filed"
    else:
        state = "missing" if month in owed else "not_due"
    generated = sum((Decimal(str(t.get("generated_t", 0))) for t in cur.get("totals", {}).values()),
                    Decimal(0)) if cur is not None else None
    return {"month": month, "state": state, "ledger": cur, "deadline": month_deadline(month), "generated_t": generated}


def _month_grid(year: int, ledgers: list[dict[str, Any]], owed: set[str]) -> list[dict[str, Any]]:
    """The 12-month grid of filed / amended / missing / not-yet-due ledgers."""
    by_month: dict[str, list[dict[str, Any]]] = {}
    for lg in ledgers:
        by_month.setdefault(str(lg["month"]), []).append(lg)
    return [_grid_cell(f"{year}-{m:02d}", by_month.get(f"{year}-{m:02d}", []), owed) for m in range(1, 13)]


def _balance(ledgers: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Per stream, the year's current versions summed exactly."""
    balance: dict[str, dict[str, Decimal]] = {}
    for lg in ledgers:
        if not lg.get("is_current", True):
            continue
        for stream, t in (lg.get("totals") or {}).items():
            b = balance.setdefault(stream, {})
            for k, v in t.items():
                b[k] = b.get(k, Decimal(0)) + Decimal(str(v))
    return balance
