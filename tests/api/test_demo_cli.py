"""``nofei demo``: builds a city, prints a working token per role, reuses it, refuses to clobber other data."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import func, select

from api.cli import _load_command_modules, cli
from nofei.storage.tables import LedgerRow

_load_command_modules()
ARGS = ("demo", "--no-serve", "--units", "30", "--months", "1", "--year", "2025")
TOKEN = re.compile(r"^  (admin|regulator [^:]+|enterprise [^:]+): (nf_\S+)$", re.M)


def run(url, *args):
    return CliRunner().invoke(cli, ["--database-url", url, *args])


def ledgers(app):
    with app.extensions["nofei.sessions"]() as s:
        return s.execute(select(func.count()).select_from(LedgerRow)).scalar_one()


def test_demo_builds_and_prints_a_working_token_per_role(tmp_path):
    from api import create_app

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    r = run(url, *ARGS, "--seed", "2")
    assert r.exit_code == 0, r.output
    assert "building" in r.output and "/login" in r.output
    tokens = dict(TOKEN.findall(r.output))
    assert len(tokens) == 4
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    c = app.test_client()
    h = {label.split()[0] + ("_city" if "(630100)" in label else ""): {"Authorization": f"Bearer {t}"}
         for label, t in tokens.items()}
    every = c.get("/api/v1/units?per_page=200", headers=h["admin"]).json
    city = c.get("/api/v1/units?per_page=200", headers=h["regulator_city"]).json
    district = c.get("/api/v1/units?per_page=200", headers=h["regulator"]).json
    own = c.get("/api/v1/units?per_page=200", headers=h["enterprise"]).json
    assert every["total"] == city["total"] >= 30
    assert 0 < district["total"] < every["total"]
    assert {u["district"] for u in district["items"]} == {"630105"}
    assert own["total"] == 1
    assert ledgers(app) > 0
    app.extensions["nofei.engine"].dispose()


def test_demo_reuses_the_same_city_and_refuses_to_clobber_another(tmp_path):
    from api import create_app

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run(url, *ARGS, "--seed", "4").exit_code == 0
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    before = ledgers(app)
    again = run(url, *ARGS, "--seed", "4")
    assert again.exit_code == 0 and "reusing" in again.output
    assert len(TOKEN.findall(again.output)) == 4
    assert ledgers(app) == before
    other = run(url, *ARGS, "--seed", "5")
    assert other.exit_code == 2 and "--fresh" in other.output
    assert ledgers(app) == before
    app.extensions["nofei.engine"].dispose()
    fresh = run(url, *ARGS, "--seed", "5", "--fresh")
    assert fresh.exit_code == 0 and "building" in fresh.output


def test_demo_refuses_a_year_whose_months_are_in_the_future(tmp_path):
    r = run(f"sqlite:///{tmp_path / 'demo.db'}", "demo", "--no-serve", "--year", "2999")
    assert r.exit_code == 2 and "past year" in r.output


def test_an_interrupted_build_is_started_again(tmp_path):
    from api import create_app
    from api.demo import load
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork
    from tests.factories import unit_payload

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:  # as if Ctrl-C came after the first units
        uow.audit(SYSTEM, load.START_ACTION, "demo", detail={"seed": 1})
        uow.commit()
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload())
    app.extensions["nofei.engine"].dispose()
    r = run(url, *ARGS, "--seed", "6")
    assert r.exit_code == 0, r.output
    assert "interrupted" in r.output and "building" in r.output
    assert len(TOKEN.findall(r.output)) == 4
