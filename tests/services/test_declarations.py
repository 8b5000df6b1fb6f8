"""HJ 1259 tiers, declaration tables and the calendar on a small city worked by hand (issue 14).

The city (codes: W = 900-041-49 废弃包装物 HW49, OIL = 900-249-08 废矿物油 HW08):

- A (城东 630102) generated W: 2022 8 t, 2023 40 t, 2024 120 t (one March ledger each), 2025 Q1 as below.
  Tier of 2023: only 2022 before → max 8 t → 登记; 2024: max(8, 40) = 40 t → 简化; 2025: max(8, 40, 120) =
  120 t → 重点; 2028: years 2025–2027, only 2025 (5.5 t) → 登记 (the 120 t has left the window).
- B (城北 630105) generated 2 t in 2024 and disposed of 0.5 t itself (D10) → 重点 in 2025 (own facility).
- R (城西 630104) holds permit P-HW-001 (HW49, HW08; D10) → 重点 (licence) without any ledger.
- C (城中 630103) generated 50 t in 2024 → 简化 in 2025; D (630103) 3 t → 登记.

A's 2025 Q1 (t):           open   gen   out                              close
  2025-01  W                1      2     R 2.5 (D10)                      0.5
           OIL                0      1     —                                1
  2025-02  W                0.5    1.5   R 1.0 (D10), X 1.0 (R9)          0
           OIL                1      0.5   R 1.0 (D10)                      0.5
  2025-03  W                0      0.5   —                                0.5
           OIL                0.5    0     R 0.5 (D10)                      0
X is an unregistered receiver in 甘肃 (credit code region 620102): no licence (a gap), province from the code.
Q1 (C.2): W generated 4.0, open 1.0, close 0.5, entrusted R D10 3.5 (licence P-HW-001, 青海省) and X R9 1.0;
          OIL generated 1.5, open 0, close 0, entrusted R D10 1.5.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from ledgers import declarations as svc
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.domain.declarations import parse_period
from nofei.domain.units import make_credit_code
from nofei.errors import InputRejected, NotFound, PermissionDenied
from nofei.problems import SourceRef
from nofei.storage.tables import AuditRow, LedgerRow, UnitRow
from reports.declarations import build_declaration
from tests.flowfactory import draft, store, store_all

W, OIL = "900-041-49", "900-249-08"
A = make_credit_code("630102", "DC0000001")
B = make_credit_code("630105", "DC0000002")
R = make_credit_code("630104", "DC0000003")
C = make_credit_code("630103", "DC0000004")
D = make_credit_code("630103", "DC0000005")
X = make_credit_code("620102", "DC0000006")  # 甘肃, never registered


def with_methods(d, methods: dict[int, str]):
    """Give the draft's lines sheet row numbers, and 转出 rows (by index) their 拟利用处置方式."""
    d.stocks = [replace(s, ref=SourceRef("产生贮存", i + 2, None, None)) for i, s in enumerate(d.stocks)]
    d.treatments = [replace(t, ref=SourceRef("利用处置", i + 2, None, None)) for i, t in enumerate(d.treatments)]
    d.transfers = [replace(t, planned_method=methods.get(i), ref=SourceRef("转出", i + 2, None, None))
                   for i, t in enumerate(d.transfers)]
    return d


def q1_drafts():
    return [
        with_methods(draft(A, "2025-01", stocks=[(W, 1, 2, "0.5"), (OIL, 0, 1, 1)], out=[(W, R, "2.5")]), {0: "D10"}),
        with_methods(draft(A, "2025-02", stocks=[(W, "0.5", "1.5", 0), (OIL, 1, "0.5", "0.5")],
                           out=[(W, R, 1), (W, X, 1), (OIL, R, 1)]), {0: "D10", 1: "R9", 2: "D10"}),
        with_methods(draft(A, "2025-03", stocks=[(W, 0, "0.5", "0.5"), (OIL, "0.5", 0, 0)], out=[(OIL, R, "0.5")]),
                     {0: "D10"}),
    ]


@pytest.fixture
def city(uow_factory):
    with uow_factory() as uow:
        for code, district, roles, permits in (
            (A, "630102", ["producer"], []), (B, "630105", ["producer"], []),
            (R, "630104", ["disposer"], [{"number": "P-HW-001", "waste_codes": ["HW49", "HW08"], "methods": ["D10"],
                                          "capacity_t": "5000", "valid_from": date(2024, 1, 1),
                                          "valid_to": date(2026, 12, 31)}]),
            (C, "630103", ["producer"], []), (D, "630103", ["producer"], []),
        ):
            registry.register_unit(uow=uow, actor=SYSTEM, data={"credit_code": code, "name": f"单位{code[-4:]}",
                                                                "district": district, "roles": roles,
                                                                "permits": permits})
    with uow_factory() as uow:
        store_all(uow.session, [
            draft(A, "2022-03", stocks=[(W, 0, 8, 0)], out=[(W, R, 8)]),
            draft(A, "2023-03", stocks=[(W, 0, 40, 0)], out=[(W, R, 40)]),
            draft(A, "2024-03", stocks=[(W, 0, 120, 0)], out=[(W, R, 120)]),
            draft(B, "2024-05", stocks=[(W, 0, 2, 0)], out=[(W, R, "1.5")], treat=[(W, "D10", "0.5")]),
            draft(C, "2024-06", stocks=[(OIL, 0, 50, 0)], out=[(OIL, R, 50)]),
            draft(D, "2024-06", stocks=[(OIL, 0, 3, 0)], out=[(OIL, R, 3)]),
            *q1_drafts(),
        ])
    return uow_factory


def tier(uf, code: str, year: int, actor: Actor = SYSTEM) -> dict:
    with uf() as uow:
        return svc.unit_tier(uow=uow, actor=actor, credit_code=code, year=year)


def decl(uf, code: str, period: str, actor: Actor = SYSTEM) -> dict:
    with uf() as uow:
        return build_declaration(uow=uow, actor=actor, credit_code=code, period=parse_period(period))


# --- tiers -------------------------------------------------------------------------------------
def test_a_unit_crossing_10_and_100_t_takes_the_three_year_maximum(city):
    t22 = tier(city, A, 2022)
    assert (t22["tier"], t22["figures"]["basis"], t22["figures"]["annual_t"]) == ("registration", "current_year", "8.000")
    t23 = tier(city, A, 2023)
    assert (t23["tier"], t23["figures"]["basis"], t23["figures"]["annual_t"]) == ("registration", "operating_years", "8.000")
    t24 = tier(city, A, 2024)
    assert (t24["tier"], t24["tier_zh"], t24["figures"]["annual_t"]) == ("simplified", "简化管理", "40.000")
    assert "40.000 吨" in t24["reason"] and "≥ 10 吨" in t24["reason"]
    t25 = tier(city, A, 2025)
    assert (t25["tier"], t25["figures"]["basis"], t25["figures"]["annual_t"]) == ("key", "last_three_years", "120.000")
    assert [y["year"] for y in t25["figures"]["years"]] == [2022, 2023, 2024]
    assert "2024 年" in t25["reason"] and "≥ 100 吨" in t25["reason"]
    assert tier(city, A, 2027)["tier"] == "key"  # 2024 still inside 2024–2026
    t28 = tier(city, A, 2028)
    assert (t28["tier"], t28["figures"]["annual_t"]) == ("registration", "5.500")  # 2025 only: 2 + 1 + 1.5 + .5 + .5


def test_own_facility_and_licence_make_a_key_unit_whatever_the_amount(city):
    b = tier(city, B, 2025)
    assert (b["tier"], b["figures"]["rule"], b["figures"]["own_methods"]) == ("key", "own_facility", ["D10"])
    assert b["figures"]["annual_t"] == "2.000"
    r = tier(city, R, 2025)
    assert (r["tier"], r["figures"]["rule"], r["figures"]["licences"]) == ("key", "licence", ["P-HW-001"])
    with pytest.raises(NotFound) as e:
        tier(city, R, 2028)  # the permit expired in 2026 and R never generated anything
    assert e.value.code == "no_hazardous_waste"
    assert tier(city, C, 2025)["tier"] == "simplified"
    assert tier(city, D, 2025)["tier"] == "registration"


def test_a_regulator_of_the_district_overrides_with_a_reason_and_it_is_audited(city):
    reg = Actor("regulator", "城东局", district="630102")
    with city() as uow:
        out = svc.override_tier(uow=uow, actor=reg, credit_code=A, year=2025, tier="simplified", reason="现场核查")
    assert out["tier"] == "simplified" and "现场核查" in out["reason"] and "4.2.2" in out["reason"]
    assert out["figures"]["computed"]["tier"] == "key" and out["figures"]["override"]["tier"] == "simplified"
    assert tier(city, A, 2025)["tier"] == "simplified"
    with city() as uow:
        a = uow.session.execute(select(AuditRow).where(AuditRow.action == "tier.override")).scalar_one()
        assert a.object == f"unit:{A}" and a.detail["before"] == "key" and a.district == "630102"
    with city() as uow:  # the calendar follows the override: quarters, not months
        cal = svc.unit_calendar(uow=uow, actor=reg, credit_code=A, year=2025, today=date(2025, 5, 1))
    assert [i["period"] for i in cal["items"]] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2025"]
    with city() as uow:
        svc.clear_tier_override(uow=uow, actor=reg, credit_code=A, year=2025)
    assert tier(city, A, 2025)["tier"] == "key"
    with city() as uow:
        assert uow.session.execute(select(AuditRow).where(AuditRow.action == "tier.override_clear")).scalar_one()


def test_overrides_are_refused_to_enterprises_other_districts_and_without_reason(city):
    with city() as uow, pytest.raises(PermissionDenied):
        svc.override_tier(uow=uow, actor=Actor("enterprise", units=frozenset({A})), credit_code=A, year=2025,
                          tier="registration", reason="我们很小")
    with city() as uow, pytest.raises(NotFound):
        svc.override_tier(uow=uow, actor=Actor("regulator", district="630105"), credit_code=A, year=2025,
                          tier="registration", reason="x")
    with city() as uow, pytest.raises(InputRejected) as e:
        svc.override_tier(uow=uow, actor=SYSTEM, credit_code=A, year=2025, tier="registration", reason="  ")
    assert e.value.problems[0].field == "reason"
    assert tier(city, A, 2025)["tier"] == "key"


# --- declaration tables ------------------------------------------------------------------------
def test_the_quarterly_table_is_the_sum_of_its_months_worked_by_hand(city):
    d = decl(city, A, "2025-Q1")
    assert (d["table"], d["months"], d["missing_months"]) == ("C.2", ["2025-01", "2025-02", "2025-03"], [])
    rows = {r["code"]: r for r in d["rows"]}
    assert list(rows) == [W, OIL] or sorted(rows) == sorted([W, OIL])
    w = rows[W]
    assert set(w) == {"code", "name", "category", "hazard", "generated_t", "own", "entrusted", "stock_open_t",
                      "stock_close_t", "gaps"}
    assert (w["category"], w["hazard"]) == ("HW49", "T/In")
    assert (w["generated_t"], w["stock_open_t"], w["stock_close_t"]) == (Decimal("4.000"), Decimal("1.000"),
                                                                         Decimal("0.500"))
    assert w["own"] == []
    assert w["entrusted"] == sorted([
        {"receiver": R, "receiver_name": f"单位{R[-4:]}", "province": "青海省", "licence": "P-HW-001",
         "method": "D10", "qty_t": Decimal("3.500")},
        {"receiver": X, "receiver_name": "", "province": "甘肃省", "licence": None, "method": "R9",
         "qty_t": Decimal("1.000")}], key=lambda x: x["receiver"])
    gaps = {g["field"]: g for g in w["gaps"]}
    i_x = [x["receiver"] for x in w["entrusted"]].index(X)
    assert {"harmful_components", "form", f"entrusted[{i_x}].licence", f"entrusted[{i_x}].receiver_name"} <= set(gaps)
    assert "未在 nofei 登记" in gaps[f"entrusted[{i_x}].licence"]["reason"]
    o = rows[OIL]
    assert (o["generated_t"], o["stock_open_t"], o["stock_close_t"]) == (Decimal("1.500"), Decimal("0.000"),
                                                                         Decimal("0.000"))
    assert o["entrusted"][0]["qty_t"] == Decimal("1.500") and o["entrusted"][0]["licence"] == "P-HW-001"
    for r in d["rows"]:  # each waste balances: open + generated − own − entrusted = close (nothing received)
        out = sum((x["qty_t"] for x in r["entrusted"]), Decimal(0)) + sum((x["qty_t"] for x in r["own"]), Decimal(0))
        assert r["stock_open_t"] + r["generated_t"] - out == r["stock_close_t"]


def test_totals_of_c1_c2_c3_equal_the_sums_of_their_ledgers_and_trace_back_to_rows(city):
    drafts = q1_drafts()
    for period, months in (("2025-02", ["2025-02"]), ("2025-Q1", ["2025-01", "2025-02", "2025-03"]),
                           ("2025", ["2025-01", "2025-02", "2025-03"])):
        d = decl(city, A, period)
        src = [x for x in drafts if x.month in months]
        gen = sum(s.generated_kg for x in src for s in x.stocks)
        out = sum(t.qty_kg for x in src for t in x.transfers if t.direction == "out")
        assert d["totals"]["generated_t"] == Decimal(gen) / 1000
        assert d["totals"]["entrusted_t"] == Decimal(out) / 1000
        # every figure is the sum of the ledger rows listed for it
        for r in d["rows"]:
            def traced(field: str, code: str = r["code"]) -> Decimal:
                return sum((t["qty_t"] for t in d["trace"] if t["code"] == code and t["field"] == field), Decimal(0))
            assert traced("generated_t") == r["generated_t"]
            for i, x in enumerate(r["entrusted"]):
                assert traced(f"entrusted[{i}].qty_t") == x["qty_t"]
        assert {t["sheet"] for t in d["trace"]} == {"产生贮存", "转出"}
        assert all(t["row"] is not None and t["month"] in months for t in d["trace"])
    year = decl(city, A, "2025")
    assert year["table"] == "C.3" and year["missing_months"] == [f"2025-{m:02d}" for m in range(4, 13)]
    assert any(g["field"] == "stock_close_t" for r in year["rows"] for g in r["gaps"])


def test_opening_and_closing_stocks_chain_across_months(city):
    prev = None
    for m in ("2025-01", "2025-02", "2025-03"):
        d = decl(city, A, m)
        assert d["table"] == "C.1"
        rows = {r["code"]: r for r in d["rows"]}
        if prev is not None:
            for code in rows:
                assert rows[code]["stock_open_t"] == prev[code]["stock_close_t"], (m, code)
                assert not any(g["field"] == "stock_open_t" for g in rows[code]["gaps"])
        prev = rows
    assert decl(city, A, "2025-Q1")["rows"][0]["stock_open_t"] == decl(city, A, "2025-01")["rows"][0]["stock_open_t"]


def test_an_amendment_changes_the_declaration(city):
    before = decl(city, A, "2025-Q1")
    with city() as uow:
        store(uow.session, with_methods(draft(A, "2025-03", stocks=[(W, 0, "1.5", "1.5"), (OIL, "0.5", 0, 0)],
                                              out=[(OIL, R, "0.5")]), {0: "D10"}))
        uow.commit()
    after = decl(city, A, "2025-Q1")
    w0 = next(r for r in before["rows"] if r["code"] == W)
    w1 = next(r for r in after["rows"] if r["code"] == W)
    assert (w0["generated_t"], w1["generated_t"]) == (Decimal("4.000"), Decimal("5.000"))
    assert (w0["stock_close_t"], w1["stock_close_t"]) == (Decimal("0.500"), Decimal("1.500"))
    assert [x["version"] for x in after["ledgers"] if x["month"] == "2025-03"] == [2]


def test_a_foreign_caller_cannot_read_a_declaration(city):
    with pytest.raises(NotFound):
        decl(city, A, "2025-Q1", Actor("enterprise", units=frozenset({C})))
    with pytest.raises(NotFound):
        decl(city, A, "2025-Q1", Actor("regulator", district="630105"))
    assert decl(city, A, "2025-Q1", Actor("regulator", district="630102"))["unit"] == A


def test_a_credit_code_typed_in_full_width_or_with_spaces_is_the_same_unit(city):
    """The declaration and the licensed report look units up by nofei.domain.units.normalise_credit_code."""
    from reports.licensed import build_licensed_report

    full_width = "".join(chr(ord(c) + 0xFEE0) for c in A)  # ９１６３… as an IME types it
    assert full_width != A
    for typed in (full_width, f" {A[:6]} {A[6:].lower()} "):
        d = decl(city, typed, "2025-Q1")
        assert d["unit"] == A and d["totals"] == decl(city, A, "2025-Q1")["totals"]
    with city() as uow, pytest.raises(NotFound) as e:  # found (not unknown_unit), but not licensed
        build_licensed_report(uow=uow, actor=SYSTEM, credit_code=full_width, year=2025)
    assert e.value.code == "not_licensed"


# --- the calendar ------------------------------------------------------------------------------
def _uploaded(uf, code: str, month: str, when: datetime) -> None:
    with uf() as uow:
        uid = uow.session.execute(select(UnitRow.id).where(UnitRow.credit_code == code)).scalar_one()
        uow.session.execute(update(LedgerRow).where(LedgerRow.unit_id == uid, LedgerRow.month == month)
                            .values(uploaded_at=when))
        uow.commit()


def test_deadlines_and_lateness_of_a_key_unit(city):
    _uploaded(city, A, "2025-01", datetime(2025, 2, 10, 2, 0, tzinfo=UTC))   # before 15 Feb
    _uploaded(city, A, "2025-02", datetime(2025, 3, 20, 2, 0, tzinfo=UTC))   # after 15 Mar
    _uploaded(city, A, "2025-03", datetime(2025, 4, 15, 15, 0, tzinfo=UTC))  # 23:00 on 15 Apr in China: on time
    with city() as uow:
        cal = svc.unit_calendar(uow=uow, actor=SYSTEM, credit_code=A, year=2025, today=date(2025, 5, 20))
    items = {i["period"]: i for i in cal["items"]}
    assert len(cal["items"]) == 13 and cal["tier"] == "key"
    assert items["2025-01"]["deadline"] == date(2025, 2, 15) and items["2025-12"]["deadline"] == date(2026, 1, 15)
    assert items["2025"]["deadline"] == date(2026, 3, 31)
    assert [items[m]["status"] for m in ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05")] == \
        ["ready", "late_ready", "ready", "late", "not_due"]
    assert [i["period"] for i in cal["late"]] == ["2025-04"] and cal["late_count"] == 1
    assert [i["period"] for i in cal["next"]] == ["2025-05", "2025-06", "2025-07"]
    _uploaded(city, A, "2025-03", datetime(2025, 4, 15, 16, 30, tzinfo=UTC))  # 00:30 on 16 Apr: late
    with city() as uow:
        cal = svc.unit_calendar(uow=uow, actor=SYSTEM, credit_code=A, year=2025, today=date(2025, 5, 20))
    assert {i["period"]: i["status"] for i in cal["items"]}["2025-03"] == "late_ready"


def test_quarterly_and_annual_deadlines_of_simplified_and_registration_units(city):
    for m in ("2025-01", "2025-02", "2025-03"):
        with city() as uow:
            store(uow.session, draft(C, m, stocks=[(OIL, 0, 1, 0)], out=[(OIL, R, 1)]))
            uow.commit()
        _uploaded(city, C, m, datetime(2025, int(m[5:]) + 1, 5, tzinfo=UTC))
    with city() as uow:
        on_10 = svc.unit_calendar(uow=uow, actor=SYSTEM, credit_code=C, year=2025, today=date(2025, 7, 10))
        on_16 = svc.unit_calendar(uow=uow, actor=SYSTEM, credit_code=C, year=2025, today=date(2025, 7, 16))
        d = svc.unit_calendar(uow=uow, actor=SYSTEM, credit_code=D, year=2025, today=date(2026, 4, 1))
    q = {i["period"]: i for i in on_10["items"]}
    assert list(q) == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2025"]
    assert (q["2025-Q1"]["deadline"], q["2025-Q2"]["deadline"], q["2025-Q4"]["deadline"]) == \
        (date(2025, 4, 15), date(2025, 7, 15), date(2026, 1, 15))
    assert (q["2025-Q1"]["status"], q["2025-Q2"]["status"]) == ("ready", "open")
    assert {i["period"]: i["status"] for i in on_16["items"]}["2025-Q2"] == "late"
    assert [(i["period"], i["deadline"], i["status"]) for i in d["items"]] == [("2025", date(2026, 3, 31), "late")]


def test_the_regulator_sees_who_is_late_in_its_district_only(city):
    with city() as uow:
        mine = svc.declaration_status(uow=uow, actor=Actor("regulator", district="630103"), year=2025,
                                      today=date(2025, 7, 16))
        everyone = svc.declaration_status(uow=uow, actor=SYSTEM, year=2025, today=date(2025, 7, 16))
    assert [g["district"] for g in mine["districts"]] == ["630103"]
    assert sorted(u["unit"] for u in mine["districts"][0]["units"]) == sorted([C, D])
    # C owes Q1 and Q2 (no 2025 ledger): late; D owes only the annual one: not due
    assert mine["late_units"] == 1 and mine["districts"][0]["late"] == 2
    assert {g["district"] for g in everyone["districts"]} == {"630102", "630103", "630104", "630105"}
    with city() as uow, pytest.raises(PermissionDenied):
        svc.declaration_status(uow=uow, actor=Actor("regulator", district="630103"), year=2025, district="630102")


# --- 管理计划 pre-fill -------------------------------------------------------------------------------
def plan(uf, code: str, year: int) -> dict:
    from reports.plans import build_plan

    with uf() as uow:
        return build_plan(uow=uow, actor=SYSTEM, credit_code=code, year=year,
                          tier=svc.unit_tier(uow=uow, actor=SYSTEM, credit_code=code, year=year))


def test_the_plan_is_prefilled_from_last_years_actuals_with_the_tables_of_the_tier(city):
    a = plan(city, A, 2026)  # key (120 t in 2024), from the 2025 ledgers
    assert (a["tier"], a["based_on"], list(a["tables"])) == ("key", "2025", ["A.3", "A.4", "A.5", "A.7"])
    assert {r["code"]: r["planned_t"] for r in a["tables"]["A.3"]} == {W: Decimal("4.000"), OIL: Decimal("1.500")}
    assert {r["code"]: r["last_close_t"] for r in a["tables"]["A.4"]} == {W: Decimal("0.500"), OIL: Decimal("0.000")}
    assert a["tables"]["A.5"] == []
    assert sorted((r["code"], r["receiver"], r["method"], r["planned_t"], r["licence"]) for r in a["tables"]["A.7"]) == \
        sorted([(W, R, "D10", Decimal("3.500"), "P-HW-001"), (W, X, "R9", Decimal("1.000"), None),
                (OIL, R, "D10", Decimal("1.500"), "P-HW-001")])
    b = plan(city, B, 2025)
    assert [(r["method"], r["last_t"]) for r in b["tables"]["A.5"]] == [("D10", Decimal("0.500"))]
    assert list(plan(city, D, 2025)["tables"]) == ["A.3", "A.7"]
    assert list(plan(city, C, 2025)["tables"]) == ["A.3", "A.4", "A.7"]


# --- 持证单位经营情况年报 -------------------------------------------------------------------------------
def test_the_licensed_units_annual_report_against_its_permit(city):
    """R receives 2.5 t of W in January, incinerates 1.5 t (D10, its permit) and recovers 0.5 t by R9 (not on
    its permit), keeping 0.5 t; in February it receives 1 t of OIL and incinerates it."""
    from reports.licensed import build_licensed_report

    with city() as uow:
        store_all(uow.session, [
            draft(R, "2025-01", stocks=[(W, 0, 0, "0.5")], into=[(W, A, "2.5")], treat=[(W, "D10", "1.5"),
                                                                                       (W, "R9", "0.5")]),
            draft(R, "2025-02", stocks=[(W, "0.5", 0, "0.5"), (OIL, 0, 0, 0)], into=[(OIL, A, 1)],
                  treat=[(OIL, "D10", 1)]),
        ])
    with city() as uow:
        rep = build_licensed_report(uow=uow, actor=SYSTEM, credit_code=R, year=2025)
    rows = {r["code"]: r for r in rep["rows"]}
    w = rows[W]
    assert (w["received_t"], w["disposed_t"], w["utilised_t"], w["stock_open_t"], w["stock_close_t"]) == \
        (Decimal("2.500"), Decimal("1.500"), Decimal("0.500"), Decimal("0.000"), Decimal("0.500"))
    assert w["disposed"] == [{"method": "D10", "qty_t": Decimal("1.500")}] and w["senders"] == 1
    assert rows[OIL]["received_t"] == Decimal("1.000")
    (p,) = rep["permits"]
    assert (p["number"], p["capacity_t"], p["used_t"], p["use_pct"]) == ("P-HW-001", Decimal("5000.000"),
                                                                         Decimal("2.500"), Decimal("0.05"))
    assert [(u["code"], u["method"], u["qty_t"]) for u in rep["uncovered"]] == [(W, "R9", Decimal("0.500"))]
    assert rep["deadline"] == date(2026, 3, 31) and rep["totals"]["received_t"] == Decimal("3.500")
    with city() as uow, pytest.raises(NotFound) as e:
        build_licensed_report(uow=uow, actor=SYSTEM, credit_code=A, year=2025)
    assert e.value.code == "not_licensed"


def test_the_city_publication_is_a_section_of_the_annual_report(uow_factory):
    """The hand-worked small city of tests/flowfactory.py: 工业危险废物 generated 10 (P3) + 20 (P4) = 30 t, 医疗废物
    10 t (H); the section repeats the report's own region totals."""
    from reports.annual import build_annual_report
    from tests.flowfactory import CITY_UNITS, add_unit, small_city

    with uow_factory() as uow:
        for code, district, park, roles in CITY_UNITS:
            add_unit(uow.session, code, district, park=park, roles=roles)
        store_all(uow.session, small_city())
    rep = build_annual_report(uow=uow_factory(), actor=SYSTEM, year=2025, region="630100")
    pub = rep["publication"]
    assert pub["title"] == "西宁市 2025 年固体废物污染环境防治信息"
    items = {i["stream"]: i["values"] for i in pub["items"]}
    assert list(items) == ["general_industrial", "hazardous", "medical"]
    assert items["hazardous"]["generated"] == 30 and items["medical"]["generated"] == 10
    assert "utilised" not in items["medical"]
    region = {r["stream"]: r for r in rep["tonnage"] if r["level"] == "region"}
    for stream, values in items.items():
        assert all(values[k] == region[stream][f"{k}_t"] for k in values)
    from reports.excel import write_annual_xlsx
    from reports.html import render_annual_html

    assert "防治信息" in load_workbook(io.BytesIO(write_annual_xlsx(rep))).sheetnames
    assert "固体废物污染环境防治信息" in render_annual_html(rep)


def test_form_and_harmful_components_come_from_the_optional_columns_of_the_latest_month(city):
    feb = q1_drafts()[1]
    feb.stocks = [replace(s, form="固态", harmful_components="矿物油") if s.code == W else s for s in feb.stocks]
    with city() as uow:
        store(uow.session, feb)  # an amendment of February that fills the two columns for W
        uow.commit()
    d = decl(city, A, "2025-Q1")
    assert d["identity"][W] == {"harmful_components": "矿物油", "form": "固态"}
    assert d["identity"][OIL] == {"harmful_components": None, "form": None}
    w = next(r for r in d["rows"] if r["code"] == W)
    assert not {"form", "harmful_components"} & {g["field"] for g in w["gaps"]}
    src = [t for t in d["trace"] if t["code"] == W and t["field"] == "form"]
    assert [(t["month"], t["version"], t["sheet"]) for t in src] == [("2025-02", 2, "产生贮存")]
    from reports.declarations_xlsx import write_declaration_xlsx

    cells = [c.value for row in load_workbook(io.BytesIO(write_declaration_xlsx(d)))["表C.2"].iter_rows() for c in row]
    assert "固态" in cells and "矿物油" in cells


def test_a_unit_registered_as_licensed_is_a_key_unit_without_a_permit_row(city):
    """D generated 3 t (登记); once the registry says it is a 持证经营单位 (unit_type licensed) it is 重点."""
    assert tier(city, D, 2025)["tier"] == "registration"
    with city() as uow:
        registry.update_unit(uow=uow, actor=SYSTEM, credit_code=D, data={"unit_type": "licensed"})
    got = tier(city, D, 2025)
    assert (got["tier"], got["figures"]["rule"], got["figures"]["licences"]) == ("key", "licence", ["登记为持证经营单位"])
