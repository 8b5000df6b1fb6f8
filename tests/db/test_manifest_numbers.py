"""Manifest numbers stay unique and gap-free when many shippers create at once (PostgreSQL row lock)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import func, select

from ledgers import manifests as man
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.storage.tables import AuditRow, ManifestRow
from tests.factories import unit_payload

pytestmark = pytest.mark.postgres


def test_concurrent_creates_get_unique_consecutive_serials(uow_factory):
    with uow_factory() as uow:
        s = registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload("630104"))["credit_code"]
        r = registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload("630102"))["credit_code"]
    actor = Actor("enterprise", units=frozenset({s}))

    def create(i: int) -> str:
        with uow_factory() as uow:
            return man.create_manifest(uow=uow, actor=actor, data={
                "receiver": r, "planned_date": date(2024, 1 + i % 12, 1),
                "lines": [{"waste_code": "900-200-08", "quantity_t": "1"}]})["number"]

    n = 120
    with ThreadPoolExecutor(max_workers=16) as pool:
        numbers = list(pool.map(create, range(n)))
    assert len(set(numbers)) == n
    serials = sorted(int(x[8:]) for x in numbers)
    assert serials == list(range(1, n + 1))
    assert {x[:8] for x in numbers} == {"2024" + s[2:6]}
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(ManifestRow)).scalar_one() == n
        assert uow.session.execute(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "manifest.create")).scalar_one() == n


def test_concurrent_receipts_only_one_wins(uow_factory):
    with uow_factory() as uow:
        s = registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload("630104"))["credit_code"]
        r = registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload("630102"))["credit_code"]
    with uow_factory() as uow:
        no = man.create_manifest(uow=uow, actor=SYSTEM, data={"shipper": s, "receiver": r, "planned_date": date(2024, 5, 1),
                                                              "lines": [{"waste_code": "900-200-08", "quantity_t": "1"}]})["number"]
    with uow_factory() as uow:
        man.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王"})

    def receive(_i: int) -> str:
        try:
            with uow_factory() as uow:
                man.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={"lines": [
                    {"line_no": 1, "received_t": "1", "method": "D10"}]})
            return "ok"
        except Exception as e:  # noqa: BLE001
            return type(e).__name__

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(receive, range(8)))
    assert results.count("ok") == 1 and set(results) == {"ok", "Conflict"}
