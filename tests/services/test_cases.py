"""Casework (issue 13) on a real database: cases keep their identity across recomputations, work to an end,
reopen and resolve themselves when their facts change, and are seen and acted on only by whom they concern."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from ledgers import cases as svc
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.errors import Conflict, InputRejected, NotFound, PermissionDenied
from nofei.storage.tables import AuditRow, CaseRow, LedgerRow, UnitRow
from tests.services.test_anomalies import HW, PERMIT, cst, ledger, manifest, unit

AS_OF = datetime(2024, 12, 31, 12, tzinfo=UTC)
WEST, EAST = "630104", "630102"


def q(**kw):
    return svc.CaseQuery(year=kw.pop("year", 2024), **kw)


def cases(uow_factory, actor=SYSTEM, as_of=AS_OF, **kw):
    with uow_factory() as uow:
        return svc.list_cases(uow=uow, actor=actor, query=q(**kw), as_of=as_of)


def step(uow_factory, actor, case_id, action, text="", **kw):
    with uow_factory() as uow:
        return svc.add_event(uow=uow, actor=actor, case_id=case_id, step=svc.CaseStep(action=action, text=text, **kw))


def amend(uow_factory, cc, month, **kw):
    """A new current version of (cc, month): the old one stops being current."""
    with uow_factory() as uow:
        uid = uow.session.execute(select(UnitRow.id).where(UnitRow.credit_code == cc)).scalar_one()
        old = list(uow.session.execute(select(LedgerRow).where(LedgerRow.unit_id == uid, LedgerRow.month == month)).scalars())
        for r in old:
            r.is_current = False
        uow.commit()
    return ledger(uow_factory, cc, month, version=len(old) + 1, **kw)


@pytest.fixture
def sr(uow_factory):
    return unit(uow_factory, WEST), unit(uow_factory, EAST, PERMIT)


def test_an_anomaly_opens_one_case_that_survives_recomputation(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))  # never received: overdue
    first = cases(uow_factory, kind="receipt_overdue")
    assert first["total"] == 1 and first["counts"]["open"] == 1
    c = first["items"][0]
    assert c["manifests"] == [no] and c["status"] == "open" and c["status_zh"] == "待处理"
    assert {u["credit_code"] for u in c["units"]} == {s, r} and all(u["name"] for u in c["units"])
    # recomputed on a later day (another "days late" figure): still the same case, no second one
    again = cases(uow_factory, kind="receipt_overdue", as_of=datetime(2025, 1, 6, 12, tzinfo=UTC))
    assert [x["id"] for x in again["items"]] == [c["id"]]
    with uow_factory() as uow:
        assert len(uow.session.execute(select(CaseRow).where(CaseRow.kind == "receipt_overdue")).scalars().all()) == 1
        found = svc.anomalies.list_anomalies(uow=uow, actor=SYSTEM, year=2024, kind="receipt_overdue", as_of=AS_OF)
        svc.annotate_anomalies(uow=uow, year=2024, items=found)
    assert found[0]["case_id"] == c["id"] and found[0]["status"] == "open"


def test_a_regulator_closes_what_an_enterprise_answered(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    cid = cases(uow_factory, kind="receipt_overdue")["items"][0]["id"]
    reg = Actor(role="regulator", name="西区", district=WEST)
    ent = Actor(role="enterprise", name="接收方", units=frozenset({r}))
    step(uow_factory, reg, cid, "assign", assignee="张三")
    out = step(uow_factory, reg, cid, "notify", "请说明未确认接收的原因", due=date(2025, 1, 10))
    assert out["status"] == "notified" and out["due"] == date(2025, 1, 10) and out["assignee"] == "张三"
    with pytest.raises(PermissionDenied):
        step(uow_factory, ent, cid, "close", "企业不能结案")
    out = step(uow_factory, ent, cid, "respond", "车辆故障，已于次日接收", link=f"manifest:{no}")
    assert out["status"] == "responded" and "close" not in out["actions"]
    out = step(uow_factory, reg, cid, "close", "核实无误")
    assert out["status"] == "closed" and out["resolution"] == "resolved"
    assert [e["action"] for e in out["events"]] == ["raise", "assign", "notify", "respond", "close"]
    assert [e["to_status"] for e in out["events"]] == ["open", "open", "notified", "responded", "closed"]
    with pytest.raises(Conflict):
        step(uow_factory, ent, cid, "respond", "已结案后再答复")
    with uow_factory() as uow:
        acts = [a for (a,) in uow.session.execute(select(AuditRow.action).where(AuditRow.object == f"case:{cid}")
                                                  .order_by(AuditRow.seq))]
    assert acts == ["case.assign", "case.notify", "case.respond", "case.close"]


def test_who_may_see_and_act(uow_factory, sr):
    s, r = sr
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    cid = cases(uow_factory, kind="receipt_overdue")["items"][0]["id"]
    other_district = Actor(role="regulator", district="630103")
    stranger = Actor(role="enterprise", units=frozenset({"91630100MA0000000X"}))
    for a in (other_district, stranger):
        assert cases(uow_factory, actor=a)["total"] == 0
        with uow_factory() as uow, pytest.raises(NotFound):
            svc.get_case(uow=uow, actor=a, case_id=cid)
        with pytest.raises(NotFound):
            step(uow_factory, a, cid, "note", "看一看")
    east = Actor(role="regulator", district=EAST)  # the receiver's district
    assert cases(uow_factory, actor=east, kind="receipt_overdue")["total"] == 1
    with pytest.raises(InputRejected) as e:
        step(uow_factory, east, cid, "waive", "")
    assert e.value.problems[0].field == "text"
    with pytest.raises(InputRejected) as e:
        step(uow_factory, east, cid, "note", "见联单", link="manifest:20240000000000")
    assert e.value.problems[0].field == "link"


def test_a_case_closes_itself_when_an_amendment_removes_its_cause(uow_factory, sr):
    s, r = sr
    ledger(uow_factory, s, "2024-03", out=[(HW, 500, r, None)])  # 转出 without 联单编号
    c = cases(uow_factory, kind="missing_manifest_number")["items"][0]
    assert c["status"] == "open" and c["ledger_rows"][0]["sheet"] == "转出"
    lid = amend(uow_factory, s, "2024-03", out=[(HW, 500, r, "20240630104001")])
    after = cases(uow_factory, kind="missing_manifest_number")
    got = after["items"][0]
    assert got["id"] == c["id"] and got["status"] == "closed" and got["resolution"] == "resolved"
    with uow_factory() as uow:
        full = svc.get_case(uow=uow, actor=SYSTEM, case_id=c["id"])
    last = full["events"][-1]
    assert last["action"] == "auto_resolve" and f"ledger:{lid}" in last["text"]


def test_a_closed_case_reopens_when_its_facts_change_and_the_anomaly_still_holds(uow_factory, sr):
    s, r = sr
    ledger(uow_factory, s, "2024-03", out=[(HW, 500, r, None)])
    cid = cases(uow_factory, kind="missing_manifest_number")["items"][0]["id"]
    step(uow_factory, SYSTEM, cid, "waive", "量小，免予处理")
    # a recomputation with the same facts leaves the waiver standing
    assert cases(uow_factory, kind="missing_manifest_number", as_of=datetime(2025, 1, 3, tzinfo=UTC)
                 )["items"][0]["status"] == "closed"
    amend(uow_factory, s, "2024-03", out=[(HW, 800, r, None)])  # new version, still no number
    got = cases(uow_factory, kind="missing_manifest_number")["items"][0]
    assert got["id"] == cid and got["status"] == "open" and got["resolution"] is None
    with uow_factory() as uow:
        assert svc.get_case(uow=uow, actor=SYSTEM, case_id=cid)["events"][-1]["action"] == "auto_reopen"


def test_missing_ledgers_are_owed_from_reports_from_after_the_15th(uow_factory):
    a = unit(uow_factory, WEST)
    with uow_factory() as uow:
        registry.update_unit(uow=uow, actor=SYSTEM, credit_code=a, data={"reports_from": "2024-10"})
    ledger(uow_factory, a, "2024-10")
    ledger(uow_factory, a, "2024-12")

    def missing(as_of):
        with uow_factory() as uow:
            found = svc.anomalies.list_anomalies(uow=uow, actor=SYSTEM, year=2024, kind="missing_ledger", as_of=as_of)
        return [x["detail"]["month"] for x in found]

    assert missing(cst("2024-12-15T20:00")) == []  # November is due on the 15th: not yet late
    assert missing(cst("2024-12-16T08:00")) == ["2024-11"]
    assert missing(cst("2025-02-01T08:00")) == ["2024-11"]  # December was filed; nothing before October is owed
    got = cases(uow_factory, kind="missing_ledger", as_of=cst("2025-02-01T08:00"))["items"]
    assert [c["detail"]["month"] for c in got] == ["2024-11"] and got[0]["kind_zh"] == "月度台账逾期未报"


def test_an_enterprise_todo_lists_its_open_cases_and_the_months_it_owes(uow_factory, sr):
    s, r = sr
    with uow_factory() as uow:
        registry.update_unit(uow=uow, actor=SYSTEM, credit_code=s, data={"reports_from": "2024-11"})
    ledger(uow_factory, s, "2024-11", out=[(HW, 500, r, None)])
    ent = Actor(role="enterprise", units=frozenset({s}))
    with uow_factory() as uow:
        todo = svc.my_todo(uow=uow, actor=ent, year=2024, as_of=cst("2025-01-20T10:00"))
    kinds = [c["kind"] for c in todo["cases"]]
    assert {"missing_manifest_number", "missing_ledger"} <= set(kinds) and all(c["status"] == "open" for c in todo["cases"])
    assert next(c for c in todo["cases"] if c["kind"] == "missing_ledger")["detail"]["month"] == "2024-12"
    assert todo["units"][0]["missing_months"] == ["2024-12"]
    assert todo["units"][0]["next"][0] == {"month": "2025-01", "deadline": date(2025, 2, 15)}
