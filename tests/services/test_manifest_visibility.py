"""One rule of who sees a manifest (issue 15): the list (SQL, ``visible_clause``) shows exactly the manifests
that a read by number (Python, ``nofei.domain.manifests.may_read``) lets the same actor open."""

from datetime import date

import pytest

from ledgers import manifests as svc
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.domain.manifests import may_read
from nofei.errors import NotFound
from tests.factories import unit_payload

CODE = "900-200-08"


def _unit(uow_factory, district, park=None, roles=None):
    with uow_factory() as uow:
        return registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(district, park=park, roles=roles)
                                      )["credit_code"]


@pytest.fixture
def town(uow_factory):
    """Shipper A (城东 630102), receiver B (城中 630103, in park NANCHUAN), carrier C (城西 630104),
    shipper D (湟中 630106); manifests A→B carried by C, D→A, and D→E with E unregistered."""
    u = {"a": _unit(uow_factory, "630102"), "b": _unit(uow_factory, "630103", park="NANCHUAN"),
         "c": _unit(uow_factory, "630104", roles=["carrier"]), "d": _unit(uow_factory, "630106")}
    e = unit_payload("630105")["credit_code"]
    nos = {}
    for key, (s, r, c) in {"ab": (u["a"], u["b"], u["c"]), "da": (u["d"], u["a"], None),
                           "de": (u["d"], e, None)}.items():
        with uow_factory() as uow:
            nos[key] = svc.create_manifest(uow=uow, actor=SYSTEM, data={
                "shipper": s, "receiver": r, "carrier": c, "planned_date": date(2024, 6, 3),
                "lines": [{"waste_code": CODE, "quantity_t": "1"}]})["number"]
    return u, nos


def _listed(uow_factory, actor):
    with uow_factory() as uow:
        items, total = svc.list_manifests(uow=uow, actor=actor, per_page=100)
    assert total == len(items)
    return {m["number"] for m in items}


def _opened(uow_factory, actor, nos):
    out = set()
    for no in nos.values():
        with uow_factory() as uow:
            try:
                svc.get_manifest(uow=uow, actor=actor, number=no)
                out.add(no)
            except NotFound:
                pass
    return out


@pytest.mark.parametrize(("who", "expect"), [
    ("admin", {"ab", "da", "de"}),
    ("city", {"ab", "da", "de"}),
    ("reg_630102", {"ab", "da"}),          # A is a party of both
    ("reg_630104", {"ab"}),                # the carrier's district office reads what C carries
    ("reg_NANCHUAN", {"ab"}),              # B's park
    ("reg_630105", set()),                 # E is not registered: its district learns nothing from it
    ("reg_630106", {"da", "de"}),
    ("ent_a", {"ab", "da"}), ("ent_c", {"ab"}), ("ent_d", {"da", "de"}),
    ("ent_none", set()),
])
def test_the_list_and_a_read_by_number_agree(uow_factory, town, who, expect):
    u, nos = town
    kind, _, arg = who.partition("_")
    actor = {"admin": SYSTEM, "city": Actor("regulator", district="630100"),
             "reg": Actor("regulator", district=arg or None),
             "ent": Actor("enterprise", units=frozenset({u[arg]} if arg in u else set()))}[kind]
    want = {nos[k] for k in expect}
    assert _opened(uow_factory, actor, nos) == want
    assert _listed(uow_factory, actor) == want


def test_may_read_is_one_of_the_parties():
    parties = [("A", "630102", None), ("B", "630103", "NANCHUAN"), (None, None, None)]
    assert may_read(Actor("regulator", district="NANCHUAN"), parties)
    assert not may_read(Actor("regulator", district="630104"), parties)
    assert may_read(Actor("enterprise", units=frozenset({"B"})), parties)
    assert not may_read(Actor("enterprise", units=frozenset({"C"})), parties)
    assert may_read(Actor("regulator", district="630100"), [("E", None, None)])  # the city sees every unit
    assert not may_read(Actor("regulator", district="630105"), [("E", None, None)])  # unregistered: not its own
