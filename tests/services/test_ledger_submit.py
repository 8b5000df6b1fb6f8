"""submit_monthly_ledger on a real database: receipt, versions, duplicates, permissions, warnings."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from imports import read_monthly_ledger
from ledgers import ledger as L
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.errors import LedgerRejected, NotFound, PermissionDenied
from nofei.storage.tables import AuditRow, LedgerFileRow, LedgerRow, TransferEntryRow
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, cover, workbook

TODAY = date(2025, 4, 2)


def _register(uow_factory, code, *, name="测试化工有限公司", permits=None, roles=None):
    with uow_factory() as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data={
            "credit_code": code, "name": name, "district": "630104", "roles": roles or ["producer"],
            "permits": permits or []})


def _read(uow_factory, data):
    with uow_factory() as uow:
        cat = uow.catalogue
    return read_monthly_ledger(data, filename="m.xlsx", catalogue=cat, today=TODAY)


def _submit(uow_factory, data, actor=SYSTEM, **kw):
    draft = _read(uow_factory, data)
    return L.submit_monthly_ledger(uow=uow_factory(), actor=actor, draft=draft, content=data, filename="m.xlsx", **kw)


@pytest.fixture
def units(uow_factory):
    _register(uow_factory, ME)
    _register(uow_factory, RECV, name="接收单位", roles=["disposer"],
              permits=[{"number": "P1", "waste_codes": ["HW49"], "methods": ["D10"], "capacity_t": "1000"}])


def test_receipt_counts_rows_and_totals_per_stream(uow_factory, units):
    rc = _submit(uow_factory, workbook(balanced_sheets()))
    assert rc["version"] == 1 and rc["duplicate"] is False and rc["unit"] == ME and rc["month"] == "2025-03"
    assert rc["rows"] == {"产生贮存": 2, "利用处置": 1, "转出": 2, "转入": 1}
    hw = rc["totals"]["hazardous"]
    assert hw == {"generated_t": 10.0, "utilised_t": 0.0, "disposed_t": 3.0, "transferred_out_t": 8.0, "received_t": 2.0}
    assert rc["totals"]["general_industrial"]["generated_t"] == 5.0
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(TransferEntryRow)).scalar_one() == 3
        assert uow.session.execute(select(AuditRow.action)).scalars().all()[-1] == "ledger.submit"


def test_amendment_creates_version_2_and_version_1_stays_readable(uow_factory, units):
    v1 = _submit(uow_factory, workbook(balanced_sheets()))
    s = balanced_sheets()
    s["填报信息"][3][1] = "李四"
    v2 = _submit(uow_factory, workbook(s))
    assert (v1["version"], v2["version"]) == (1, 2) and v1["id"] != v2["id"]
    with uow_factory() as uow:
        vs = L.versions(uow=uow, actor=SYSTEM, unit=ME, month="2025-03")
    assert [(v["version"], v["is_current"]) for v in vs] == [(1, False), (2, True)]
    with uow_factory() as uow:
        old = L.get_ledger(uow=uow, actor=SYSTEM, ledger_id=v1["id"])
    assert old["reporter"] == "张三" and len(old["transfers"]) == 3


def test_byte_identical_reupload_is_a_duplicate_and_stores_nothing(uow_factory, units):
    data = workbook(balanced_sheets())
    first = _submit(uow_factory, data)
    again = _submit(uow_factory, data)
    assert again["duplicate"] is True and again["id"] == first["id"] and again["version"] == 1
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(LedgerRow)).scalar_one() == 1
        assert uow.session.execute(select(func.count()).select_from(LedgerFileRow)).scalar_one() == 1


def test_dry_run_stores_nothing(uow_factory, units):
    rc = _submit(uow_factory, workbook(balanced_sheets()), dry_run=True)
    assert rc["id"] is None and rc["version"] == 1
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(LedgerRow)).scalar_one() == 0


def test_enterprise_only_for_its_units_and_regulators_never(uow_factory, units):
    data = workbook(balanced_sheets())
    with pytest.raises(PermissionDenied):
        _submit(uow_factory, data, actor=Actor(role="enterprise", units=frozenset({RECV})))
    with pytest.raises(PermissionDenied):
        _submit(uow_factory, data, actor=Actor(role="regulator", district="630100"))
    rc = _submit(uow_factory, data, actor=Actor(role="enterprise", units=frozenset({ME})))
    assert rc["version"] == 1
    with uow_factory() as uow, pytest.raises(NotFound):
        L.get_ledger(uow=uow, actor=Actor(role="enterprise", units=frozenset({RECV})), ledger_id=rc["id"])


def test_unregistered_unit_is_pinned_to_the_cover_cell(uow_factory):
    with pytest.raises(LedgerRejected) as ei:
        _submit(uow_factory, workbook(balanced_sheets()))
    p = ei.value.problems[0]
    assert (p.code, p.sheet, p.row, p.column) == ("unknown_unit", "填报信息", 1, "B")


def test_warnings_unregistered_receiver_permit_and_name(uow_factory):
    _register(uow_factory, ME, name="别的名字")
    _register(uow_factory, RECV, name="接收单位", roles=["disposer"],
              permits=[{"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "1"}])
    rc = _submit(uow_factory, workbook(balanced_sheets()))
    codes = {w["code"] for w in rc["warnings"]}
    assert {"name_mismatch", "unregistered_unit", "permit_not_covering"} <= codes
    unreg = next(w for w in rc["warnings"] if w["code"] == "unregistered_unit")
    assert unreg["sheet"] == "转入" and unreg["value"] != RECV
    with uow_factory() as uow:
        stored = L.get_ledger(uow=uow, actor=SYSTEM, ledger_id=rc["id"], with_rows=False)
    assert {w["code"] for w in stored["warnings"]} == codes


def test_continuity_warning_when_opening_differs_from_last_close(uow_factory, units):
    feb = balanced_sheets(date(2025, 2, 7))
    feb["填报信息"] = cover(month="2025-02")
    feb["产生贮存"][1][4] = 2.4   # close 2.4 → does not balance; adjust generation to keep it balanced
    feb["产生贮存"][1][3] = 9.9
    _submit(uow_factory, workbook(feb))
    rc = _submit(uow_factory, workbook(balanced_sheets()))   # March opens with 1.5, February closed with 2.4
    cont = [w for w in rc["warnings"] if w["code"] == "continuity"]
    assert cont and cont[0]["sheet"] == "产生贮存" and cont[0]["row"] == 2



def _clinic_sheets() -> dict:
    """ME ships 1 t of 841-001-01 with no 联单编号 (and the balanced sheets' 900-041-49 without one too)."""
    s = balanced_sheets()
    s["产生贮存"].append(["841-001-01", None, 0, 1, 0, "吨", None])
    s["转出"].append([date(2025, 3, 7), None, "841-001-01", 1, "吨", RECV, "接收单位", None, "D10", None])
    s["转出"][1][1] = None
    return s


@pytest.mark.parametrize(("clinic", "warned_rows"), [(True, {2}), (False, {2, 4})])
def test_a_clinic_with_19_beds_or_fewer_needs_no_manifest_for_its_medical_waste(uow_factory, clinic, warned_rows):
    # 豁免清单 item 2: HW01 of a clinic with ≤ 19 beds is exempt at 收集 and 运输; its HW49 row (2) is not
    with uow_factory() as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data={
            "credit_code": ME, "name": "测试化工有限公司", "district": "630104", "roles": ["producer"],
            "unit_type": "medical_institution", "small_clinic": clinic})
    _register(uow_factory, RECV, name="接收单位", roles=["disposer"])
    receipt = _submit(uow_factory, workbook(_clinic_sheets()))
    rows = {w["row"] for w in receipt["warnings"] if w["code"] == "missing_manifest"}
    assert rows == warned_rows


def test_only_a_medical_institution_can_be_a_small_clinic(uow_factory):
    with pytest.raises(Exception) as ei, uow_factory() as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data={
            "credit_code": ME, "name": "甲", "district": "630104", "small_clinic": True})
    assert "not_a_clinic" in {p.code for p in ei.value.problems}
