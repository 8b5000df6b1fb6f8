"""Each anomaly kind on a real SQLite unit of work, with ledgers written row by row."""

from datetime import UTC, date, datetime

import pytest

from ledgers import anomalies as svc
from ledgers import manifests as man
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.errors import InputRejected
from nofei.storage import flowstore
from nofei.storage.tables import LedgerRow, StockEntryRow, TransferEntryRow, TreatmentEntryRow
from tests.factories import credit_code, unit_payload

HW = "900-200-08"
HW2 = "900-201-08"
AS_OF = datetime(2024, 12, 31, 12, tzinfo=UTC)


def unit(uow_factory, district="630104", permits=None):
    with uow_factory() as uow:
        return registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(district, permits=permits))["credit_code"]


def ledger(uow_factory, cc, month, *, stock=(), out=(), inn=(), treat=(), version=1):
    """Write one current ledger version directly: stock (code, open, gen, close) kg; out/inn (code, kg,
    counterpart, manifest_no[, method]); treat (code, method, kg)."""
    with uow_factory() as uow:
        from nofei.storage.repo import unit_row

        u = unit_row(uow.session, cc)
        lr = LedgerRow(unit_id=u.id, month=month, year=int(month[:4]), version=version, is_current=True, sha256="x" * 64,
                       uploaded_at=datetime.now(UTC))
        uow.session.add(lr)
        uow.session.flush()
        stream = uow.catalogue.stream_of
        for i, (code, o, g, c) in enumerate(stock):
            uow.session.add(StockEntryRow(ledger_id=lr.id, row=i + 2, code=code, stream=stream(code), open_kg=o,
                                          generated_kg=g, close_kg=c))
        for d, rows in (("out", out), ("in", inn)):
            for i, t in enumerate(rows):
                code, kg, cp, no = t[:4]
                uow.session.add(TransferEntryRow(ledger_id=lr.id, row=i + 2, direction=d, day=date.fromisoformat(month + "-15"),
                                                 code=code, stream=stream(code), qty_kg=kg, counterpart=cp, manifest_no=no,
                                                 planned_method=t[4] if len(t) > 4 else None))
        for i, (code, m, kg) in enumerate(treat):
            uow.session.add(TreatmentEntryRow(ledger_id=lr.id, row=i + 2, code=code, stream=stream(code), method=m,
                                              qty_kg=kg))
        uow.session.flush()
        flowstore.summarise_ledgers(uow.session, [lr.id])  # what an upload writes with its rows
        uow.commit()
        return lr.id


def manifest(uow_factory, s, r, *, qty="10", code=HW, shipped=None, received=None, received_t=None, method="D10",
             planned=date(2024, 3, 4), accepted_on=None, recorded=None):
    with uow_factory() as uow:
        no = man.create_manifest(uow=uow, actor=SYSTEM, data={"shipper": s, "receiver": r, "planned_date": planned,
                                                              "lines": [{"waste_code": code, "quantity_t": qty}]})["number"]
    if shipped:
        with uow_factory() as uow:
            man.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王", "time": shipped},
                              entered_at=shipped)
    if received:
        with uow_factory() as uow:
            man.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={"time": received, "accepted_on": accepted_on,
                                                                         "lines": [
                {"line_no": 1, "received_t": received_t or qty, "method": method}]},
                entered_at=recorded or received)  # by default recorded when confirmed (the deadline counts the recording)
    return no


def anomalies(uow_factory, kind, actor=SYSTEM, year=2024, as_of=AS_OF, **kw):
    with uow_factory() as uow:
        return svc.list_anomalies(uow=uow, actor=actor, year=year, kind=kind, as_of=as_of, **kw)


def cst(s):
    return datetime.fromisoformat(s + "+08:00")


PERMIT = [{"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "1000"}]


@pytest.fixture
def sr(uow_factory):
    return unit(uow_factory, "630104"), unit(uow_factory, "630102", PERMIT)


def test_receipt_overdue_open_and_late(uow_factory, sr):
    s, r = sr
    still = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-11T17:00"))  # day 5: in time
    # accepted the day it was shipped, confirmed in nofei on the 6th working day after: late
    late = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-12T08:00"),
                    accepted_on=date(2024, 3, 4))
    # 第十八条 counts from acceptance: accepted 12 March, confirmed the same day is in time although shipped on the 4th
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-12T08:00"))
    # confirmed (time) on the 5th, but only entered into nofei on the 12th: the recording counts
    entered_late = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T08:00"),
                            recorded=cst("2024-03-13T08:00"))
    manifest(uow_factory, s, r)  # never shipped: not overdue
    got = {a["manifests"][0]: a for a in anomalies(uow_factory, "receipt_overdue")}
    assert set(got) == {still, late, entered_late}
    assert got[late]["detail"]["due"] == "2024-03-11" and got[late]["detail"]["working_days_late"] == 1
    assert got[late]["detail"]["counted_from"] == "accepted_on"
    assert got[entered_late]["detail"]["due"] == "2024-03-12" and got[entered_late]["detail"]["recorded_on"] == "2024-03-13"
    assert got[still]["detail"]["counted_from"] == "shipped_on" and "以起运日期代替接受日期" in got[still]["message"]
    assert got[still]["mass_kg"] == 10_000 and set(got[still]["units"]) == {s, r}
    # judged as of the due day itself, the open one is not overdue yet
    early = anomalies(uow_factory, "receipt_overdue", as_of=cst("2024-03-11T23:00"))
    assert sorted(a["manifests"][0] for a in early) == [late, entered_late]


def test_receipt_deadline_skips_holidays(uow_factory, sr):
    s, r = sr  # shipped Mon 30 Sep 2024: 国庆 → due Sat 12 Oct (a swapped working day)
    ok = manifest(uow_factory, s, r, shipped=cst("2024-09-30T09:00"), received=cst("2024-10-12T09:00"),
                  planned=date(2024, 9, 30))
    assert ok not in {a["manifests"][0] for a in anomalies(uow_factory, "receipt_overdue")}


def test_discrepancy_is_listed(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"), received_t="9.4")
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"), received_t="9.6")
    (a,) = anomalies(uow_factory, "discrepancy")
    assert a["manifests"] == [no] and a["mass_kg"] == 600 and a["waste_code"] == HW


def test_fifo_age_over_the_monthly_ledgers():
    # Jan 5 t arrive, Jun 2 t, Sep 3 t leave (from January's batch first), nothing else until Feb next year.
    months = [("2023-01", 0, 5000, 5000, 1), ("2023-06", 5000, 2000, 7000, 2), ("2023-09", 7000, 0, 4000, 3),
              ("2024-02", 4000, 0, 4000, 4)]
    kg, since, at = svc.fifo_over_limit(months, 365)
    assert (kg, since, at) == (2000, "2023-01", date(2024, 2, 29))
    assert svc.fifo_over_limit(months[:3], 365)[0] == 0
    # stock turned over every month never ages
    assert svc.fifo_over_limit([(f"2023-{m:02d}", 100, 100, 100, m) for m in range(1, 13)], 365)[0] == 0


def test_storage_over_a_year(uow_factory, sr):
    s, _ = sr
    other = unit(uow_factory, "630105")
    ledger(uow_factory, s, "2023-01", stock=[(HW, 0, 5000, 5000)])
    ledger(uow_factory, s, "2024-03", stock=[(HW, 5000, 0, 5000)])
    ledger(uow_factory, other, "2023-01", stock=[(HW, 0, 5000, 5000)])
    ledger(uow_factory, other, "2024-03", stock=[(HW, 5000, 1000, 1000)], treat=[(HW, "D10", 5000)])
    (a,) = anomalies(uow_factory, "storage_over_year")
    assert a["units"] == [s] and a["mass_kg"] == 5000 and a["detail"]["oldest_month"] == "2023-01"


def test_a_2026_receipt_across_the_spring_festival(uow_factory, sr):
    # shipped Thu 2026-02-12: Fri 13, Sat 14 (调休), holiday 15–23, Tue 24, Wed 25, Thu 26 → due 2026-02-26
    # (a plain Monday–Friday calendar said 02-19 and flagged the on-time receipt of 02-26)
    # (issue 16: the five days run from 接受日期; here the waste was accepted the day it was shipped)
    s, r = sr
    kw = {"planned": date(2026, 2, 12), "shipped": cst("2026-02-12T09:00"), "accepted_on": date(2026, 2, 12)}
    manifest(uow_factory, s, r, received=cst("2026-02-26T17:00"), **kw)
    late1 = manifest(uow_factory, s, r, received=cst("2026-02-27T09:00"), **kw)
    late2 = manifest(uow_factory, s, r, received=cst("2026-02-28T09:00"), **kw)  # a Saturday worked: 2 days
    got = {a["manifests"][0]: a["detail"] for a in anomalies(uow_factory, "receipt_overdue", year=2026,
                                                             as_of=datetime(2026, 3, 10, tzinfo=UTC))}
    assert set(got) == {late1, late2}
    assert {d["due"] for d in got.values()} == {"2026-02-26"}
    assert (got[late1]["working_days_late"], got[late2]["working_days_late"]) == (1, 2)


def test_transfers_without_a_manifest_number(uow_factory, sr):
    s, r = sr
    ledger(uow_factory, s, "2024-05", stock=[(HW, 0, 9000, 0), ("SW01", 0, 100, 0)],
           out=[(HW, 4000, r, None), (HW, 5000, r, "123"), ("SW01", 100, r, None)])
    (a,) = anomalies(uow_factory, "missing_manifest_number")
    assert a["mass_kg"] == 9000 and a["ledger_row_count"] == 2 and {x["row"] for x in a["ledger_rows"]} == {2, 3}
    assert a["ledger_rows"][0]["sheet"] == "转出" and a["ledger_rows"][0]["month"] == "2024-05"


def test_exempt_transfers_need_no_manifest_number(uow_factory, sr):
    # 900-052-31 未破损的废铅蓄电池 is exempt at the transport stage (豁免清单 item 18): no number is no anomaly,
    # but a malformed number it carries still is; the HW49 row without one stays an anomaly
    s, r = sr
    batt = "900-052-31"
    ledger(uow_factory, s, "2024-05", stock=[(batt, 0, 3000, 0), (HW, 0, 1000, 0)],
           out=[(batt, 2000, r, None), (batt, 1000, r, "12"), (HW, 1000, r, None)])
    got = {a["waste_code"]: a for a in anomalies(uow_factory, "missing_manifest_number")}
    assert set(got) == {batt, HW}
    assert (got[batt]["mass_kg"], got[batt]["ledger_row_count"]) == (1000, 1)


def test_permit_not_covering_code_or_method_and_no_permit(uow_factory, sr):
    s, r = sr
    bare = unit(uow_factory, "630103")
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"), method="R9")
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"), method="D10")
    nb = manifest(uow_factory, s, bare, shipped=cst("2024-03-04T09:00"))
    got = anomalies(uow_factory, "permit_not_covering")
    assert {(a["units"][0], a["detail"]["method"], a["detail"]["has_permit"]) for a in got} == {
        (r, "R9", True), (bare, None, False)}
    assert next(a for a in got if a["units"][0] == bare)["manifests"] == [nb]


def test_over_capacity(uow_factory):
    s = unit(uow_factory, "630104")
    r = unit(uow_factory, "630102", [{**PERMIT[0], "capacity_t": "15"}])
    for _ in range(2):
        manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    (a,) = anomalies(uow_factory, "over_capacity")
    assert a["units"] == [r] and a["mass_kg"] == 5000 and a["detail"]["capacity_kg"] == 15000


def test_three_way_reconciliation(uow_factory, sr):
    s, r = sr
    ok = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    short = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    nothing_in = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    ledger(uow_factory, s, "2024-03", stock=[(HW, 0, 40_000, 0)],
           out=[(HW, 10_000, r, ok), (HW, 10_000, r, short), (HW, 10_000, r, nothing_in), (HW, 10_000, r, "20246301999999")])
    ledger(uow_factory, r, "2024-03", stock=[(HW, 0, 0, 0)], inn=[(HW, 10_000, s, ok), (HW, 8_000, s, short)],
           treat=[(HW, "D10", 18_000)])
    got = {(a["detail"]["reason"], a["detail"]["number_cited"]): a for a in anomalies(uow_factory, "reconciliation")}
    assert set(got) == {("in_vs_manifest", short), ("in_missing", nothing_in), ("unknown_number", "20246301999999")}
    assert got[("in_vs_manifest", short)]["mass_kg"] == 2000
    assert got[("in_vs_manifest", short)]["detail"]["sides_kg"] == {"out": 10_000, "manifest_shipped": 10_000,
                                                                   "manifest_received": 10_000, "in": 8_000}
    assert {x["sheet"] for x in got[("in_vs_manifest", short)]["ledger_rows"]} == {"转出", "转入"}
    assert got[("unknown_number", "20246301999999")]["manifests"] == []
    # before the following month (April) is over, a missing side is not yet an anomaly
    early = anomalies(uow_factory, "reconciliation", as_of=cst("2024-04-20T00:00"))
    assert {a["detail"]["reason"] for a in early} == {"in_vs_manifest", "unknown_number"}


def test_shipper_side_missing(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    (a,) = anomalies(uow_factory, "reconciliation")
    assert a["detail"]["reason"] == "out_missing" and a["manifests"] == [no] and a["mass_kg"] == 10_000


def test_unresolved_mass(uow_factory, sr):
    s, r = sr
    stranger = credit_code("632100")
    silent = unit(uow_factory, "630105")
    ledger(uow_factory, s, "2024-06", stock=[(HW, 0, 6000, 0), (HW2, 0, 1000, 0)],
           out=[(HW, 1000, stranger, None), (HW, 2000, silent, None), (HW, 3000, r, None), (HW2, 1000, r, None)])
    ledger(uow_factory, r, "2024-06", stock=[(HW, 0, 0, 0)], inn=[(HW, 3000, s, None)], treat=[(HW, "D10", 3000)])
    got = {(a["units"][1], a["waste_code"]): a for a in anomalies(uow_factory, "unresolved_mass")}
    assert set(got) == {(stranger, HW), (silent, HW), (r, HW2)}
    assert got[(stranger, HW)]["detail"]["receiver_registered"] is False and got[(silent, HW)]["mass_kg"] == 2000


def test_scoping_by_role_and_region(uow_factory, sr):
    s, r = sr
    manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    assert anomalies(uow_factory, "receipt_overdue", actor=Actor("regulator", district="630104"))
    assert anomalies(uow_factory, "receipt_overdue", actor=Actor("regulator", district="630102"))
    assert not anomalies(uow_factory, "receipt_overdue", actor=Actor("regulator", district="630103"))
    assert not anomalies(uow_factory, "receipt_overdue", region="630105")
    assert anomalies(uow_factory, "receipt_overdue", actor=Actor("enterprise", units=frozenset({s})))
    assert not anomalies(uow_factory, "receipt_overdue", actor=Actor("enterprise", units=frozenset({credit_code()})))
    with pytest.raises(InputRejected):
        anomalies(uow_factory, "nonsense")
    assert {a["kind"] for a in anomalies(uow_factory, None)} == {"receipt_overdue", "reconciliation"}


def test_a_warm_list_is_the_cold_one_until_something_is_written(uow_factory, sr):
    """The per-year cache answers exactly what a fresh computation does, and a new manifest step or ledger
    version (or any audited write) makes the next list see it."""
    s, r = sr
    first = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    cold = anomalies(uow_factory, None, cache=False)
    warm1, warm2 = anomalies(uow_factory, None), anomalies(uow_factory, None)
    assert warm1 == warm2 == cold and {a["manifests"][0] for a in cold if a["kind"] == "receipt_overdue"} == {first}
    warm1[0]["message"] = "changed by a caller"
    assert anomalies(uow_factory, None) == cold  # callers get copies
    second = manifest(uow_factory, s, r, shipped=cst("2024-05-06T09:00"))  # a new manifest event
    got = {a["manifests"][0] for a in anomalies(uow_factory, "receipt_overdue")}
    assert got == {first, second}
    ledger(uow_factory, s, "2024-06", out=[(HW, 500, r, None)])  # a ledger version written without an audit entry
    assert [a["ledger_row_count"] for a in anomalies(uow_factory, "missing_manifest_number")] == [1]
    assert anomalies(uow_factory, None) == anomalies(uow_factory, None, cache=False)


def test_the_cache_keeps_apart_the_day_judged_and_the_rules(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    assert [a["manifests"][0] for a in anomalies(uow_factory, "receipt_overdue")] == [no]
    assert anomalies(uow_factory, "receipt_overdue", as_of=cst("2024-03-11T23:00")) == []
    with uow_factory(settings={"RECEIPT_WORKING_DAYS": 300}) as uow:
        assert svc.list_anomalies(uow=uow, actor=SYSTEM, year=2024, kind="receipt_overdue", as_of=AS_OF) == []


def test_reconciliation_sums_are_exact_for_large_quantities(uow_factory, sr):
    """Sides over 2^31 kg (and split over two rows) are summed exactly (PostgreSQL sums as int8 when a row is past int4)."""
    s, r = sr
    big = 3 * 2**30 + 12_345  # kg: past int4 and with both halves non-zero
    shipped_kg, received_kg = big * 2 // 1000 * 1000, big // 1000 * 1000
    no = manifest(uow_factory, s, r, qty=str(shipped_kg // 1000), received_t=str(received_kg // 1000),
                  shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    ledger(uow_factory, s, "2024-03", out=[(HW, big, r, no), (HW, shipped_kg - big, r, no)])
    ledger(uow_factory, r, "2024-03", inn=[(HW, big, s, no), (HW, big + 7, s, no)])
    (a,) = anomalies(uow_factory, "reconciliation")
    assert a["detail"]["reason"] == "in_vs_manifest"
    assert a["detail"]["sides_kg"] == {"out": shipped_kg, "manifest_shipped": shipped_kg,
                                       "manifest_received": received_kg, "in": 2 * big + 7}
    assert a["mass_kg"] == 2 * big + 7 - received_kg and type(a["detail"]["sides_kg"]["in"]) is int


def test_all_kinds_at_once_are_each_kind_alone(uow_factory, sr):
    """A cold list of every kind (on PostgreSQL: the reconciliation on a second connection, concurrently) lists
    exactly what asking for each kind alone lists, in the same order."""
    s, r = sr
    late = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    short = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    ledger(uow_factory, s, "2024-03", stock=[(HW, 0, 20_000, 0)], out=[(HW, 10_000, r, short), (HW, 700, r, None)])
    ledger(uow_factory, r, "2024-03", stock=[(HW, 0, 0, 0)], inn=[(HW, 8_000, s, short), (HW, 900, s, "20246301999999")])
    together = anomalies(uow_factory, None, cache=False)
    alone = [a for k in svc.KINDS for a in anomalies(uow_factory, k, cache=False)]
    assert together == alone
    assert {"receipt_overdue", "missing_manifest_number", "reconciliation"} <= {a["kind"] for a in together}
    assert {(a["detail"]["reason"], a["detail"]["number_cited"]) for a in together if a["kind"] == "reconciliation"} \
        >= {("in_vs_manifest", short), ("out_missing", late), ("unknown_number", "20246301999999")}
    assert anomalies(uow_factory, None) == together  # and the cache filled by the concurrent path


def test_a_deadline_the_calendar_cannot_judge_leaves_the_rest_of_the_list_standing(uow_factory, sr):
    """Shipped on 28 December of the calendar's last year, its five working days run into a year which the calendar does not cover yet: that
    manifest is not judged (never as plain weekdays) and the other overdue one is still listed."""
    from nofei.domain.calendar import package_years

    last = package_years()[1]  # type: ignore[index]
    s, r = sr
    old = manifest(uow_factory, s, r, shipped=cst(f"{last}-03-02T09:00"), planned=date(last, 3, 2))
    manifest(uow_factory, s, r, shipped=cst(f"{last}-12-28T09:00"), planned=date(last, 12, 28))
    got = anomalies(uow_factory, "receipt_overdue", year=last, as_of=cst(f"{last + 1}-01-20T09:00"))
    assert [a["manifests"][0] for a in got] == [old]
    assert "逾期至少" in got[0]["message"] and got[0]["detail"]["working_days_late"] > 200


def test_a_correct_rejection_and_return_raises_no_anomaly(uow_factory, sr):
    """Issue 16: the receiver refuses the whole load, it goes back on the same truck and the shipper takes it into
    its storage (method S, 转入 citing the return). The shipper wrote 转出 for the original, nobody else anything:
    not receipt_overdue (the return is closed), not permit_not_covering (the producer's own waste), not
    reconciliation (the return's 转出 is the original's), not unresolved mass."""
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    with uow_factory() as uow:
        out = man.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={"reason": "包装破损", "time": cst("2024-03-04T15:00")},
                                  entered_at=cst("2024-03-04T15:05"))
    back = out["follow_ons"][0]
    with uow_factory() as uow, pytest.raises(InputRejected) as e:  # a return is not "utilised" or "disposed of"
        man.receive_manifest(uow=uow, actor=SYSTEM, number=back, data={
            "time": cst("2024-03-05T10:00"), "lines": [{"line_no": 1, "received_t": "10", "method": "D10"}]},
            entered_at=cst("2024-03-05T10:00"))
    with uow_factory() as uow:
        got = man.receive_manifest(uow=uow, actor=SYSTEM, number=back, data={
            "time": cst("2024-03-05T10:00"), "lines": [{"line_no": 1, "received_t": "10"}]},
            entered_at=cst("2024-03-05T10:00"))
    assert got["status"] == "received" and got["is_return"] and got["lines"][0]["method"] == "S"
    ledger(uow_factory, s, "2024-03", stock=[(HW, 0, 10_000, 10_000)], out=[(HW, 10_000, r, no)],
           inn=[(HW, 10_000, r, back)])
    found = anomalies(uow_factory, None)
    assert [a for a in found if {no, back} & set(a["manifests"]) or s in a["units"]] == [], found
    # S is refused on an ordinary receipt
    other = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    with uow_factory() as uow, pytest.raises(InputRejected) as e:
        man.receive_manifest(uow=uow, actor=SYSTEM, number=other, data={
            "lines": [{"line_no": 1, "received_t": "10", "method": "S"}]})
    assert e.value.problems[0].code == "return_only"


def test_one_correct_rejection_raises_no_finding(uow_factory):
    """Refused in full and sent back, with the shipper's ledger naming the 转出 (as the manifest told it to) and
    the receiver's ledger reporting nothing of the code: the receiver took nothing, so no permit, capacity,
    unresolved or reconciliation finding is about it (only the return, still on its way, is the shipper's to
    confirm)."""
    p = unit(uow_factory)
    d = unit(uow_factory, "630105", permits=PERMIT)
    no = manifest(uow_factory, p, d, qty="1.488", shipped=cst("2024-03-05T09:00"))
    with uow_factory() as uow:
        follow = man.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={
            "reason": "包装破损", "time": cst("2024-03-05T15:00")},
            entered_at=cst("2024-03-05T15:05"))["follow_ons"][0]  # recorded when it happened (issue 16)
    ledger(uow_factory, p, "2024-03", stock=[(HW, 0, 1488, 0)], out=[(HW, 1488, d, no, "D10")])
    ledger(uow_factory, d, "2024-03", stock=[(HW2, 0, 10, 10)])
    found = anomalies(uow_factory, None, as_of=cst("2024-03-08T12:00"))
    assert [(a["kind"], a["message"]) for a in found] == []
    later = anomalies(uow_factory, None)
    assert {(a["kind"], tuple(a["manifests"])) for a in later} <= {("receipt_overdue", (follow,))}
