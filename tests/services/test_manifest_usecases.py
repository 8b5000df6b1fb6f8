"""Manifest use cases on a real SQLite unit of work: audit in the same transaction, settings, rollback."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from ledgers import manifests as svc
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.domain.rules import Rules
from nofei.errors import Conflict, InputRejected
from nofei.storage.tables import AuditRow, ManifestRow, ManifestSerialRow
from tests.factories import unit_payload

CODE = "900-200-08"


@pytest.fixture
def parties(uow_factory):
    out = {}
    for k, d in (("s", "630104"), ("r", "630102")):
        with uow_factory() as uow:
            out[k] = registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(d))["credit_code"]
    return out


def _new(uow_factory, p, **settings):
    with uow_factory(settings=settings) as uow:
        return svc.create_manifest(uow=uow, actor=Actor("enterprise", units=frozenset({p["s"]})), data={
            "receiver": p["r"], "planned_date": date(2024, 6, 3),
            "lines": [{"waste_code": CODE, "quantity_t": "2"}]})["number"]


def _audit(uow_factory, obj):
    with uow_factory() as uow:
        return [a.action for a in uow.session.execute(
            select(AuditRow).where(AuditRow.object == obj).order_by(AuditRow.seq)).scalars()]


def test_each_step_is_audited_with_the_write(uow_factory, parties):
    no = _new(uow_factory, parties)
    with uow_factory() as uow:
        svc.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "李"})
    with uow_factory() as uow:
        svc.receive_manifest(uow=uow, actor=Actor("enterprise", units=frozenset({parties["r"]})), number=no,
                             data={"lines": [{"line_no": 1, "received_t": "2", "method": "D10"}]})
    assert _audit(uow_factory, f"manifest:{no}") == ["manifest.create", "manifest.ship", "manifest.receive"]


def test_a_refused_step_writes_neither_event_nor_audit(uow_factory, parties):
    no = _new(uow_factory, parties)
    with uow_factory() as uow, pytest.raises(Conflict):
        svc.receive_manifest(uow=uow, actor=SYSTEM, number=no,
                             data={"lines": [{"line_no": 1, "received_t": "2", "method": "D10"}]})
    with uow_factory() as uow, pytest.raises(InputRejected):
        svc.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "", "driver": "x"})
    assert _audit(uow_factory, f"manifest:{no}") == ["manifest.create"]


def test_rejected_create_does_not_burn_a_serial(uow_factory, parties):
    with uow_factory() as uow, pytest.raises(InputRejected):
        svc.create_manifest(uow=uow, actor=SYSTEM, data={"shipper": parties["s"], "receiver": parties["r"],
                                                         "planned_date": date(2024, 6, 3), "lines": []})
    no = _new(uow_factory, parties)
    assert no.endswith("000001")
    with uow_factory() as uow:
        assert uow.session.execute(select(ManifestSerialRow.last)).scalar_one() == 1
        assert uow.session.execute(select(func.count()).select_from(ManifestRow)).scalar_one() == 1


@pytest.mark.parametrize(("received", "ratio", "min_kg", "flag"), [
    ("2.2", "0.05", 100, True), ("2.2", "0.2", 100, False), ("2.2", "0.05", 300, False), ("2.1", "0.05", 100, False),
])
def test_discrepancy_uses_the_settings(uow_factory, parties, received, ratio, min_kg, flag):
    no = _new(uow_factory, parties)
    st = {"DISCREPANCY_RATIO": ratio, "DISCREPANCY_MIN_KG": min_kg}
    with uow_factory(settings=st) as uow:
        svc.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "李"})
    with uow_factory(settings=st) as uow:
        out = svc.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={
            "lines": [{"line_no": 1, "received_t": received, "method": "D10"}]})
    assert out["lines"][0]["discrepancy"] is flag


def test_receipt_late_counts_working_days_on_beijing_dates():
    cal = Rules.from_settings({"HOLIDAYS": [], "EXTRA_WORKDAYS": []}).calendar
    shipped = datetime(2023, 3, 2, 17, 0, tzinfo=UTC)  # Fri 3 Mar 01:00 in Beijing
    late, due = svc.receipt_late(shipped, None, datetime(2023, 3, 10, 15, 59, tzinfo=UTC), cal, 5)
    assert due == date(2023, 3, 10) and not late
    late, _ = svc.receipt_late(shipped, None, datetime(2023, 3, 10, 16, 0, tzinfo=UTC), cal, 5)
    assert late
