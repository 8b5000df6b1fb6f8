"""The findings repository (``nofei.storage.findings``) on the test database (SQLite, or PostgreSQL with
NOFEI_TEST_DATABASE_URL): typed integer results on every backend, and the second connection beside."""

from __future__ import annotations

from ledgers import anomalies as svc
from nofei.access import SYSTEM
from nofei.storage import findings
from nofei.storage.engine import is_postgres
from nofei.storage.uow import UnitOfWork
from tests.services.test_anomalies import AS_OF, PERMIT, cst, manifest, unit


def test_over_capacity_counts_integer_kilograms_on_every_backend(uow_factory):
    # two received manifests of 10 t against 15 t of capacity: 20,000 kg taken, an int (PostgreSQL's SUM of a
    # bigint is numeric: it must not reach the finding as a Decimal, which JSON would write as a string)
    s = unit(uow_factory, "630104")
    r = unit(uow_factory, "630102", [{**PERMIT[0], "capacity_t": "15"}])
    for _ in range(2):
        manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    with uow_factory() as uow:
        (a,) = svc.list_anomalies(uow=uow, actor=SYSTEM, year=2024, kind="over_capacity", as_of=AS_OF, cache=False)
        (d,) = [x for x in findings.deliveries(uow.session, 2024) if x.receiver == r]
    assert type(a["detail"]["received_kg"]) is int and a["detail"]["received_kg"] == 20_000
    assert type(d.kg) is int and (d.kg, d.n, d.shipper) == (20_000, 2, s)


def test_run_beside_returns_the_heavy_part_and_runs_the_rest(uow_factory):
    rest_on: list[UnitOfWork] = []
    with uow_factory() as uow:
        heavy_on = findings.run_beside(uow, lambda u: u, rest_on.append)
        pg = is_postgres(uow.session)
    # the rest always runs here; the heavy part on a second connection on PostgreSQL only
    assert rest_on == [uow]
    assert (heavy_on is not uow) == pg
