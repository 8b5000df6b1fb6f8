"""The indicator use cases on a real database: the hand-worked city stored as ledgers, amendments,
region access, the cache, lineage, fate table, balance (figures derived in tests/unit/test_flows.py)."""

from __future__ import annotations

import pytest

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.errors import InputRejected, NotFound, PermissionDenied
from nofei.flows.model import UnitInfo, data_from_drafts
from nofei.storage import flowdata
from nofei.storage.tables import StatisticRow
from reports import flows as flows_uc
from reports import indicators as uc
from tests.flowfactory import (
    CITY_UNITS,
    HW,
    KP,
    P1,
    P2,
    P3,
    P4,
    UNREG,
    C,
    F,
    R,
    add_unit,
    draft,
    small_city,
    store_all,
)

ADMIN = Actor(role="admin", name="t")


@pytest.fixture
def city(uow_factory):
    with uow_factory() as uow:
        for u, d, p, roles in CITY_UNITS:
            add_unit(uow.session, u, d, park=p, roles=roles)
        ids = store_all(uow.session, small_city())
    return ids


def values(res):
    return {i["key"]: i["value"] for i in res["indicators"]}


def test_the_stored_city_gives_the_hand_worked_figures(uow_factory, city):
    res = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    assert res["year"] == 2025 and res["region"] == "630100"
    v = values(res)
    assert v["general_industrial_utilisation_rate"] == 45.0
    assert v["general_industrial_storage_disposal"] == 220.0
    assert v["hazardous_utilisation_rate"] == 64.81
    assert v["hazardous_utilisation_disposal_rate"] == 78.57
    assert v["medical_central_disposal_rate"] == 80.0
    assert v["agricultural_film_recovery_rate"] == 60.0
    assert v["kitchen_waste_utilisation_rate"] == 70.0
    assert v["manifest_execution_rate"] == 50.0
    assert v["general_industrial_intensity"] is None
    row = next(i for i in res["indicators"] if i["key"] == "general_industrial_utilisation_rate")
    assert set(row) == {"key", "name", "value", "unit", "numerator", "denominator", "target", "meets_target",
                        "units_count", "ledgers_count", "note", "national", "scope", "beside"}
    assert (row["numerator"], row["denominator"], row["units_count"], row["ledgers_count"]) == (180.0, 400.0, 2, 5)
    assert (row["target"], row["meets_target"]) == (93.4, False)


def test_the_sql_loader_matches_the_pure_fold_of_the_drafts(uow_factory, city):
    units = {u: UnitInfo(u, f"单位{u[-6:]}", d, p, roles) for u, d, p, roles in CITY_UNITS}
    with uow_factory() as uow:
        for s in ("general_industrial", "hazardous", "medical", "agricultural_film", "kitchen_waste"):
            got = flowdata.load_stream_year(uow.session, s, 2025, uow.catalogue)
            want = data_from_drafts(zip(city, small_city(), strict=True), stream=s, year=2025,
                                    catalogue=Catalogue.default(), units=units)
            assert got.nodes == want.nodes
            assert got.manifest_rows == want.manifest_rows
            assert got.ledgers == want.ledgers


def test_intensity_uses_the_statistic_of_the_region(uow_factory, city):
    from datetime import UTC, datetime

    with uow_factory() as uow:
        uow.session.add(StatisticRow(year=2025, region="630100", industrial_value_added="8000",
                                     updated_at=datetime.now(UTC)))
        uow.commit()
    res = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    row = next(i for i in res["indicators"] if i["key"] == "general_industrial_intensity")
    # issue 18: the 0.87 target moved to industrial_solid_waste_intensity, which adds industrial HW
    assert (row["value"], row["numerator"], row["denominator"], row["meets_target"]) == (0.05, 400.0, 8000.0, None)
    row = next(i for i in res["indicators"] if i["key"] == "industrial_solid_waste_intensity")
    # (400 + 30) t / 8000 万元 = 0.05375 → 0.0538 ≤ 0.87: met
    assert (row["value"], row["numerator"], row["denominator"], row["meets_target"]) == (0.0538, 430.0, 8000.0, True)


def test_only_the_current_version_of_an_amended_ledger_counts(uow_factory, city):
    # P1 amends March: it now utilises 100 t itself instead of sending them to C.
    # C still reports receiving 100 from P1, but the graph follows P1's 转出 rows: none now.
    #   City GI: P1 U 100; P2 unchanged U 120 → U 220 / G 400 = 55.00 %.
    before = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    assert values(before)["general_industrial_utilisation_rate"] == 45.0
    with uow_factory() as uow:
        store_all(uow.session, [draft(P1, "2025-03", stocks=[("SW01", 0, 100, 0)], treat=[("SW01", "R5", 100)])])
    after = uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    assert values(after)["general_industrial_utilisation_rate"] == 55.0
    # the cache was rebuilt, and the old version no longer appears in the lineage
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="general_industrial_utilisation_rate",
                               year=2025, region="630102")
    (p1,) = [u for u in lin["units"] if u["credit_code"] == P1]
    assert [(x["version"], x["is_current"]) for x in p1["ledgers"]] == [(2, True)]
    assert (p1["numerator"], p1["denominator"]) == (100.0, 100.0)


def test_regions_and_who_may_see_them(uow_factory, city):
    reg = Actor(role="regulator", district="630103")
    v = values(uc.compute_indicators(uow=uow_factory(), actor=reg, year=2025, region="630103"))
    assert v["general_industrial_utilisation_rate"] == 40.0 and v["hazardous_utilisation_rate"] == 25.0
    assert values(uc.compute_indicators(uow=uow_factory(), actor=reg, year=2025, region="NANCHUAN"))[
        "general_industrial_utilisation_rate"] == 40.0
    with pytest.raises(PermissionDenied):
        uc.compute_indicators(uow=uow_factory(), actor=reg, year=2025, region="630102")
    with pytest.raises(PermissionDenied):
        uc.compute_indicators(uow=uow_factory(), actor=reg, year=2025, region="630100")
    ent = Actor(role="enterprise", units=frozenset({P2}))
    assert values(uc.compute_indicators(uow=uow_factory(), actor=ent, year=2025, region="630100"))[
        "kitchen_waste_utilisation_rate"] == 70.0
    with pytest.raises(PermissionDenied):
        uc.compute_indicators(uow=uow_factory(), actor=ent, year=2025, region="630103")
    with pytest.raises(PermissionDenied):
        uc.indicator_lineage(uow=uow_factory(), actor=ent, key="manifest_execution_rate", year=2025, region="630100")
    with pytest.raises(InputRejected):
        uc.compute_indicators(uow=uow_factory(), actor=ADMIN, year=2025, region="999999")


def test_lineage_names_units_ledgers_and_contributions(uow_factory, city):
    lin = uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="general_industrial_utilisation_rate",
                               year=2025, region="630100")
    by = {u["credit_code"]: u for u in lin["units"]}
    assert set(by) == {P1, P2, C, R, F}
    # producers carry the figure: 60 + 120 = 180 of 100 + 300 = 400
    assert (by[P1]["numerator"], by[P1]["denominator"]) == (60.0, 100.0)
    assert (by[P2]["numerator"], by[P2]["denominator"]) == (120.0, 300.0)
    # downstream: C handled 300 t of which 60 stayed stored; R utilised 180; F landfilled 60
    assert by[C]["producer"] is False and by[C]["handled_t"] == 300.0 and by[C]["realised_t"]["S"] == 60.0
    assert by[R]["realised_t"]["U"] == 180.0 and by[F]["realised_t"]["D"] == 60.0
    assert all(len(u["ledgers"]) == 1 for u in lin["units"])
    # a regulator of 630102 sees the ledgers of its units only
    reg = Actor(role="regulator", district="630102")
    lin = uc.indicator_lineage(uow=uow_factory(), actor=reg, key="general_industrial_utilisation_rate",
                               year=2025, region="630102")
    by = {u["credit_code"]: u for u in lin["units"]}
    assert by[P1]["ledgers"] and not by[C]["ledgers"] and by[C]["ledgers_hidden"] == 1
    with pytest.raises(NotFound):
        uc.indicator_lineage(uow=uow_factory(), actor=ADMIN, key="nope", year=2025, region="630100")


def test_fate_table_and_unresolved_transfers(uow_factory, city):
    res = uc.fate_table(uow=uow_factory(), actor=ADMIN, year=2025, stream="hazardous", region="630100")
    rows = {r["unit"]: r for r in res["producers"]}
    assert (rows[P3]["attributed_t"], rows[P3]["utilised_t"], rows[P3]["disposed_t"]) == (50.0, 30.0, 20.0)
    assert (rows[P4]["utilised_t"], rows[P4]["unresolved_t"]) == (5.0, 15.0)
    assert res["totals"]["unresolved_t"] == 15.0
    assert {(u["receiver"], u["tonnes"], u["receiver_registered"]) for u in res["unresolved_transfers"]} == {
        (UNREG, 10.0, False), (KP, 5.0, True)}
    ent = Actor(role="enterprise", units=frozenset({P4}))
    res = uc.fate_table(uow=uow_factory(), actor=ent, year=2025, stream="hazardous", region="630100")
    assert [r["unit"] for r in res["producers"]] == [P4]


def test_stream_totals_by_stream_and_district(uow_factory, city):
    res = uc.stream_totals(uow=uow_factory(), actor=ADMIN, year=2025, region="630100")
    gi = res["streams"]["general_industrial"]
    assert (gi["generated_t"], gi["utilised_t"], gi["disposed_t"], gi["stored_t"]) == (400.0, 180.0, 110.0, 110.0)
    assert res["districts"]["630103"]["general_industrial"]["utilised_t"] == 120.0
    assert res["districts"]["630103"]["hazardous"]["unresolved_t"] == 15.0


def test_unit_balance_per_code_and_month(uow_factory, city):
    res = uc.unit_balance(uow=uow_factory(), actor=ADMIN, year=2025, unit=P3)
    (code,) = res["codes"]
    assert code["code"] == HW and (code["year_open"], code["year_close"], code["drawn"]) == (40.0, 0.0, 40.0)
    jan, jun = code["months"]
    assert (jan["month"], jan["open"], jan["generated"], jan["transferred"], jan["close"], jan["residual"]) == (
        "2025-01", 40.0, 10.0, 30.0, 20.0, 0.0)
    assert (jun["disposed"], jun["residual"]) == (20.0, 0.0)
    with pytest.raises(NotFound):
        uc.unit_balance(uow=uow_factory(), actor=Actor(role="enterprise", units=frozenset({P1})), year=2025, unit=P3)
    with pytest.raises(NotFound):
        uc.unit_balance(uow=uow_factory(), actor=ADMIN, year=2025, unit=UNREG)


def test_flows_sankey_balances_every_shown_group(uow_factory, city):
    res = flows_uc.flows(uow=uow_factory(), actor=ADMIN, year=2025, stream="general_industrial", region="630104")
    ids = {n["id"] for n in res["nodes"]}
    assert f"{C}|SW01" in ids and "elsewhere:in" in ids and "elsewhere:out" in ids
    links = {(x["source"], x["target"]): x["value_t"] for x in res["links"]}
    assert links[("elsewhere:in", f"{C}|SW01")] == 300.0 and links[(f"{C}|SW01", "S")] == 60.0
    assert links[(f"{C}|SW01", "elsewhere:out")] == 240.0
    sk = res["sankey"]
    for n in sk["nodes"]:
        if n["kind"] == "group":
            inflow = sum(x["value"] for x in sk["links"] if x["target"] == n["id"])
            outflow = sum(x["value"] for x in sk["links"] if x["source"] == n["id"])
            assert abs(inflow - outflow) < 0.002, n
    city_sk = flows_uc.sankey(uow=uow_factory(), actor=ADMIN, year=2025, stream="general_industrial", region="630100")
    flow = {(x["source"], x["target"]): x["value"] for x in city_sk["links"]}
    assert flow[("630104:collector", "630105:utiliser")] == 180.0
    assert flow[("source:generated", "630103:producer")] == 300.0
    with pytest.raises(PermissionDenied):
        flows_uc.flows(uow=uow_factory(), actor=Actor(role="enterprise", units=frozenset({P1})), year=2025,
                       stream="general_industrial", region="630100")


def test_indicators_inside_an_open_unit_of_work(uow_factory, city):
    with uow_factory() as uow:
        res = uc.compute_indicators(uow=uow, actor=ADMIN, year=2025, region="630102")
        assert uow.session is not None  # still open for the caller
    assert values(res)["general_industrial_utilisation_rate"] == 60.0


_ = (P2, R, F)
