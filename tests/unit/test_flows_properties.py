"""Property tests over random balanced city-years (hypothesis).

Every generated ledger balances (``tests.flowfactory.draft`` checks it). Properties:
Σ fates = Σ A_i; rates in [0, 100] where the formula bounds them; results do not depend on
the order in which ledgers were uploaded; district figures add up to the city's.
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nofei.catalogue import Catalogue
from nofei.flows.fate import attribute
from nofei.flows.indicators import NEEDED_STREAMS, compute
from nofei.flows.model import UnitInfo, data_from_drafts
from tests.flowfactory import cc, draft

CAT = Catalogue.default()
DISTRICTS = ["630102", "630103", "630104"]
CODES = ["SW01", "900-199-08", "841-001-01", "CC01"]  # codes that may carry stock from earlier years: SW, HW
PRIOR_STOCK = {"SW01", "900-199-08"}


@st.composite
def city_year(draw):
    """Units, and balanced monthly ledgers with transfers among them (cycles allowed) and to outsiders."""
    n = draw(st.integers(2, 7))
    seed = draw(st.integers(0, 10**9))
    rnd = random.Random(seed)
    units = [cc(200 + i, DISTRICTS[i % 3]) for i in range(n)]
    outsider = cc(999, "630123")
    months = [f"2025-{m:02d}" for m in range(1, draw(st.integers(1, 3)) + 1)]
    # transfers decided first: (month, sender, code, receiver, tonnes)
    sends = []
    for _ in range(draw(st.integers(0, 12))):
        s, r = rnd.sample(units, 2) if rnd.random() < 0.9 else (rnd.choice(units), outsider)
        sends.append((rnd.choice(months), s, rnd.choice(CODES), r, rnd.randint(1, 50)))
    close: dict[tuple[str, str], int] = {}
    drafts = []
    for m in months:
        for u in units:
            stocks, treat, out, into = [], [], [], []
            codes = sorted({c for mm, s, c, r, _ in sends if mm == m and u in (s, r)}
                           | ({rnd.choice(CODES)} if rnd.random() < 0.7 else set()))
            for c in codes:
                opening = close.get((u, c))
                if opening is None:
                    opening = rnd.randint(0, 40) if c in PRIOR_STOCK and rnd.random() < 0.5 else 0
                t_out = [(c, r, q) for mm, s, cc_, r, q in sends if mm == m and s == u and cc_ == c]
                t_in = [(c, s, q) for mm, s, cc_, r, q in sends if mm == m and r == u and cc_ == c]
                gen = rnd.randint(0, 60)
                avail = opening + gen + sum(q for *_, q in t_in) - sum(q for *_, q in t_out)
                if avail < 0:
                    gen -= avail
                    avail = 0
                own = rnd.randint(0, avail)
                if own:
                    treat.append((c, rnd.choice(["R5", "D1", "R9", "D10", "Y10", "C1"]), own))
                left = avail - own
                stocks.append((c, opening, gen, left))
                close[(u, c)] = left
                out += t_out
                into += t_in
            if stocks:
                drafts.append(draft(u, m, stocks=stocks, treat=treat, out=out, into=into))
    info = {u: UnitInfo(u, "", u[2:8]) for u in units}
    return drafts, info


def _figs(drafts, info, region="630100"):
    streams = {}
    for s in NEEDED_STREAMS:
        d = data_from_drafts(enumerate(drafts, start=1), stream=s, year=2025, catalogue=CAT, units=info)
        streams[s] = (d, attribute(d))
    return {f.key: f for f in compute(streams, region=region, year=2025, catalogue=CAT, value_added=None)}, streams


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(city_year())
def test_fates_sum_to_what_producers_answer_for(cy):
    drafts, info = cy
    for s in NEEDED_STREAMS:
        d = data_from_drafts(enumerate(drafts), stream=s, year=2025, catalogue=CAT, units=info)
        fr = attribute(d)
        if fr.exact_B is not None:  # exact: every row of B sums to exactly 1, so Σ_k A·B_k = A
            assert all(sum(row) == Fraction(1) for row in fr.exact_B)
        assert all(abs(sum(fr.shares(i).values()) - 1) < 1e-9 for i in range(len(fr.keys)))
        t = fr.totals(fr.producers())
        assert abs(t.utilised + t.disposed + t.stored + t.unresolved - t.attributable) <= 3  # 4 roundings to kg
        assert t.attributable == sum(n.generated + n.drawn for n in d.nodes.values() if n.generated > 0)


@SETTINGS
@given(city_year())
def test_rates_stay_between_0_and_100(cy):
    figs, _ = _figs(*cy)
    # bounded by their formulas (U ≤ G + U_prior etc.); kitchen waste never carries prior stock here
    for k in ("general_industrial_utilisation_rate", "hazardous_utilisation_rate",
              "hazardous_utilisation_disposal_rate", "medical_central_disposal_rate",
              "kitchen_waste_utilisation_rate", "manifest_execution_rate"):
        v = figs[k].value
        assert v is None or Decimal(0) <= v <= Decimal(100), (k, v)
        if v is None:
            assert figs[k].note


@SETTINGS
@given(city_year(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_upload_order(cy, rnd):
    drafts, info = cy
    shuffled = list(drafts)
    rnd.shuffle(shuffled)
    a, _ = _figs(drafts, info)
    b, _ = _figs(shuffled, info)
    assert [(f.key, f.value, f.numerator, f.denominator) for f in a.values()] == \
        [(f.key, f.value, f.numerator, f.denominator) for f in b.values()]


@SETTINGS
@given(city_year())
def test_districts_add_up_to_the_city(cy):
    drafts, info = cy
    _, streams = _figs(drafts, info)
    for _s, (_d, fr) in streams.items():
        city = fr.totals(fr.producers())
        parts = [fr.totals(fr.producers({u for u, i in info.items() if i.district == d})) for d in DISTRICTS]
        assert sum(p.generated for p in parts) == city.generated
        assert abs(sum(p.utilised for p in parts) - city.utilised) <= len(DISTRICTS)
