"""The typed rules (read once, defaults in one place) and the one unit-of-work convention (re-entrant, and a
rollback of everything when the outermost block is left without a commit)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import SQLModel, create_engine, select

from nofei.domain.rules import Rules
from nofei.storage.tables import UnitRow
from nofei.storage.uow import UnitOfWork


def test_rules_defaults_and_overrides():
    d = Rules()
    assert d.discrepancy == (Decimal("0.05"), 100)
    assert (d.receipt_working_days, d.storage_limit_days) == (5, 365)
    r = Rules.from_settings({"DISCREPANCY_RATIO": "0.1", "DISCREPANCY_MIN_KG": "250", "RECEIPT_WORKING_DAYS": 3,
                             "HOLIDAYS": "2024-03-08", "EXTRA_WORKDAYS": None})
    assert r.discrepancy == (Decimal("0.1"), 250) and r.receipt_working_days == 3
    # 2024-03-08 is a Friday: a holiday by the override, so Thursday + 1 working day is the next Monday
    assert r.calendar.add_working_days(date(2024, 3, 7), 1) == date(2024, 3, 11)
    assert d.calendar.add_working_days(date(2024, 3, 7), 1) == date(2024, 3, 8)
    assert hash(r) != hash(d) and Rules.from_settings({}) == d  # usable as a cache key


def test_rules_refuse_an_unreadable_setting_by_name():
    with pytest.raises(ValueError, match="DISCREPANCY_MIN_KG"):
        Rules.from_settings({"DISCREPANCY_MIN_KG": "a lot"})


def _factory(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'u.db'}")
    SQLModel.metadata.create_all(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


def _unit(code: str) -> UnitRow:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return UnitRow(credit_code=code, name="试验单位", district="630102", roles=["producer"], created_at=now,
                   updated_at=now)


def test_leaving_without_commit_rolls_back_and_inner_blocks_join_the_outer(tmp_path):
    f = _factory(tmp_path)
    uow = UnitOfWork(f, load_catalogue=False)
    with uow:
        uow.session.add(_unit("91630100000000001A"))
        with uow:  # a use case called inside another joins its transaction
            assert uow.active
            uow.session.add(_unit("91630100000000002A"))
        assert uow.active  # the inner exit did not close the outer block
    assert not uow.active
    with UnitOfWork(f, load_catalogue=False) as u2:
        assert u2.session.execute(select(UnitRow)).all() == []  # no commit: nothing stored
    with uow:
        uow.session.add(_unit("91630100000000003A"))
        with uow:
            uow.commit()
    with UnitOfWork(f, load_catalogue=False) as u3:
        assert [r.credit_code for r in u3.session.execute(select(UnitRow)).scalars()] == ["91630100000000003A"]
