"""The three-way reconciliation read from the live flow model equals one worked from the raw rows.

Random city-years (seeded): manifests created, shipped, received in full or in part, refused (the load returned
to the shipper or sent on), corrected; ledgers citing their numbers with the right, a wrong or an unknown
number, in the year and in January of the next. After each step the reconciliation is read (so the cached model
is refreshed step by step, never rebuilt), and compared with an oracle computed in this file from the current
manifest, line, ledger and transfer rows alone: the (number, code), the reason and the four sides. The oracle
applies the rule of ledger-workbook.md "Counterparts" directly (Decimal tolerance, times on CST); it shares no
code with ``nofei.flows.counterparts`` or ``nofei.storage.sides``.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ledgers import manifests as man
from ledgers.anomalies.reconciliation import disagreements
from nofei.access import SYSTEM
from nofei.domain.calendar import CST
from nofei.domain.findings import following_month_cutoff
from nofei.storage import flowdata
from nofei.storage.tables import LedgerRow, ManifestLineRow, ManifestRow, TransferEntryRow, UnitRow
from tests.services.test_anomalies import HW, HW2, PERMIT, ledger, unit

YEAR = 2024
AS_OF = datetime(2025, 3, 10, tzinfo=UTC)


def oracle(session, year, as_of, ratio=Decimal("0.05"), min_kg=100):
    """{(number, code): (reason, out, shipped, received, in)} worked from the rows, by the rule's text."""
    cutoff = following_month_cutoff(as_of)
    lo, hi = f"{year - 1}0000000000", f"{year + 1}9999999999"
    sides: dict[tuple[str, str], dict] = {}
    for t, lr in session.query(TransferEntryRow, LedgerRow).join(LedgerRow, LedgerRow.id == TransferEntryRow.ledger_id):
        if not lr.is_current or lr.year not in (year, year + 1) or not t.manifest_no or len(t.manifest_no) != 14:
            continue
        s = sides.setdefault((t.manifest_no, t.code), {})
        s[t.direction] = s.get(t.direction, 0) + t.qty_kg
    codes = {u.id: u.credit_code for u in session.query(UnitRow)}
    for m in session.query(ManifestRow).filter(ManifestRow.is_current.is_(True)):
        if not lo <= m.number <= hi:
            continue
        for ln in session.query(ManifestLineRow).filter(ManifestLineRow.manifest_id == m.id):
            s = sides.setdefault((m.number, ln.waste_code), {})
            s["m"] = m
            s["shipped"] = s.get("shipped", 0) + ln.quantity_kg
            s["received"] = s.get("received", 0) + (ln.received_kg or 0)

    def before(t):
        return t is not None and t.replace(tzinfo=UTC).astimezone(CST) < cutoff

    def differs(kg, against):
        d = abs(kg - against)
        return d > min_kg and Decimal(d) > ratio * against

    out = {}
    for key, s in sides.items():
        m, o, i = s.get("m"), s.get("out"), s.get("in")
        if m is None:
            why = "unknown_number" if o is not None or i is not None else None
        elif o is not None and m.status != "submitted" and differs(o, s["shipped"]):
            why = "out_vs_manifest"
        elif i is not None and m.status in ("received", "partially_received") and differs(i, s["received"]):
            why = "in_vs_manifest"
        elif m.planned_date.year != year:
            why = None
        elif o is None and m.status != "submitted" and m.parent_number is None and before(m.shipped_at):
            why = "out_missing"
        elif (i is None and m.status in ("received", "partially_received") and s["received"] > 0
              and before(m.received_at)):
            why = "in_missing"
        else:
            why = None
        if why:
            out[key] = (why, o, s.get("shipped") if m else None, s.get("received") if m else None, i)
            assert m is None or codes[m.shipper_id]
    return out


def got(uow_factory, year=YEAR, as_of=AS_OF):
    """The disagreements as a sorted list (one per (number, code): a duplicate would show)."""
    with uow_factory() as uow:
        return sorted(((d.number, d.code), (d.reason, d.out_kg, d.shipped, d.received, d.in_kg))
                      for d in disagreements(uow, year, as_of))


def expected(uow_factory, year=YEAR, as_of=AS_OF):
    with uow_factory() as uow:
        return sorted(oracle(uow.session, year, as_of).items())


def t(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


class City:
    """The random steps of one city-year."""

    def __init__(self, uow_factory, rnd: random.Random) -> None:
        self.f, self.rnd = uow_factory, rnd
        self.shippers = [unit(uow_factory, "630104") for _ in range(2)]
        self.receivers = [unit(uow_factory, "630102", PERMIT) for _ in range(2)]
        self.numbers: list[tuple[str, str, str, str, int]] = []  # number, shipper, receiver, code, kg
        self.versions: dict[tuple[str, str], int] = {}

    def new_manifest(self) -> None:
        r = self.rnd
        s, rc, code = r.choice(self.shippers), r.choice(self.receivers), r.choice([HW, HW2])
        planned = date(YEAR, 1, 2) + timedelta(days=r.choice([-20, 30, 80, 200, 350, 370]))
        qty = r.randint(1, 30)
        with self.f() as uow:
            no = man.create_manifest(uow=uow, actor=SYSTEM, data={
                "shipper": s, "receiver": rc, "planned_date": planned,
                "lines": [{"waste_code": code, "quantity_t": str(qty)}]})["number"]
        self.numbers.append((no, s, rc, code, qty * 1000))
        fate = r.choice(["submitted", "shipped", "received", "partial", "rejected"])
        if fate == "submitted":
            return
        with self.f() as uow:
            man.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王",
                                                                       "time": t(planned)}, entered_at=t(planned))
        when = t(planned + timedelta(days=1))
        with self.f() as uow:
            if fate in ("received", "partial"):
                got_t = str(qty) if fate == "received" else str(Decimal(qty) * Decimal("0.7"))
                man.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={
                    "time": when, "lines": [{"line_no": 1, "received_t": got_t, "method": "D10"}]}, entered_at=when)
            elif fate == "rejected":
                man.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={"reason": "包装破损", "time": when},
                                    entered_at=when)

    def ledger_rows(self) -> None:
        """A month's 转出 of a shipper or 转入 of a receiver citing known numbers (right, off, or mistyped)."""
        r = self.rnd
        if not self.numbers:
            return
        month = r.choice([f"{YEAR}-{m:02d}" for m in (1, 3, 6, 12)] + [f"{YEAR + 1}-01"])
        picks = r.sample(self.numbers, k=min(len(self.numbers), r.randint(1, 3)))
        side = r.choice(["out", "in"])
        rows = []
        for no, s, rc, code, qty in picks:
            kg = r.choice([qty, qty, qty + 40, 1_000 * r.randint(1, 30), 50])
            roll = r.random()
            # the right number; a digit mistyped (unknown); or letters in it (no manifest can have it)
            cited = no if roll < 0.8 else no[:-1] + str((int(no[-1]) + 1) % 10) if roll < 0.93 else no[:-3] + "ABC"
            rows.append((code, kg, rc if side == "out" else s, cited))
        who = picks[0][1] if side == "out" else picks[0][2]
        v = self.versions[(who, month)] = self.versions.get((who, month), 0) + 1
        ledger(self.f, who, month, stock=[(HW, 0, 0, 0)], version=v, **({"out": rows} if side == "out" else {"inn": rows}))


@pytest.mark.parametrize("seed", range(6))
def test_reconciliation_from_the_live_model_equals_the_rows(uow_factory, seed):
    rnd = random.Random(seed)
    city = City(uow_factory, rnd)
    flowdata.clear_cache()
    seen = set()
    for _ in range(14):
        (city.new_manifest if rnd.random() < 0.55 else city.ledger_rows)()
        want = expected(uow_factory)
        assert got(uow_factory) == want
        seen |= {v[0] for _k, v in want}
    # and from a cold model: the same
    flowdata.clear_cache()
    assert got(uow_factory) == expected(uow_factory)
    assert got(uow_factory, as_of=datetime(YEAR, 5, 20, tzinfo=UTC)) == expected(uow_factory,
                                                                                  as_of=datetime(YEAR, 5, 20, tzinfo=UTC))
    assert seen, "the scenario disagreed somewhere"


def test_every_reason_is_reached_by_the_scenarios(uow_factory):
    """The random scenarios above are worth something only if they reach each reason: run them all here."""
    reasons: set[str] = set()
    for seed in range(6):
        rnd = random.Random(seed)
        city = City(uow_factory, rnd)
        for _ in range(14):
            (city.new_manifest if rnd.random() < 0.55 else city.ledger_rows)()
        reasons |= {v[0] for _k, v in expected(uow_factory)}
    assert reasons == {"unknown_number", "out_vs_manifest", "in_vs_manifest", "out_missing", "in_missing"}


def test_a_correction_that_moves_the_planned_year_leaves_the_old_years_model(uow_factory):
    """The live model of 2024 drops a manifest corrected to 2025 (the old year is noted too), and the 2025 one
    takes it; both equal the rows."""
    s, r = unit(uow_factory, "630104"), unit(uow_factory, "630102", PERMIT)
    with uow_factory() as uow:
        no = man.create_manifest(uow=uow, actor=SYSTEM, data={
            "shipper": s, "receiver": r, "planned_date": date(2024, 12, 30),
            "lines": [{"waste_code": HW, "quantity_t": "4"}]})["number"]
    ledger(uow_factory, s, "2024-12", stock=[(HW, 0, 0, 0)], out=[(HW, 3_000, r, no)])
    flowdata.clear_cache()
    assert got(uow_factory) == expected(uow_factory)  # the 2024 model is built and cached
    with uow_factory() as uow:
        assert no in {m.number for m in map(flowdata.manifest_sides(uow.session, 2024).side,
                                               range(len(flowdata.manifest_sides(uow.session, 2024))))}
        man.correct_manifest(uow=uow, actor=SYSTEM, number=no, data={"reason": "改期", "planned_date": date(2025, 1, 3)})
    with uow_factory() as uow:
        m24, m25 = flowdata.manifest_sides(uow.session, 2024), flowdata.manifest_sides(uow.session, 2025)
        assert no not in {m24.side(i).number for i in range(len(m24))}
        assert no in {m25.side(i).number for i in range(len(m25))}
    assert got(uow_factory) == expected(uow_factory)
    assert got(uow_factory, 2025) == expected(uow_factory, 2025)
