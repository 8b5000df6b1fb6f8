"""The live flow model equals a from-scratch build after any sequence of uploads, amendments and manifest steps.

Random city-years (hypothesis) with producers, two collectors that send to each other (chains and loops) and
two facilities; ledgers uploaded and amended through the ledger store (which writes the edge summaries in the
same transaction); manifests received in full, in part, or rejected (the load returned to the shipper). After
every step: the indicators from the live (incrementally refreshed) model are exactly those of a model built
from scratch from the database; a manifest's forward trace gives the fate shares of its receiver's node; every
Sankey group balances; a rejected manifest delivers nothing to its receiver.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgers import manifests as man
from ledgers import registry
from ledgers import trace as tr
from nofei.access import SYSTEM
from nofei.catalogue import CITY
from nofei.flows.indicators import NEEDED_STREAMS, compute
from nofei.storage import flowdata, flowstore
from nofei.storage.engine import make_engine, make_session_factory
from nofei.storage.uow import UnitOfWork
from reports.flows import flows
from reports.indicators import compute_indicators
from tests.factories import unit_payload
from tests.flowfactory import draft, store

HW = "900-200-08"
N_PROD = 3

step = st.one_of(
    st.tuples(st.just("ledger"), st.integers(0, N_PROD + 3), st.integers(1, 3), st.integers(0, 10_000)),
    st.tuples(st.just("manifest"), st.integers(0, N_PROD + 3), st.integers(0, N_PROD + 3),
              st.sampled_from(["receive", "partial", "reject"]), st.integers(1, 9)),
)


def _scratch(session, year):
    datas = flowdata.load_year(session, year, _CAT)
    attested = flowdata.load_attestations(session, year, _CAT)
    return flowdata._model(datas, attested)


_CAT = None


def _figures(model, session, year):
    streams = {s: (model[s].data, model[s].fate) for s in NEEDED_STREAMS}
    return [f.as_dict() for f in compute(streams, region=CITY, year=year, catalogue=_CAT,
                                         value_added=flowdata.value_added(session, year, CITY))]


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=3, max_size=9), seed=st.integers(0, 10**6))
def test_the_live_model_is_the_model_built_from_scratch(sqlite_template: Path, tmp_path_factory, steps, seed):
    global _CAT
    import random

    rnd = random.Random(seed)
    path = tmp_path_factory.mktemp("live") / "nofei.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    flowdata.clear_cache()

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions)

    roles = [["producer"]] * N_PROD + [["collector"], ["collector"], ["disposer"], ["utiliser"]]
    units = []
    for r in roles:
        with uow() as u:
            units.append(registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload("630104", roles=r))["credit_code"])
    months = {}
    try:
        for s in steps:
            if s[0] == "ledger":
                _k, who, month, extra = s
                cc = units[who]
                o, into, close = rnd.randint(0, 3), rnd.randint(0, 4), rnd.randint(0, 3)
                treat = rnd.randint(0, 3)
                method = "R9" if who == N_PROD + 3 else "D10"
                outs = [(units[rnd.choice([N_PROD, N_PROD + 1, N_PROD + 2, N_PROD + 3])], rnd.randint(1, 4))
                        for _ in range(rnd.randint(0, 2))]
                outs = [(r, t) for r, t in outs if r != cc]
                gen = close + treat + sum(t for _r, t in outs) - o - into
                if gen < 0:
                    close -= gen
                    gen = 0
                d = draft(cc, f"2024-{month:02d}", stocks=[(HW, o, gen, close)],
                          treat=[(HW, method, treat)] if treat else [],
                          out=[(HW, r, t) for r, t in outs],
                          into=[(HW, units[rnd.randrange(len(units))], into)] if into else [])
                cached = any(k[1] == 2024 for k, _e in flowdata._FLOWS.items())
                with uow() as u:
                    store(u.session, d)
                    u.commit()
                if cached:  # write-through: the commit brought the cached model up to the new stamp
                    with sessions() as s_:
                        stamp = flowstore.latest_change(s_, 2024)
                    assert [e.value.stamp for k, e in flowdata._FLOWS.items() if k[1] == 2024] == [stamp]
                months[(cc, month)] = months.get((cc, month), 0) + 1 + extra * 0
            else:
                _k, a, b, outcome, t = s
                if a == b:
                    continue
                with uow() as u:
                    no = man.create_manifest(uow=u, actor=SYSTEM, data={
                        "shipper": units[a], "receiver": units[b], "planned_date": date(2024, 6, 3),
                        "lines": [{"waste_code": HW, "quantity_t": str(t)}]})["number"]
                with uow() as u:
                    man.ship_manifest(uow=u, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王"})
                with uow() as u:
                    if outcome == "receive":
                        man.receive_manifest(uow=u, actor=SYSTEM, number=no, data={
                            "lines": [{"line_no": 1, "received_t": str(t), "method": "D10"}]})
                    else:
                        got = "0" if outcome == "reject" else str(t / 2)
                        man.reject_manifest(uow=u, actor=SYSTEM, number=no, data={
                            "reason": "拒收", "lines": [{"line_no": 1, "received_t": got, "method": "D10"}]})
                with uow() as u:
                    t_ = tr.trace_manifest(uow=u, actor=SYSTEM, number=no)
                if outcome == "reject":  # a rejected manifest delivers nothing to its receiver
                    assert all(h["to"] != units[b] for h in t_["manifest_hops"])
                with uow() as u:
                    _d, g, fate = flowdata.stream_year(u.session, "hazardous", 2024)
                    key = (units[b], HW)
                    f = t_["forward"][0]
                    if outcome == "receive" and key in fate.index and not t_["manifest_hops"][1:]:
                        shares = fate.shares(fate.index[key])
                        for k in ("U", "D", "S", "X"):  # the trace shows the fate shares of the same graph
                            assert f["fates"][k] == pytest.approx(t * shares[k], abs=0.002)
            with uow() as u:
                _CAT = u.catalogue
                live = flowdata.year_flows(u.session, 2024, catalogue=u.catalogue)
                assert _figures(live, u.session, 2024) == _figures(_scratch(u.session, 2024), u.session, 2024)
                for stream in NEEDED_STREAMS:
                    assert live[stream].data.nodes == _scratch(u.session, 2024)[stream].data.nodes
            with uow() as u:  # the read path (cached figures, recomputed after each write) gives the same
                api = compute_indicators(uow=u, actor=SYSTEM, year=2024)["indicators"]
                scratch = _scratch(u.session, 2024)
                want = [f.as_dict() for f in compute(
                    {s_: (scratch[s_].data, scratch[s_].fate) for s_ in NEEDED_STREAMS}, region=CITY, year=2024,
                    catalogue=u.catalogue, value_added=flowdata.value_added(u.session, 2024, CITY),
                    medical_institutions=flowdata.medical_institutions(u.session, 2024, CITY),
                    hw01_holders=flowdata.hw01_permit_holders(u.session, 2024))]
                assert api == want
            with uow() as u:
                sk = flows(uow=u, actor=SYSTEM, year=2024, stream="hazardous")["sankey"]
            inflow: dict[str, float] = {}
            outflow: dict[str, float] = {}
            for lk in sk["links"]:
                outflow[lk["source"]] = outflow.get(lk["source"], 0) + lk["value"]
                inflow[lk["target"]] = inflow.get(lk["target"], 0) + lk["value"]
            for n in sk["nodes"]:
                if n["kind"] == "group":  # every Sankey group balances (links are rounded to 1 kg)
                    links = sum(1 for lk in sk["links"] if n["id"] in (lk["source"], lk["target"]))
                    assert inflow.get(n["id"], 0) == pytest.approx(outflow.get(n["id"], 0), abs=0.001 * links + 1e-9)
    finally:
        flowdata.clear_cache()
        engine.dispose()


# --- disjoint groups that merge and split --------------------------------------------------
CODES = (HW, "900-199-08")
GROUPS = 3  # each: two producers, a collector, a disposer; flows stay within a group unless a step joins them

group_step = st.one_of(
    # a unit's ledger of a month: which codes it reports (none: it stops), and whether it ships to another group
    st.tuples(st.just("ledger"), st.integers(0, 4 * GROUPS - 1), st.integers(1, 2),
              st.sets(st.sampled_from(CODES), max_size=2), st.booleans()),
    st.tuples(st.just("manifest"), st.integers(0, 4 * GROUPS - 1), st.integers(0, 4 * GROUPS - 1),
              st.sampled_from(CODES), st.sampled_from(["receive", "reject"])),
)


def _fresh_engine(pg_engine, sqlite_template: Path, tmp_path_factory):
    """An empty migrated database for one example: the PostgreSQL test database truncated, or a SQLite copy."""
    if pg_engine is not None:
        from sqlalchemy import text

        from nofei.storage.tables import metadata

        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        with pg_engine.begin() as c:
            c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return make_engine(pg_engine.url.render_as_string(hide_password=False))
    path = tmp_path_factory.mktemp("groups") / "nofei.db"
    shutil.copyfile(sqlite_template, path)
    return make_engine(f"sqlite:///{path}")


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(group_step, min_size=4, max_size=12), seed=st.integers(0, 10**6))
def test_live_equals_scratch_while_disjoint_groups_merge_and_split(pg_engine, sqlite_template: Path,
                                                                     tmp_path_factory, steps, seed):
    """Units start and stop reporting a code, transfers and manifests between groups appear and disappear: after
    every write the live model (refreshed per connected component) is the scratch build — the same components
    and parts, fates to the last bit, the same graph up to ordering, the same indicators."""
    import random

    from tests.flowfactory import same_model

    rnd = random.Random(seed)
    engine = _fresh_engine(pg_engine, sqlite_template, tmp_path_factory)
    sessions = make_session_factory(engine)
    flowdata.clear_cache()

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions)

    roles = [["producer"], ["producer"], ["collector"], ["disposer"]] * GROUPS
    units = []
    for r in roles:
        with uow() as u:
            units.append(registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload("630104", roles=r))["credit_code"])

    def upload(who: int, month: int, codes: set[str], cross: bool) -> None:
        cc = units[who]
        g = who // 4
        downstream = [units[4 * g + k] for k in (2, 3) if 4 * g + k > who] or [units[4 * g + 3]]
        lines, treat, outs = [], [], []
        for code in sorted(codes):
            sent = [(r, rnd.randint(1, 4)) for r in downstream if r != cc]
            if cross:  # to a unit of another group (which may or may not report the code)
                other = units[rnd.choice([i for i in range(len(units)) if i // 4 != g])]
                sent.append((other, rnd.randint(1, 3)))
            d_ = rnd.randint(0, 3) if who % 4 == 3 else 0
            lines.append((code, 0, d_ + sum(t for _r, t in sent), 0))
            if d_:
                treat.append((code, "D10", d_))
            outs += [(code, r, t) for r, t in sent]
        with uow() as u:
            store(u.session, draft(cc, f"2024-{month:02d}", stocks=lines, treat=treat, out=outs))
            u.commit()

    try:
        for who in range(len(units)):  # most units report most codes in month 1, a few ship across groups
            upload(who, 1, {c for c in CODES if rnd.random() < 0.7}, rnd.random() < 0.15)
        with uow() as u:  # the model is cached from here on, so every step's write refreshes it
            flowdata.year_flows(u.session, 2024, catalogue=u.catalogue)
        for s in steps:
            if s[0] == "ledger":
                _k, who, month, codes, cross = s
                upload(who, month, codes, cross)
            else:
                _k, a, b, code, outcome = s
                if a == b:
                    continue
                with uow() as u:
                    no = man.create_manifest(uow=u, actor=SYSTEM, data={
                        "shipper": units[a], "receiver": units[b], "planned_date": date(2024, 6, 3),
                        "lines": [{"waste_code": code, "quantity_t": "2"}]})["number"]
                with uow() as u:
                    man.ship_manifest(uow=u, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王"})
                with uow() as u:
                    if outcome == "receive":
                        man.receive_manifest(uow=u, actor=SYSTEM, number=no, data={
                            "lines": [{"line_no": 1, "received_t": "2", "method": "D10"}]})
                    else:
                        man.reject_manifest(uow=u, actor=SYSTEM, number=no, data={
                            "reason": "拒收", "lines": [{"line_no": 1, "received_t": "0", "method": "D10"}]})
            with uow() as u:
                global _CAT
                _CAT = u.catalogue
                live = flowdata.year_flows(u.session, 2024, catalogue=u.catalogue)
                scratch = _scratch(u.session, 2024)
                same_model(live, scratch)
                assert _figures(live, u.session, 2024) == _figures(scratch, u.session, 2024)
    finally:
        flowdata.clear_cache()
        engine.dispose()
