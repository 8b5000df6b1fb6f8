"""Issue 18: the indicators as the official definitions state them (indicators.md §3), on a small city
worked by hand — an industrial and a social-source producer, a licensed unit's own waste, a 地膜 and a 棚膜
user, a clinic with ≤ 19 beds, two hospitals of which one ships to a licensed disposer, exempt 转出 rows.

Every expected figure is derived in the comments from the ledgers below; the same city is computed from the
drafts (pure) and from the database (SQL loader, registry types, permits and the statistics table).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.flows.fate import attribute
from nofei.flows.indicators import NEEDED_STREAMS, compute
from nofei.flows.model import UnitInfo, data_from_drafts
from nofei.storage.tables import PermitRow, StatisticRow, UnitRow
from reports import indicators as uc
from tests.flowfactory import add_unit, cc, draft, store_all

CAT = Catalogue.default()
ADMIN = Actor(role="admin", name="t")

OIL, BATT, AUTO, RESID, MED = "900-041-49", "900-052-31", "900-214-08", "772-003-18", "841-001-01"
I1, S1, HC = cc(201, "630102"), cc(202, "630103"), cc(203, "630104")
FU1, FU2, FR = cc(204, "630121"), cc(205, "630121"), cc(206, "630121")
CL, H1, H2, MD = cc(207, "630102"), cc(208, "630103"), cc(209, "630103"), cc(210, "630106")

# credit code, district, unit_type, small clinic
UNITS18 = [(I1, "630102", "industrial", False), (S1, "630103", "social_source", False),
           (HC, "630104", "licensed", False), (FU1, "630121", "industrial", False),
           (FU2, "630121", "industrial", False), (FR, "630121", "industrial", False),
           (CL, "630102", "medical_institution", True), (H1, "630103", "medical_institution", False),
           (H2, "630103", "medical_institution", False), (MD, "630106", "licensed", False)]


def city18() -> list:
    return [
        # industrial: 100 t SW01 utilised on site; 10 t of HW49 to the licensed HC (联单), 2 t of undamaged lead
        # batteries to HC with no 联单 (豁免清单 item 18: transport exempt)
        draft(I1, "2025-03", stocks=[("SW01", 0, 100, 0), (OIL, 0, 10, 0), (BATT, 0, 2, 0)],
              treat=[("SW01", "R5", 100)], out=[(OIL, HC, 10, "20250300000011"), (BATT, HC, 2)]),
        # social source (汽修): 4 t of waste oil to HC, the 联单编号 forgotten (not exempt: it counts as missing)
        draft(S1, "2025-03", stocks=[(AUTO, 0, 4, 0)], out=[(AUTO, HC, 4)]),
        # licensed HC: utilises what it receives and landfills 2 t of its own residues (its own waste = industrial)
        draft(HC, "2025-03", stocks=[(OIL, 0, 0, 0), (BATT, 0, 0, 0), (AUTO, 0, 0, 0), (RESID, 0, 2, 0)],
              into=[(OIL, I1, 10, "20250300000011"), (BATT, I1, 2), (AUTO, S1, 4)],
              treat=[(OIL, "R9", 10), (BATT, "R4", 2), (AUTO, "R9", 4), (RESID, "D1", 2)]),
        # film: 40 t 地膜 used, 30 t recovered; 20 t 棚膜 used, 5 t recovered
        draft(FU1, "2025-05", stocks=[("NM01", 0, 40, 10)], out=[("NM01", FR, 30)]),
        draft(FU2, "2025-05", stocks=[("NM02", 0, 20, 15)], out=[("NM02", FR, 5)]),
        draft(FR, "2025-05", stocks=[("NM01", 0, 0, 0), ("NM02", 0, 0, 0)], into=[("NM01", FU1, 30), ("NM02", FU2, 5)],
              treat=[("NM01", "R5", 30), ("NM02", "R5", 5)]),
        # medical: the clinic (≤ 19 beds) ships 1 t to MD without a 联单 (exempt); H1 ships 6 t with one; H2
        # burns its 3 t itself and holds no permit
        draft(CL, "2025-04", stocks=[(MED, 0, 1, 0)], out=[(MED, MD, 1)]),
        draft(H1, "2025-04", stocks=[(MED, 0, 6, 0)], out=[(MED, MD, 6, "20250400000021")]),
        draft(H2, "2025-04", stocks=[(MED, 0, 3, 0)], treat=[(MED, "Y10", 3)]),
        draft(MD, "2025-04", stocks=[(MED, 0, 0, 0)], into=[(MED, CL, 1), (MED, H1, 6, "20250400000021")],
              treat=[(MED, "Y10", 7)]),
    ]


def _check(f: dict) -> None:
    # general industrial G = 100 t; 100 / 1000 万元 = 0.1000 (no target)
    assert f["general_industrial_intensity"].value == Decimal("0.1000")
    assert f["general_industrial_intensity"].target is None
    # industrial HW: I1 10 + 2, HC's own 2 = 14 t (S1's 4 t are social source) → (100 + 14) / 1000 = 0.1140 ≤ 0.87
    isw = f["industrial_solid_waste_intensity"]
    assert (isw.value, isw.numerator, isw.denominator) == (Decimal("0.1140"), Decimal("114.000"), Decimal("1000"))
    assert isw.target == Decimal("0.87") and isw.meets_target is True
    # industrial HW: U = 10 (R9 at HC) + 2 (R4 at HC) = 12 of G 14 → 85.714… → 85.71 %; (U + D) = 12 + 2 → 100 %
    # (counting the social-source 4 t as before would give 16 / 18 = 88.89 %)
    hu = f["hazardous_utilisation_rate"]
    assert (hu.value, hu.numerator, hu.denominator) == (Decimal("85.71"), Decimal("12.000"), Decimal("14.000"))
    assert hu.units == {I1, HC}
    assert f["hazardous_utilisation_disposal_rate"].value == Decimal("100.00")
    # beside, not inside: S1's 4 t, all utilised at HC → 100 %
    side = hu.beside["social_source"]
    assert (side["generated_t"], side["utilised_t"], side["value"]) == (Decimal("4.000"), Decimal("4.000"),
                                                                         Decimal("100.00"))
    # film: 地膜 30 / 40 = 75.00 % (the plan's 农田残膜回收率, target ≥ 90: not met); 棚膜 5 / 20 = 25.00 %
    # (both together, as before: 35 / 60 = 58.33 %)
    fm = f["agricultural_film_recovery_rate"]
    assert (fm.value, fm.numerator, fm.denominator, fm.meets_target) == (Decimal("75.00"), Decimal("30.000"),
                                                                         Decimal("40.000"), False)
    assert fm.units == {FU1}
    gh = f["greenhouse_film_recovery_rate"]
    assert (gh.value, gh.units) == (Decimal("25.00"), {FU2})
    # medical, local tonnage figure: 1 + 6 of 10 t treated elsewhere → 70.00 %
    assert f["medical_central_disposal_rate"].value == Decimal("70.00")
    # manifests: I1's HW49 row (good), S1's row (missing), H1's row (good); I1's batteries and the clinic's row
    # are exempt at the transport stage and left out of both terms → 2 / 3 = 66.67 % (was 2 / 5 = 40.00 %)
    mr = f["manifest_execution_rate"]
    assert (mr.value, mr.numerator, mr.denominator) == (Decimal("66.67"), 2, 3)


def _figures_from_drafts(units: dict, medical_institutions: int | None) -> dict:
    streams = {}
    for s in NEEDED_STREAMS:
        d = data_from_drafts(enumerate(city18(), start=1), stream=s, year=2025, catalogue=CAT, units=units)
        streams[s] = (d, attribute(d))
    figs = compute(streams, region="630100", year=2025, catalogue=CAT, value_added=Decimal("1000"),
                   medical_institutions=medical_institutions, hw01_holders={MD})
    return {x.key: x for x in figs}


def test_the_official_indicators_by_hand_from_the_drafts():
    units = {u: UnitInfo(u, "", d, None, ("producer",), t, clinic) for u, d, t, clinic in UNITS18}
    f = _figures_from_drafts(units, 5)
    _check(f)
    # coverage ★: CL and H1 shipped to MD (HW01 permit); H2 did not → 2 of the 5 institutions entered = 40.00 %
    cov = f["medical_collection_coverage_rate"]
    assert (cov.value, cov.numerator, cov.denominator, cov.units) == (Decimal("40.00"), 2, 5, {CL, H1})
    assert f["medical_collection_coverage_rate"].note is None
    # no total entered: null with a note
    cov = _figures_from_drafts(units, None)["medical_collection_coverage_rate"]
    assert cov.value is None and "not entered" in (cov.note or "")


def test_without_the_clinic_mark_its_row_needs_a_manifest():
    # the same clinic not marked ≤ 19 beds: its 转出 without 联单 counts → 2 / 4 = 50.00 %
    units = {u: UnitInfo(u, "", d, None, ("producer",), t, False) for u, d, t, _c in UNITS18}
    mr = _figures_from_drafts(units, 5)["manifest_execution_rate"]
    assert (mr.value, mr.denominator) == (Decimal("50.00"), 4)


@pytest.fixture
def city(uow_factory):
    with uow_factory() as uow:
        for u, d, t, clinic in UNITS18:
            add_unit(uow.session, u, d, unit_type=t, small_clinic=clinic)
        uow.session.flush()
        md_id = uow.session.execute(select(UnitRow.id).where(UnitRow.credit_code == MD)).scalar_one()
        uow.session.add(PermitRow(unit_id=md_id, number="青危废 001", waste_codes=["HW01"], methods=["Y10"],
                                  capacity_kg=10_000_000, valid_from=date(2024, 1, 1), valid_to=date(2026, 12, 31)))
        uow.session.add(StatisticRow(year=2025, region="630100", industrial_value_added="1000", medical_institutions=5,
                                     updated_at=datetime.now(UTC)))
        store_all(uow.session, city18())


def test_the_official_indicators_by_hand_from_the_database(uow_factory, city):
    res = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    by = {i["key"]: i for i in res["indicators"]}
    assert by["industrial_solid_waste_intensity"]["value"] == 0.114
    assert by["hazardous_utilisation_rate"]["value"] == 85.71
    assert by["hazardous_utilisation_rate"]["beside"]["social_source"] == {
        "generated_t": 4.0, "utilised_t": 4.0, "disposed_t": 0.0, "value": 100.0}
    assert (by["agricultural_film_recovery_rate"]["value"], by["greenhouse_film_recovery_rate"]["value"]) == (75.0, 25.0)
    assert (by["medical_collection_coverage_rate"]["value"], by["medical_collection_coverage_rate"]["numerator"],
            by["medical_collection_coverage_rate"]["denominator"]) == (40.0, 2.0, 5.0)
    assert (by["manifest_execution_rate"]["numerator"], by["manifest_execution_rate"]["denominator"]) == (2.0, 3.0)
    # the lineage names the same units as the figure
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="medical_collection_coverage_rate", year=2025)
    assert {u["credit_code"] for u in lin["units"] if u["producer"]} == {CL, H1}
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="hazardous_utilisation_rate", year=2025)
    assert {u["credit_code"] for u in lin["units"] if u["producer"]} == {I1, HC}
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="industrial_solid_waste_intensity", year=2025)
    prod = {u["credit_code"]: u["numerator"] for u in lin["units"] if u["producer"]}
    assert prod == {I1: 112.0, HC: 2.0}
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="greenhouse_film_recovery_rate", year=2025)
    assert {u["credit_code"] for u in lin["units"] if u["producer"]} == {FU2}


def test_a_permit_outside_the_year_does_not_cover(uow_factory, city):
    from sqlalchemy import update

    with uow_factory() as uow:
        uow.session.execute(update(PermitRow).values(valid_from=date(2026, 1, 1)))
        uow.commit()
    res = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    by = {i["key"]: i for i in res["indicators"]}
    assert by["medical_collection_coverage_rate"]["value"] == 0.0
