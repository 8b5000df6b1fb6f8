"""Registry use cases: units and permits, API tokens, loaded catalogue codes, regional statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import col

from nofei.access import ACTOR_ROLES, Actor
from nofei.catalogue import CITY, WasteCode
from nofei.domain.units import ROLES, UNIT_TYPES, is_valid_credit_code, normalise_credit_code
from nofei.errors import Conflict, InputRejected, NotFound, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import tonnes_to_kg
from nofei.storage import websession
from nofei.storage.repo import hash_token, new_token, permits_of, unit_row, utcnow
from nofei.storage.tables import (
    CatalogueCodeRow,
    CatalogueEditionCodeRow,
    PermitRow,
    StatisticRow,
    TokenRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

from .manifests import CST


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("仅管理员可执行此操作 (admin only)")


def _field(field: str, code: str, zh: str, en: str, value: Any = None) -> Problem:
    return Problem(code=code, message=zh, message_en=en, field=field, value=value)


def _check_unit_fields(uow: UnitOfWork, data: dict[str, Any], *, partial: bool,
                       current: UnitRow | None = None) -> list[Problem]:
    """Every problem of a unit's fields; ``current`` is the stored unit a partial change applies to."""
    cat = uow.catalogue
    problems: list[Problem] = []
    if not partial or "credit_code" in data:
        cc = normalise_credit_code(data.get("credit_code"))
        if not is_valid_credit_code(cc):
            problems.append(_field("credit_code", "bad_credit_code", "统一社会信用代码校验失败 (GB 32100-2015)",
                                   "unified social credit code fails the GB 32100-2015 check", data.get("credit_code")))
    if not partial or "district" in data:
        d = data.get("district")
        if d not in cat.districts or d == CITY:
            problems.append(_field("district", "unknown_district", "未知的区县代码", "unknown district code", d))
    rf = data.get("reports_from")
    if rf is not None and not (isinstance(rf, str) and re.fullmatch(r"(19|20)\d\d-(0[1-9]|1[0-2])", rf)):
        problems.append(_field("reports_from", "bad_month", "首个应报月份格式应为 YYYY-MM",
                               "reports_from must be a month YYYY-MM", rf))
    park = data["park"] if "park" in data else (current.park if current is not None else None)
    district = data["district"] if "district" in data else (current.district if current is not None else None)
    if data.get("park") is not None and data["park"] not in cat.parks:
        problems.append(_field("park", "unknown_park", "未知的园区代码", "unknown park code", data["park"]))
    elif park is not None and park in cat.parks and district in cat.districts and cat.parks[park].district != district:
        pk = cat.parks[park]
        problems.append(_field("park", "park_in_other_district",
                               f"园区 {pk.name_zh}（{park}）属于 {cat.region_name(pk.district)}（{pk.district}），不在该单位所在区县",
                               f"park {park} belongs to district {pk.district}, not {district}", park))
    for r in data.get("roles") or []:
        if r not in ROLES:
            problems.append(_field("roles", "unknown_role", f"未知的角色 {r}", f"unknown role {r}", r))
    if "unit_type" in data and data["unit_type"] not in UNIT_TYPES:
        problems.append(_field("unit_type", "unknown_unit_type", f"未知的单位类型 {data['unit_type']}",
                               f"unknown unit type {data['unit_type']}", data["unit_type"]))
    if data.get("small_clinic") and data.get("unit_type", "industrial") != "medical_institution":
        problems.append(_field("small_clinic", "not_a_clinic", "只有医疗卫生机构可标记为床位 19 张及以下的诊所",
                               "only a medical_institution can be marked as a clinic with ≤ 19 beds", True))
    for i, p in enumerate(data.get("permits") or []):
        for c in p.get("waste_codes") or []:
            if not (str(c).upper().startswith("HW") and str(c)[2:].isdigit() and str(c).upper() in cat.hw_categories):
                chk = cat.classify(c)
                if chk.error:
                    problems.append(_field(f"permits.{i}.waste_codes", "unknown_code", f"未知的废物代码 {c}",
                                           f"unknown waste code {c}", c))
        for m in p.get("methods") or []:
            if cat.method_class(str(m)) is None:
                problems.append(_field(f"permits.{i}.methods", "unknown_method", f"未知的方式代码 {m}",
                                       f"unknown method code {m}", m))
        vf, vt = p.get("valid_from"), p.get("valid_to")
        if isinstance(vf, date) and isinstance(vt, date) and vt < vf:
            problems.append(_field(f"permits.{i}.valid_to", "bad_period", "有效期止早于有效期起",
                                   "valid_to is before valid_from", str(vt)))
    return problems


def _write_permits(uow: UnitOfWork, unit_id: int, permits: list[dict[str, Any]]) -> None:
    uow.session.execute(delete(PermitRow).where(col(PermitRow.unit_id) == unit_id))
    for p in permits:
        codes = []
        for c in p.get("waste_codes") or []:
            cu = str(c).strip().upper()
            codes.append(cu if cu in uow.catalogue.hw_categories else (uow.catalogue.classify(c).code or cu))
        uow.session.add(PermitRow(
            unit_id=unit_id, number=str(p["number"]), waste_codes=codes,
            methods=[str(m).strip().upper() for m in p.get("methods") or []],
            capacity_kg=tonnes_to_kg(Decimal(str(p.get("capacity_t") or 0))),
            valid_from=p.get("valid_from"), valid_to=p.get("valid_to"),
        ))


def unit_dict(uow: UnitOfWork, row: UnitRow) -> dict[str, Any]:
    return {
        "credit_code": row.credit_code, "name": row.name, "district": row.district, "park": row.park,
        "roles": list(row.roles), "reports_from": row.reports_from,
        "unit_type": row.unit_type or "industrial", "small_clinic": bool(row.small_clinic),
        "permits": [
            {"number": p.number, "waste_codes": list(p.waste_codes), "methods": list(p.methods),
             "capacity_t": str(Decimal(p.capacity_kg) / 1000), "valid_from": p.valid_from, "valid_to": p.valid_to}
            for p in permits_of(uow.session, row.id or 0)
        ],
        "created_at": row.created_at, "updated_at": row.updated_at,
    }


def register_unit(*, uow: UnitOfWork, actor: Actor, data: dict[str, Any], commit: bool = True) -> dict[str, Any]:
    """Register a unit with its roles and permits (admin). 409 on a duplicate credit code."""
    _require_admin(actor)
    problems = _check_unit_fields(uow, data, partial=False)
    if problems:
        raise InputRejected("单位信息有误 (invalid unit)", problems=problems)
    cc = normalise_credit_code(data["credit_code"])
    if uow.session.execute(select(col(UnitRow.id)).where(col(UnitRow.credit_code) == cc)).first():
        raise Conflict(f"单位 {cc} 已注册 (unit already registered)", code="duplicate_unit")
    now = utcnow()
    row = UnitRow(credit_code=cc, name=str(data["name"]).strip(), district=data["district"], park=data.get("park"),
                  roles=list(dict.fromkeys(data.get("roles") or [])), created_at=now, updated_at=now,
                  reports_from=data.get("reports_from") or f"{now.astimezone(CST):%Y-%m}",
                  unit_type=data.get("unit_type") or "industrial", small_clinic=bool(data.get("small_clinic")))
    uow.session.add(row)
    uow.session.flush()
    _write_permits(uow, row.id or 0, data.get("permits") or [])
    uow.audit(actor, "unit.create", f"unit:{cc}", detail={"name": row.name}, district=row.district)
    out = unit_dict(uow, row)
    if commit:
        uow.commit()
    return out


def update_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change a unit's name, district, park, roles or permits (admin). The credit code is its identity."""
    _require_admin(actor)
    row = unit_row(uow.session, credit_code)
    if "credit_code" in data and normalise_credit_code(data["credit_code"]) != row.credit_code:
        raise InputRejected("统一社会信用代码不可修改", problems=[
            _field("credit_code", "immutable", "统一社会信用代码不可修改", "credit_code cannot change")])
    problems = _check_unit_fields(uow, {"unit_type": row.unit_type, **data}, partial=True, current=row)
    if data.get("unit_type") not in (None, "medical_institution") and row.small_clinic and "small_clinic" not in data:
        data = {**data, "small_clinic": False}  # a clinic that is no longer a medical institution loses the mark
    if problems:
        raise InputRejected("单位信息有误 (invalid unit)", problems=problems)
    for k in ("name", "district", "park", "reports_from", "unit_type", "small_clinic"):
        if k in data:
            setattr(row, k, data[k])
    if "roles" in data:
        row.roles = list(dict.fromkeys(data["roles"] or []))
    if "permits" in data:
        _write_permits(uow, row.id or 0, data["permits"] or [])
    row.updated_at = utcnow()
    uow.session.add(row)
    uow.audit(actor, "unit.update", f"unit:{row.credit_code}", detail={"fields": sorted(data)}, district=row.district)
    out = unit_dict(uow, row)
    uow.commit()
    return out


def get_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str) -> dict[str, Any]:
    row = unit_row(uow.session, normalise_credit_code(credit_code))
    if not actor.can_view_unit(row.credit_code, row.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    return unit_dict(uow, row)


def list_units(*, uow: UnitOfWork, actor: Actor, district: str | None = None, role: str | None = None,
               q: str | None = None, page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
    """Units the actor may see, filtered and paged."""
    stmt = select(UnitRow)
    if actor.role == "enterprise":
        stmt = stmt.where(col(UnitRow.credit_code).in_(sorted(actor.units)))
    elif actor.role == "regulator" and actor.district != CITY:
        stmt = stmt.where(col(UnitRow.district) == actor.district)
    if district and district != CITY:
        stmt = stmt.where((col(UnitRow.district) == district) | (col(UnitRow.park) == district))
    if q:
        stmt = stmt.where(col(UnitRow.name).contains(q) | col(UnitRow.credit_code).contains(q.upper()))
    rows = list(uow.session.execute(stmt.order_by(col(UnitRow.credit_code))).scalars())
    if role:
        rows = [r for r in rows if role in r.roles]
    total = len(rows)
    return [unit_dict(uow, r) for r in rows[(page - 1) * per_page : page * per_page]], total


def import_units(*, uow: UnitOfWork, actor: Actor, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Bulk registration: all or nothing. Problems carry the item index in ``field``."""
    _require_admin(actor)
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        for p in _check_unit_fields(uow, item, partial=False):
            problems.append(Problem(p.code, p.message, p.message_en, field=f"[{i}].{p.field}", value=p.value))
        cc = normalise_credit_code(item.get("credit_code"))
        if cc in seen:
            problems.append(_field(f"[{i}].credit_code", "duplicate_unit", "文件中重复的单位", "duplicate in file", cc))
        seen.add(cc)
    if problems:
        raise InputRejected("单位导入失败 (unit import rejected)", problems=problems)
    created, updated = 0, 0
    for item in items:
        cc = normalise_credit_code(item["credit_code"])
        exists = uow.session.execute(select(col(UnitRow.id)).where(col(UnitRow.credit_code) == cc)).first()
        if exists:
            row = unit_row(uow.session, cc)
            for k in ("name", "district", "park", "reports_from"):
                if k in item:
                    setattr(row, k, item[k])
            row.unit_type = item.get("unit_type") or "industrial"
            row.small_clinic = bool(item.get("small_clinic"))
            row.roles = list(dict.fromkeys(item.get("roles") or []))
            row.updated_at = utcnow()
            _write_permits(uow, row.id or 0, item.get("permits") or [])
            uow.audit(actor, "unit.update", f"unit:{cc}", detail={"bulk": True}, district=row.district)
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


def create_token(*, uow: UnitOfWork, actor: Actor, role: str, units: list[str] | None = None,
                 district: str | None = None, name: str = "") -> IssuedToken:
    """Issue a token. Regulators need a district (``630100`` = the city); enterprises one or more units."""
    _require_admin(actor)
    units = [normalise_credit_code(u) for u in units or []]
    problems: list[Problem] = []
    if role not in ACTOR_ROLES:
        problems.append(_field("role", "unknown_role", f"未知角色 {role}", f"unknown role {role}", role))
    if role == "regulator" and district not in uow.catalogue.districts:
        problems.append(_field("district", "unknown_district", "监管角色需要有效的区县代码",
                               "a regulator needs a known district code", district))
    if role == "enterprise":
        if not units:
            problems.append(_field("units", "missing_unit", "企业角色需要至少一个单位", "an enterprise token needs a unit"))
        for u in units:
            if uow.session.execute(select(col(UnitRow.id)).where(col(UnitRow.credit_code) == u)).first() is None:
                problems.append(_field("units", "unknown_unit", f"单位 {u} 未注册", f"unit {u} is not registered", u))
    if problems:
        raise InputRejected("令牌参数有误 (invalid token request)", problems=problems)
    token = new_token()
    row = TokenRow(name=name, role=role, district=district if role == "regulator" else None,
                   units=units if role == "enterprise" else [], token_hash=hash_token(token),
                   prefix=token[:10], created_at=utcnow())
    uow.session.add(row)
    uow.session.flush()
    uow.audit(actor, "token.create", f"token:{row.id}", detail={"role": role, "name": name, "units": units,
                                                                 "district": district})
    uow.commit()
    return IssuedToken(row.id or 0, token, role, name, row.district, list(row.units))


def list_tokens(*, uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    _require_admin(actor)
    rows = uow.session.execute(select(TokenRow).order_by(col(TokenRow.id))).scalars()
    return [{"id": r.id, "name": r.name, "role": r.role, "district": r.district, "units": list(r.units),
             "prefix": r.prefix, "created_at": r.created_at, "revoked_at": r.revoked_at} for r in rows]


def revoke_token(*, uow: UnitOfWork, actor: Actor, token_id: int) -> None:
    _require_admin(actor)
    row = uow.session.get(TokenRow, token_id)
    if row is None:
        raise NotFound(f"令牌 {token_id} 不存在 (no such token)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        uow.session.add(row)
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
    if edition is not None:
        uow.session.execute(delete(CatalogueEditionCodeRow).where(CatalogueEditionCodeRow.edition == edition))  # type: ignore[arg-type]
    for wc in codes:
        if edition is not None and wc.stream in ("hazardous", "medical"):
            uow.session.add(CatalogueEditionCodeRow(edition=edition, code=wc.code, category=wc.category,
                                                    name_zh=wc.name_zh, hazard=wc.hazard, stream=wc.stream,
                                                    loaded_at=now))
            continue
        row = uow.session.get(CatalogueCodeRow, wc.code) or CatalogueCodeRow(code=wc.code, stream=wc.stream, loaded_at=now)
        row.name_zh, row.category, row.stream, row.loaded_at = wc.name_zh, wc.category, wc.stream, now
        uow.session.add(row)
    uow.audit(actor, "catalogue.load", "catalogue", detail={"codes": len(codes), "edition": edition})
    uow.commit()
    return len(codes)


_UNSET: Any = object()


def put_statistic(*, uow: UnitOfWork, actor: Actor, year: int, region: str, industrial_value_added: Any = _UNSET,
                  medical_institutions: Any = _UNSET) -> dict[str, Any]:
    """Record a region's statistics for a year: 工业增加值 (万元), feeding the intensity indicators, and the
    number of 医疗卫生机构, the denominator of ``medical_collection_coverage_rate`` (indicators.md §3).
    A figure left out keeps its earlier value; ``None`` clears it."""
    _require_admin(actor)
    problems = []
    if not uow.catalogue.is_region(region):
        problems.append(_field("region", "unknown_region", "未知的区域代码", "unknown region code", region))
    va: str | None = None
    if industrial_value_added is not _UNSET and industrial_value_added is not None:
        try:
            v = Decimal(str(industrial_value_added))
            if not v.is_finite() or v < 0:
                raise InvalidOperation
            va = str(v)
        except (InvalidOperation, ValueError):
            problems.append(_field("industrial_value_added", "not_a_number", "工业增加值须为非负数",
                                   "industrial_value_added must be a non-negative number", industrial_value_added))
    if medical_institutions is not _UNSET and medical_institutions is not None and (
            isinstance(medical_institutions, bool) or not isinstance(medical_institutions, int)
            or medical_institutions < 0):
        problems.append(_field("medical_institutions", "not_a_count", "医疗卫生机构数须为非负整数",
                               "medical_institutions must be a non-negative integer", medical_institutions))
    if industrial_value_added is _UNSET and medical_institutions is _UNSET:
        problems.append(_field("industrial_value_added", "missing_value", "请至少填写工业增加值或医疗卫生机构数",
                               "give industrial_value_added or medical_institutions", None))
    if not 1990 <= year <= 2100:
        problems.append(_field("year", "bad_year", "年份超出范围", "year out of range", year))
    if problems:
        raise InputRejected("统计数据有误 (invalid statistic)", problems=problems)
    row = uow.session.get(StatisticRow, (year, region)) or StatisticRow(year=year, region=region,
                                                                          industrial_value_added="", updated_at=utcnow())
    if industrial_value_added is not _UNSET:
        row.industrial_value_added = va or ""
    if medical_institutions is not _UNSET:
        row.medical_institutions = medical_institutions
    row.updated_at = utcnow()
    uow.session.add(row)
    out = {"year": year, "region": region, "industrial_value_added": row.industrial_value_added or None,
           "medical_institutions": row.medical_institutions}
    uow.audit(actor, "statistic.put", f"statistic:{year}:{region}",
              detail={k: v for k, v in out.items() if k in ("industrial_value_added", "medical_institutions")})
    uow.commit()
    return out


def count_units(*, uow: UnitOfWork) -> int:
    return int(uow.session.execute(select(func.count()).select_from(UnitRow)).scalar_one())
