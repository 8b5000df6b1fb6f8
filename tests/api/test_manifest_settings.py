"""NOFEI_HOLIDAYS / NOFEI_EXTRA_WORKDAYS reach the manifests' working-day calendar through the app's settings."""

from datetime import date

import pytest

from api import create_app

TUESDAY = date(2024, 3, 5)   # an ordinary working day in the built-in calendar
SATURDAY = date(2024, 3, 9)  # an ordinary weekend day


@pytest.mark.parametrize("holidays", ['["2024-03-05"]', "2024-03-05", "2024-03-04, 2024-03-05"])
def test_env_holidays_make_a_working_day_a_holiday(monkeypatch, settings, holidays):
    monkeypatch.setenv("NOFEI_HOLIDAYS", holidays)
    monkeypatch.setenv("NOFEI_EXTRA_WORKDAYS", '["2024-03-09"]')
    app = create_app(settings)
    try:
        cal = app.extensions["nofei.rules"].calendar  # what deps.uow() hands to the use cases
        assert not cal.is_working_day(TUESDAY)
        assert cal.is_working_day(SATURDAY)
        assert cal.add_working_days(date(2024, 3, 4), 1) == date(2024, 3, 6)
    finally:
        app.extensions["nofei.engine"].dispose()


def test_without_env_the_builtin_calendar_applies(monkeypatch, settings):
    monkeypatch.delenv("NOFEI_HOLIDAYS", raising=False)
    monkeypatch.delenv("NOFEI_EXTRA_WORKDAYS", raising=False)
    app = create_app(settings)
    try:
        rules = app.extensions["nofei.rules"]
        assert rules.holidays is None and rules.extra_workdays is None
        cal = rules.calendar
        assert cal.is_working_day(TUESDAY) and not cal.is_working_day(SATURDAY)
        assert not cal.is_working_day(date(2024, 10, 1))  # 国庆, built in
    finally:
        app.extensions["nofei.engine"].dispose()
