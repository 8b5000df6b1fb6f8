"""The demo city generator: balanced, consistent, deterministic, calibrated to the plan."""

from __future__ import annotations

from collections import Counter

import pytest

from api.demo.city import plan_city
from api.demo.load import draft_digest
from nofei.catalogue import Catalogue
from nofei.domain.ledger import balance_problems
from nofei.domain.units import is_valid_credit_code
from tests.services.demo_oracle import rates


@pytest.fixture(scope="module")
def city():
    return plan_city(seed=7, units=60, year=2025)


def test_every_monthly_ledger_balances_per_code(city):
    assert city.drafts
    assert [d.credit_code for d in city.drafts if balance_problems(d, tolerance_kg=0)] == []


def test_units_cover_every_kind_district_and_park_with_valid_codes(city):
    cat = Catalogue.default()
    assert all(is_valid_credit_code(u.credit_code) for u in city.units)
    assert len({u.credit_code for u in city.units}) == len(city.units)
    assert len({u.name for u in city.units}) == len(city.units)
    kinds = Counter(u.kind for u in city.units)
    for kind in ("smelter", "steel", "chemical", "power", "hospital", "clinic", "film_user", "film_point",
                 "restaurant", "canteen", "hw_collector", "oil_regen", "hw_centre", "medical_centre", "carrier"):
        assert kinds[kind] >= 1, kind
    districts = {u.district for u in city.units}
    assert districts == set(cat.districts) - {"630100"}
    assert {u.park for u in city.units if u.park} == set(cat.parks)
    licensed = [u for u in city.units if u.kind in ("hw_centre", "oil_regen", "medical_centre")]
    assert all(u.permits and u.permits[0]["waste_codes"] for u in licensed)


def test_every_transfer_out_has_its_counterpart_except_the_planned_faults(city):
    registered = {u.credit_code for u in city.units}
    sent: dict[tuple, int] = {}
    got: dict[tuple, int] = {}
    for d in city.drafts:
        for t in d.transfers:
            key = (d.credit_code, t.counterpart, t.code, t.manifest_no, t.day.month) if t.direction == "out" \
                else (t.counterpart, d.credit_code, t.code, t.manifest_no, t.day.month)
            (sent if t.direction == "out" else got)[key] = (sent if t.direction == "out" else got).get(key, 0) + t.qty_kg
    missing = [k for k in sent if k not in got]
    assert got.keys() <= sent.keys()
    # only the unregistered hand-off and the shipment still in transit at the year's end lack a 转入 row
    assert {k[1] for k in missing if k[1] not in registered} == set(city.unregistered)
    in_transit = set(city.faults["in_transit"])
    assert {k[3] for k in missing if k[1] in registered} == in_transit
    differing = {k[3] for k in got if got[k] != sent[k]}
    assert differing == set(city.faults["discrepancy"])
    for k in differing:
        pair = [(sent[x], got[x]) for x in got if x[3] == k]
        assert all(g < s * 0.95 and s - g > 100 for s, g in pair)


def test_hazardous_and_medical_transfers_cite_their_manifest_but_the_faulty_ones(city):
    cat = Catalogue.default()
    numbers = {m.number for m in city.manifests}
    blank = []
    for d in city.drafts:
        for t in d.transfers:
            if cat.stream_of(t.code) in ("hazardous", "medical") and t.direction == "out":
                if t.manifest_no is None:
                    blank.append((d.credit_code, d.month))
                else:
                    assert t.manifest_no in numbers and len(t.manifest_no) == 14
    # two shipments without a number and the hand-off to an unregistered collector
    assert len(set(blank)) == len(city.faults["no_manifest"]) + len(city.faults["unregistered"]) == 3
    assert all(m.status in ("received", "in_transit", "rejected") for m in city.manifests)
    assert Counter(m.status for m in city.manifests)["rejected"] == 1


def test_the_faults_for_the_anomaly_lists_are_all_there(city):
    for fault in ("old_stock", "no_manifest", "discrepancy", "unregistered", "late_receipt", "in_transit",
                  "over_capacity", "rejected"):
        assert city.faults.get(fault), fault
    over = city.faults["over_capacity"][0]
    received = sum(t.qty_kg for d in city.drafts if d.credit_code == over for t in d.transfers if t.direction == "in")
    cap_t = float(city.unit(over).permits[0]["capacity_t"])
    assert received / 1000 > cap_t
    # old stock: generated in November of the year before, held all year, never moved
    for cc in city.faults["old_stock"]:
        rows = [(d.month, s) for d in city.drafts if d.credit_code == cc for s in d.stocks if s.code == "900-999-49"]
        assert [m for m, _ in rows] == ["2024-11"] + [f"2025-{m:02d}" for m in range(1, 13)]
        first, held = rows[0][1], [s for _, s in rows[1:]]
        assert first.generated_kg == first.close_kg > 0
        assert {(s.open_kg, s.generated_kg, s.close_kg) for s in held} == {(first.close_kg, 0, first.close_kg)}


def test_same_seed_same_city_other_seed_other_city():
    a, b = plan_city(seed=3, units=40, year=2024), plan_city(seed=3, units=40, year=2024)
    c = plan_city(seed=4, units=40, year=2024)
    digest = lambda city: [draft_digest(d) for d in city.drafts]  # noqa: E731
    assert digest(a) == digest(b)
    assert [m.number for m in a.manifests] == [m.number for m in b.manifests]
    assert digest(a) != digest(c)


def test_the_city_comes_out_near_the_plan(city):
    """indicators.md §3, computed naively from the drafts (tests/services/demo_oracle.py)."""
    r = rates(city.drafts, unit_types={u.credit_code: u.unit_type for u in city.units})
    assert r["general_industrial_utilisation_rate"] == pytest.approx(93, abs=1.0)
    assert r["hazardous_utilisation_disposal_rate"] == pytest.approx(99, abs=0.7)
    assert r["hazardous_utilisation_disposal_rate"] < 100
    assert r["medical_central_disposal_rate"] == pytest.approx(100, abs=1e-9)
    assert r["agricultural_film_recovery_rate"] == pytest.approx(90, abs=2)
    assert r["greenhouse_film_recovery_rate"] == pytest.approx(90, abs=2)


def test_units_carry_sensible_types(city):
    """Issue 18: 汽修 are social sources, hospitals and clinics medical institutions, permit holders licensed."""
    by_kind: dict[str, set[str]] = {}
    for u in city.units:
        by_kind.setdefault(u.kind, set()).add(u.unit_type)
    assert by_kind["workshop"] == {"social_source"} and by_kind["hospital"] == {"medical_institution"}
    assert by_kind["medical_centre"] == {"licensed"} and by_kind["chemical"] == {"industrial"}
    clinics = [u for u in city.units if u.kind == "clinic"]
    assert any(u.small_clinic for u in clinics) and not all(u.small_clinic for u in clinics)
    assert not any(u.small_clinic for u in city.units if u.kind != "clinic")
    n = sum(u.unit_type == "medical_institution" for u in city.units)
    assert city.medical_institutions["630100"] == n + n // 20


def test_statistics_cover_the_city_every_district_and_park(city):
    cat = Catalogue.default()
    assert set(city.statistics) == set(cat.districts) | set(cat.parks)
    assert all(v > 0 for v in city.statistics.values())


def test_the_default_demo_city_is_a_few_hundred_units_of_every_kind_near_the_plan():
    """What ``nofei demo`` builds without options (issue 8: "a few hundred units of every kind")."""
    from api.commands.demo import DEFAULT_UNITS

    city = plan_city(seed=1, units=DEFAULT_UNITS, year=2025)
    assert len(city.units) >= 200
    kinds = Counter(u.kind for u in city.units)
    assert sum(1 for n in kinds.values() if n >= 5) >= 10, kinds  # producers by the dozen, facilities one or two
    r = rates(city.drafts, unit_types={u.credit_code: u.unit_type for u in city.units})
    assert r["general_industrial_utilisation_rate"] == pytest.approx(93, abs=1.0)
    assert r["hazardous_utilisation_disposal_rate"] == pytest.approx(99, abs=0.7)
    assert r["medical_central_disposal_rate"] == pytest.approx(100, abs=1e-9)
    assert r["agricultural_film_recovery_rate"] == pytest.approx(90, abs=2)
