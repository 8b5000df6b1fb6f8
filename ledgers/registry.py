"""Registry use cases: units and permits, API tokens, loaded catalogue codes, regional statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from nofei.access import ACTOR_ROLES, Actor
from nofei.catalogue import CITY, Catalogue, WasteCode
from nofei.domain.calendar import CST
from nofei.domain.units import ROLES, UNIT_TYPES, Permit, is_valid_credit_code, normalise_credit_code
from nofei.errors import Conflict, InputRejected, NotFound, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import tonnes_to_kg
from nofei.storage import repo, websession
from nofei.storage.repo import hash_token, new_token, unit_row, utcnow
from nofei.storage.tables import TokenRow, UnitRow
from nofei.storage.uow import UnitOfWork

_MONTH = re.compile(r"(19|20)\d\d-(0[1-9]|1[0-2])")


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("仅管理员可执行此操作 (admin only)")


def _field(field: str, code: str, zh: str, en: str, value: Any = None) -> Problem:
    return Problem(code=code, message=zh, message_en=en, field=field, value=value)


# --- the rules of a unit's fields ------------------------------------------------------------
def _identity_problems(cat: Catalogue, data: dict[str, Any], partial: bool) -> list[Problem]:
    """A GB 32100-2015 credit code, a district of the city (not the city itself), a month ``reports_from``."""
    out: list[Problem] = []
    if (not partial or "credit_code" in data) and not is_valid_credit_code(normalise_credit_code(data.get("credit_code"))):
        out.append(_field("credit_code", "bad_credit_code", "统一社会信用代码校验失败 (GB 32100-2015)",
                          "unified social credit code fails the GB 32100-2015 check", data.get("credit_code")))
    if not partial or "district" in data:
        d = data.get("district")
        if d not in cat.districts or d == CITY:
            out.append(_field("district", "unknown_district", "未知的区县代码", "unknown district code", d))
    rf = data.get("reports_from")
    if rf is not None and not (isinstance(rf, str) and _MONTH.fullmatch(rf)):
        out.append(_field("reports_from", "bad_month", "首个应报月份格式应为 YYYY-MM",
                          "reports_from must be a month YYYY-MM", rf))
    return out


def _park_problems(cat: Catalogue, data: dict[str, Any], current: UnitRow | None) -> list[Problem]:
    """A known park, and one of the unit's district (the stored district or park when a change leaves it out)."""
    park = data["park"] if "park" in data else (current.park if current is not None else None)
    district = data["district"] if "district" in data else (current.district if current is not None else None)
    if data.get("park") is not None and data["park"] not in cat.parks:
        return [_field("park", "unknown_park", "未知的园区代码", "unknown park code", data["park"])]
    if park is not None and park in cat.parks and district in cat.districts and cat.parks[park].district != district:
        pk = cat.parks[park]
        return [_field("park", "park_in_other_district",
                       f"园区 {pk.name_zh}（{park}）属于 {cat.region_name(pk.district)}（{pk.district}），不在该单位所在区县",
                       f"park {park} belongs to district {pk.district}, not {district}", park)]
    return []


def _kind_problems(data: dict[str, Any]) -> list[Problem]:
    """Known roles and unit type; only a medical institution can be a small clinic."""
    out = [_field("roles", "unknown_role", f"未知的角色 {r}", f"unknown role {r}", r)
           for r in data.get("roles") or [] if r not in ROLES]
    if "unit_type" in data and data["unit_type"] not in UNIT_TYPES:
        out.append(_field("unit_type", "unknown_unit_type", f"未知的单位类型 {data['unit_type']}",
                          f"unknown unit type {data['unit_type']}", data["unit_type"]))
    if data.get("small_clinic") and data.get("unit_type", "industrial") != "medical_institution":
        out.append(_field("small_clinic", "not_a_clinic", "只有医疗卫生机构可标记为床位 19 张及以下的诊所",
                          "only a medical_institution can be marked as a clinic with ≤ 19 beds", True))
    return out


def _is_hw_category(cat: Catalogue, code: object) -> bool:
    c = str(code)
    return c.upper().startswith("HW") and c[2:].isdigit() and c.upper() in cat.hw_categories


def _permit_problems(cat: Catalogue, i: int, p: dict[str, Any]) -> list[Problem]:
    """Codes (or HW categories) and methods the catalogue knows, and a period that does not end before it starts."""
    out = [_field(f"permits.{i}.waste_codes", "unknown_code", f"未知的废物代码 {c}", f"unknown waste code {c}", c)
           for c in p.get("waste_codes") or [] if not _is_hw_category(cat, c) and cat.classify(c).error]
    out += [_field(f"permits.{i}.methods", "unknown_method", f"未知的方式代码 {m}", f"unknown method code {m}", m)
            for m in p.get("methods") or [] if cat.method_class(str(m)) is None]
    vf, vt = p.get("valid_from"), p.get("valid_to")
    if isinstance(vf, date) and isinstance(vt, date) and vt < vf:
        out.append(_field(f"permits.{i}.valid_to", "bad_period", "有效期止早于有效期起",
                          "valid_to is before valid_from", str(vt)))
    return out


def _check_unit_fields(uow: UnitOfWork, data: dict[str, Any], *, partial: bool,
                       current: UnitRow | None = None) -> list[Problem]:
    """Every problem of a unit's fields; ``current`` is the stored unit a partial change applies to."""
    cat = uow.catalogue
    problems = _identity_problems(cat, data, partial) + _park_problems(cat, data, current) + _kind_problems(data)
    for i, p in enumerate(data.get("permits") or []):
        problems += _permit_problems(cat, i, p)
    return problems


def _permit_of(cat: Catalogue, p: dict[str, Any]) -> Permit:
    """A permit as entered, its codes as the catalogue spells them (an HW category kept as such)."""
    codes = []
    for c in p.get("waste_codes") or []:
        cu = str(c).strip().upper()
        codes.append(cu if cu in cat.hw_categories else (cat.classify(c).code or cu))
    return Permit(str(p["number"]), tuple(codes), tuple(str(m).strip().upper() for m in p.get("methods") or []),
                  tonnes_to_kg(Decimal(str(p.get("capacity_t") or 0))), p.get("valid_from"), p.get("valid_to"))


def _write_permits(uow: UnitOfWork, unit_id: int, permits: list[dict[str, Any]]) -> None:
    repo.replace_permits(uow.session, unit_id, [_permit_of(uow.catalogue, p) for p in permits])


def _permit_dict(p: Permit) -> dict[str, Any]:
    return {"number": p.number, "waste_codes": list(p.waste_codes), "methods": list(p.methods),
            "capacity_t": str(Decimal(p.capacity_kg) / 1000), "valid_from": p.valid_from, "valid_to": p.valid_to}


def unit_dict(uow: UnitOfWork, row: UnitRow, permits: list[Permit] | None = None) -> dict[str, Any]:
    """The unit as the API shows it (``permits``: already read, else read here)."""
    if permits is None:
        permits = repo.permits_by_unit(uow.session, [int(row.id or 0)]).get(int(row.id or 0), [])
    return {
        "credit_code": row.credit_code, "name": row.name, "district": row.district, "park": row.park,
        "roles": list(row.roles), "reports_from": row.reports_from,
        "unit_type": row.unit_type or "industrial", "small_clinic": bool(row.small_clinic),
        "permits": [_permit_dict(p) for p in permits],
        "created_at": row.created_at, "updated_at": row.updated_at,
    }


def register_unit(*, uow: UnitOfWork, actor: Actor, data: dict[str, Any], commit: bool = True) -> dict[str, Any]:
    """Register a unit with its roles and permits (admin). 409 on a duplicate credit code."""
    _require_admin(actor)
    with uow:
        problems = _check_unit_fields(uow, data, partial=False)
        if problems:
            raise InputRejected("单位信息有误 (invalid unit)", problems=problems)
        cc = normalise_credit_code(data["credit_code"])
        if repo.unit_exists(uow.session, cc):
            raise Conflict(f"单位 {cc} 已注册 (unit already registered)", code="duplicate_unit")
        now = utcnow()
        row = repo.add_unit(uow.session, UnitRow(
            credit_code=cc, name=str(data["name"]).strip(), district=data["district"], park=data.get("park"),
            roles=list(dict.fromkeys(data.get("roles") or [])), created_at=now, updated_at=now,
            reports_from=data.get("reports_from") or f"{now.astimezone(CST):%Y-%m}",
            unit_type=data.get("unit_type") or "industrial", small_clinic=bool(data.get("small_clinic"))))
        _write_permits(uow, row.id or 0, data.get("permits") or [])
        uow.audit(actor, "unit.create", f"unit:{cc}", detail={"name": row.name}, district=row.district)
        out = unit_dict(uow, row)
        if commit:
            uow.commit()
        return out


def _changed(row: UnitRow, data: dict[str, Any]) -> dict[str, Any]:
    """A change of unit type away from a medical institution drops the small-clinic mark it no longer may carry."""
    if data.get("unit_type") not in (None, "medical_institution") and row.small_clinic and "small_clinic" not in data:
        return {**data, "small_clinic": False}
    return data


def update_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change a unit's name, district, park, roles or permits (admin). The credit code is its identity."""
    _require_admin(actor)
    with uow:
        row = unit_row(uow.session, normalise_credit_code(credit_code))
        if "credit_code" in data and normalise_credit_code(data["credit_code"]) != row.credit_code:
            raise InputRejected("统一社会信用代码不可修改", problems=[
                _field("credit_code", "immutable", "统一社会信用代码不可修改", "credit_code cannot change")])
        problems = _check_unit_fields(uow, {"unit_type": row.unit_type, **data}, partial=True, current=row)
        if problems:
            raise InputRejected("单位信息有误 (invalid unit)", problems=problems)
        data = _changed(row, data)
        for k in ("name", "district", "park", "reports_from", "unit_type", "small_clinic"):
            if k in data:
                setattr(row, k, data[k])
        if "roles" in data:
            row.roles = list(dict.fromkeys(data["roles"] or []))
        if "permits" in data:
            _write_permits(uow, row.id or 0, data["permits"] or [])
        row.updated_at = utcnow()
        uow.audit(actor, "unit.update", f"unit:{row.credit_code}", detail={"fields": sorted(data)},
                  district=row.district)
        out = unit_dict(uow, row)
        uow.commit()
        return out


def get_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str) -> dict[str, Any]:
    """One unit; 404 also when the actor may not see it (codes cannot be probed)."""
    with uow:
        row = unit_row(uow.session, normalise_credit_code(credit_code))
        if not actor.can_view_unit(row.credit_code, row.district):
            raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
        return unit_dict(uow, row)


def list_units(*, uow: UnitOfWork, actor: Actor, district: str | None = None, role: str | None = None,
               q: str | None = None, page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
    """Units the actor may see (an enterprise its own, a district regulator its district's), filtered and paged."""
    with uow:
        rows = repo.find_units(uow.session, codes=actor.units if actor.role == "enterprise" else None,
                               district=actor.district if actor.role == "regulator" and actor.district != CITY
                               else None,
                               region=district if district and district != CITY else None, text=q)
        rows = [r for r in rows if not role or role in r.roles]
        shown = rows[(page - 1) * per_page : page * per_page]
        permits = repo.permits_by_unit(uow.session, [int(r.id or 0) for r in shown])
        return [unit_dict(uow, r, permits.get(int(r.id or 0), [])) for r in shown], len(rows)


def _import_problems(uow: UnitOfWork, items: list[dict[str, Any]]) -> list[Problem]:
    """Every item's field problems (``field`` prefixed with its index) and credit codes repeated in the file."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        for p in _check_unit_fields(uow, item, partial=False):
            problems.append(Problem(p.code, p.message, p.message_en, field=f"[{i}].{p.field}", value=p.value))
        cc = normalise_credit_code(item.get("credit_code"))
        if cc in seen:
            problems.append(_field(f"[{i}].credit_code", "duplicate_unit", "文件中重复的单位", "duplicate in file", cc))
        seen.add(cc)
    return problems


def _reimport(uow: UnitOfWork, actor: Actor, row: UnitRow, item: dict[str, Any]) -> None:
    """An imported unit already registered takes the item's fields, roles and permits."""
    for k in ("name", "district", "park", "reports_from"):
        if k in item:
            setattr(row, k, item[k])
    row.unit_type = item.get("unit_type") or "industrial"
    row.small_clinic = bool(item.get("small_clinic"))
    row.roles = list(dict.fromkeys(item.get("roles") or []))
    row.updated_at = utcnow()
    _write_permits(uow, row.id or 0, item.get("permits") or [])
    uow.audit(actor, "unit.update", f"unit:{row.credit_code}", detail={"bulk": True}, district=row.district)


def import_units(*, uow: UnitOfWork, actor: Actor, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Bulk registration: all or nothing. Problems carry the item index in ``field``."""
    _require_admin(actor)
    with uow:
        problems = _import_problems(uow, items)
        if problems:
            raise InputRejected("单位导入失败 (unit import rejected)", problems=problems)
        created, updated = 0, 0
        for item in items:
            cc = normalise_credit_code(item["credit_code"])
            row = repo.find_unit_row(uow.session, cc)
            if row is not None:
                _reimport(uow, actor, row, item)
                updated += 1
            else:
                register_unit(uow=uow, actor=actor, data={**item, "credit_code": cc}, commit=False)
                created += 1
        uow.commit()
        return {"created": created, "updated": updated}


# --- tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str
    role: str
    name: str
    district: str | None
    units: list[str]


def _token_problems(uow: UnitOfWork, role: str, units: list[str], district: str | None) -> list[Problem]:
    """A known role; a regulator needs a known district, an enterprise one or more registered units."""
    problems: list[Problem] = []
    if role not in ACTOR_ROLES:
        problems.append(_field("role", "unknown_role", f"未知角色 {role}", f"unknown role {role}", role))
    if role == "regulator" and district not in uow.catalogue.districts:
        problems.append(_field("district", "unknown_district", "监管角色需要有效的区县代码",
                               "a regulator needs a known district code", district))
    if role == "enterprise":
        if not units:
            problems.append(_field("units", "missing_unit", "企业角色需要至少一个单位", "an enterprise token needs a unit"))
        problems += [_field("units", "unknown_unit", f"单位 {u} 未注册", f"unit {u} is not registered", u)
                     for u in units if not repo.unit_exists(uow.session, u)]
    return problems


def create_token(*, uow: UnitOfWork, actor: Actor, role: str, units: list[str] | None = None,
                 district: str | None = None, name: str = "") -> IssuedToken:
    """Issue a token. Regulators need a district (``630100`` = the city); enterprises one or more units."""
    _require_admin(actor)
    units = [normalise_credit_code(u) for u in units or []]
    with uow:
        problems = _token_problems(uow, role, units, district)
        if problems:
            raise InputRejected("令牌参数有误 (invalid token request)", problems=problems)
        token = new_token()
        row = repo.add_token(uow.session, TokenRow(
            name=name, role=role, district=district if role == "regulator" else None,
            units=units if role == "enterprise" else [], token_hash=hash_token(token), prefix=token[:10],
            created_at=utcnow()))
        uow.audit(actor, "token.create", f"token:{row.id}", detail={"role": role, "name": name, "units": units,
                                                                     "district": district})
        uow.commit()
        return IssuedToken(row.id or 0, token, role, name, row.district, list(row.units))


def list_tokens(*, uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    """Every token without its hash (admin)."""
    _require_admin(actor)
    with uow:
        return [{"id": r.id, "name": r.name, "role": r.role, "district": r.district, "units": list(r.units),
                 "prefix": r.prefix, "created_at": r.created_at, "revoked_at": r.revoked_at}
                for r in repo.token_rows(uow.session)]


def revoke_token(*, uow: UnitOfWork, actor: Actor, token_id: int) -> None:
    """Revoke a token and end its page sessions (admin); revoking twice changes nothing."""
    _require_admin(actor)
    with uow:
        row = repo.token_row(uow.session, token_id)
        if row is None:
            raise NotFound(f"令牌 {token_id} 不存在 (no such token)")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            websession.revoke_token_sessions(uow.session, token_id)  # its page sessions end with it
            uow.audit(actor, "token.revoke", f"token:{token_id}")
        uow.commit()


# --- catalogue and statistics -----------------------------------------------------------------
def load_catalogue_codes(*, uow: UnitOfWork, actor: Actor, codes: list[WasteCode], edition: int | None = None) -> int:
    """Store codes loaded by an admin; existing ones are replaced.

    With ``edition`` the hazardous and medical codes are a whole edition of the 名录 (e.g. the 2025 名录, 470
    entries): they replace any earlier load of that edition and, from 1 January ``edition`` on, the codes of
    earlier editions. Other codes (and all codes without an edition) are additions valid in every year."""
    _require_admin(actor)
    now = utcnow()
    with uow:
        whole = [wc for wc in codes if edition is not None and wc.stream in ("hazardous", "medical")]
        if edition is not None:
            repo.replace_catalogue_edition(uow.session, edition, whole, now)
        for wc in codes:
            if not (edition is not None and wc.stream in ("hazardous", "medical")):
                repo.put_catalogue_code(uow.session, wc, now)
        uow.audit(actor, "catalogue.load", "catalogue", detail={"codes": len(codes), "edition": edition})
        uow.commit()
        return len(codes)


_UNSET: Any = object()


def _value_added(value: Any) -> tuple[str | None, list[Problem]]:
    """工业增加值 (万元) as exact decimal text: a finite, non-negative number (None: not given or cleared)."""
    if value is _UNSET or value is None:
        return None, []
    try:
        v = Decimal(str(value))
        if v.is_finite() and v >= 0:
            return str(v), []
    except (InvalidOperation, ValueError):
        pass
    return None, [_field("industrial_value_added", "not_a_number", "工业增加值须为非负数",
                         "industrial_value_added must be a non-negative number", value)]


def _institutions_ok(value: Any) -> bool:
    """医疗卫生机构数: not given, cleared, or a non-negative integer (not a bool)."""
    return value is _UNSET or value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _statistic_problems(uow: UnitOfWork, year: int, region: str, value_added: Any,
                        institutions: Any) -> tuple[str | None, list[Problem]]:
    """The value added as stored, and every problem of a statistic: known region, figures, a year 1990–2100."""
    problems = []
    if not uow.catalogue.is_region(region):
        problems.append(_field("region", "unknown_region", "未知的区域代码", "unknown region code", region))
    va, bad = _value_added(value_added)
    problems += bad
    if not _institutions_ok(institutions):
        problems.append(_field("medical_institutions", "not_a_count", "医疗卫生机构数须为非负整数",
                               "medical_institutions must be a non-negative integer", institutions))
    if value_added is _UNSET and institutions is _UNSET:
        problems.append(_field("industrial_value_added", "missing_value", "请至少填写工业增加值或医疗卫生机构数",
                               "give industrial_value_added or medical_institutions", None))
    if not 1990 <= year <= 2100:
        problems.append(_field("year", "bad_year", "年份超出范围", "year out of range", year))
    return va, problems


def put_statistic(*, uow: UnitOfWork, actor: Actor, year: int, region: str, industrial_value_added: Any = _UNSET,
                  medical_institutions: Any = _UNSET) -> dict[str, Any]:
    """Record a region's statistics for a year: 工业增加值 (万元), feeding the intensity indicators, and the
    number of 医疗卫生机构, the denominator of ``medical_collection_coverage_rate`` (indicators.md §3).
    A figure left out keeps its earlier value; ``None`` clears it."""
    _require_admin(actor)
    with uow:
        va, problems = _statistic_problems(uow, year, region, industrial_value_added, medical_institutions)
        if problems:
            raise InputRejected("统计数据有误 (invalid statistic)", problems=problems)
        row = repo.statistic_row(uow.session, year, region)
        if industrial_value_added is not _UNSET:
            row.industrial_value_added = va or ""
        if medical_institutions is not _UNSET:
            row.medical_institutions = medical_institutions
        row.updated_at = utcnow()
        out = {"year": year, "region": region, "industrial_value_added": row.industrial_value_added or None,
               "medical_institutions": row.medical_institutions}
        uow.audit(actor, "statistic.put", f"statistic:{year}:{region}",
                  detail={k: v for k, v in out.items() if k in ("industrial_value_added", "medical_institutions")})
        uow.commit()
        return out
