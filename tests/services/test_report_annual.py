"""The annual report's own parts: completeness, region checks, and faithful rendering of the engine's figures."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.errors import InputRejected, PermissionDenied
from nofei.flows.indicators import INDICATORS
from nofei.storage.tables import LedgerRow, UnitRow
from reports import annual, flows, indicators
from reports.excel import write_annual_xlsx
from reports.html import render_annual_html
from tests.factories import unit_payload


def _unit(uow_factory, district: str, **kw) -> str:
    with uow_factory() as uow:
        return registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(district, **kw))["credit_code"]


def _ledger(uow_factory, credit_code: str, month: str, *, version: int = 1, current: bool = True) -> None:
    """A bare ledger version row: completeness looks only at which (unit, month) have a current version."""
    with uow_factory() as uow:
        uid = uow.session.query(UnitRow).filter_by(credit_code=credit_code).one().id
        uow.session.add(LedgerRow(unit_id=uid, month=month, year=int(month[:4]), version=version, is_current=current,
                                  sha256=f"{credit_code}{month}{version}".ljust(64, "0")[:64],
                                  uploaded_at=datetime.now(UTC)))
        uow.commit()


def _backdate_units(uow_factory, when: datetime) -> None:
    """As if the units had been registered at ``when``: ``reports_from`` is the registration month."""
    with uow_factory() as uow:
        for u in uow.session.query(UnitRow).all():
            u.created_at = when
            u.reports_from = f"{when:%Y-%m}"
        uow.commit()


def test_completeness_lists_the_missing_months_of_each_unit_in_the_region(uow_factory):
    a = _unit(uow_factory, "630104")
    b = _unit(uow_factory, "630102")
    _backdate_units(uow_factory, datetime(2023, 6, 1, tzinfo=UTC))
    for m in range(1, 13):
        if m != 5:
            _ledger(uow_factory, a, f"2024-{m:02d}")
    _ledger(uow_factory, b, "2024-01")
    _ledger(uow_factory, b, "2024-02", current=False)  # an old version only does not count

    with uow_factory() as uow:
        rows = annual.completeness(uow=uow, actor=SYSTEM, year=2024, region="630100", today=date(2025, 3, 1))
    by = {r["unit"]: r for r in rows}
    assert by[a]["missing_months"] == ["2024-05"]
    assert by[a]["reported"] == 11 and by[a]["expected"] == 12
    assert by[b]["missing_months"] == [f"2024-{m:02d}" for m in range(2, 13)]

    with uow_factory() as uow:
        only_west = annual.completeness(uow=uow, actor=SYSTEM, year=2024, region="630104", today=date(2025, 3, 1))
    assert [r["unit"] for r in only_west] == [a]


def test_the_trend_axis_is_the_years_with_a_current_ledger(uow_factory):
    a = _unit(uow_factory, "630104")
    _ledger(uow_factory, a, "2022-03")
    _ledger(uow_factory, a, "2023-01", current=False)  # a superseded version only: 2023 has no ledger
    _ledger(uow_factory, a, "2024-07")
    _ledger(uow_factory, a, "2024-08")
    with uow_factory() as uow:
        assert annual.years_present(uow) == [2022, 2024]


def test_a_month_is_owed_only_after_its_deadline_the_15th_of_the_next_month():
    from nofei.domain.completeness import months_owed

    assert months_owed(2025, None, date(2025, 4, 10)) == ["2025-01", "2025-02"]
    assert months_owed(2025, None, date(2025, 4, 15)) == ["2025-01", "2025-02"]  # the 15th is still on time
    assert months_owed(2025, None, date(2025, 4, 16)) == ["2025-01", "2025-02", "2025-03"]
    assert months_owed(2025, "2025-02", date(2025, 4, 16)) == ["2025-02", "2025-03"]
    assert months_owed(2026, None, date(2025, 4, 10)) == []
    assert months_owed(2024, None, date(2025, 1, 15)) == [f"2024-{m:02d}" for m in range(1, 12)]
    assert months_owed(2024, None, date(2025, 1, 16))[-1] == "2024-12"


def test_a_unit_registered_mid_year_is_expected_from_its_registration_month(uow_factory):
    a = _unit(uow_factory, "630104")
    _backdate_units(uow_factory, datetime(2024, 10, 15, tzinfo=UTC))
    with uow_factory() as uow:
        rows = annual.completeness(uow=uow, actor=SYSTEM, year=2024, region="630100", today=date(2025, 3, 1))
    assert rows[0]["unit"] == a and rows[0]["missing_months"] == ["2024-10", "2024-11", "2024-12"]


def test_enterprise_sees_only_its_own_units_in_completeness(uow_factory):
    a = _unit(uow_factory, "630104")
    _unit(uow_factory, "630104")
    ent = Actor(role="enterprise", units=frozenset({a}))
    with uow_factory() as uow:
        rows = annual.completeness(uow=uow, actor=ent, year=2024, region="630100", today=date(2025, 3, 1))
    assert [r["unit"] for r in rows] == [a]


def test_unknown_region_is_rejected_and_foreign_district_forbidden(uow_factory):
    with pytest.raises(InputRejected) as e:
        annual.build_annual_report(uow=uow_factory(), actor=SYSTEM, year=2024, region="999999")
    assert e.value.problems[0].field == "region"
    reg = Actor(role="regulator", district="630102")
    with pytest.raises(PermissionDenied):
        annual.build_annual_report(uow=uow_factory(), actor=reg, year=2024, region="630104")


def _fake_figures(monkeypatch, values: dict[str, dict[str, float | None]]) -> None:
    """Stands in for the flow model's figures (``reports.indicators``, ``reports.flows``): given figures per
    region, in the shapes those use cases return, so that the rendering can be checked against them."""

    def compute_indicators(*, uow, actor, year, region):
        out = []
        for d in INDICATORS:
            v = values.get(region, {}).get(d.key)
            target = 90.0 if d.key == "agricultural_film_recovery_rate" else None
            out.append({"key": d.key, "name": d.name, "value": v, "unit": d.unit, "numerator": None, "denominator": None,
                        "target": target, "meets_target": None if target is None or v is None else v >= target,
                        "units_count": 1, "ledgers_count": 2, "note": None if v is not None else "分母为 0"})
        return {"year": year, "region": region, "indicators": out}

    def stream_totals(*, uow, actor, year, region):
        west = {"generated_t": 10.0, "utilised_t": 6.0, "disposed_t": 3.0, "stored_t": 0.5, "unresolved_t": 0.5}
        zero = dict.fromkeys(west, 0.0)
        return {"year": year, "region": region, "streams": {"hazardous": west, "medical": zero},
                "districts": {"630104": {"hazardous": west, "medical": zero}, "630102": {"hazardous": zero}}}

    def fate_table(*, uow, actor, year, stream, region):
        return {"year": year, "stream": stream, "region": region, "producers": []}

    def sankey(*, uow, actor, year, stream, region):
        if stream != "hazardous":
            return {"nodes": [], "links": []}
        return {"nodes": [{"id": "p", "label": "城西区 产生者", "kind": "group"}, {"id": "U", "label": "利用", "kind": "fate"},
                          {"id": "X", "label": "去向不明", "kind": "fate"}],
                "links": [{"source": "p", "target": "U", "value": 6.0}, {"source": "p", "target": "X", "value": 0.5}]}

    monkeypatch.setattr(indicators, "compute_indicators", compute_indicators)
    monkeypatch.setattr(indicators, "stream_totals", stream_totals)
    monkeypatch.setattr(indicators, "fate_table", fate_table)
    monkeypatch.setattr(flows, "sankey", sankey)


def test_report_renders_the_engines_figures_in_json_xlsx_and_html(uow_factory, monkeypatch):
    _fake_figures(monkeypatch, {"630100": {"agricultural_film_recovery_rate": 92.5, "hazardous_utilisation_rate": 60.0},
                                "630104": {"agricultural_film_recovery_rate": 80.0}})
    anomalies = [{"kind": "overdue_receipt", "message": "接收未确认 <script>", "units": ["X1"], "mass_t": 1.25}]
    rep = annual.build_annual_report(uow=uow_factory(), actor=SYSTEM, year=2024, region="630100", anomalies=anomalies)

    film = next(i for i in rep["indicators"] if i["key"] == "agricultural_film_recovery_rate")
    assert film["value"] == 92.5 and film["meets_target"] is True
    assert [i["key"] for i in rep["indicators"]] == [d.key for d in INDICATORS]
    assert rep["summary"]["indicators_meeting_target"] == 1
    west = next(d for d in rep["districts"] if d["district"] == "630104")
    assert west["values"]["agricultural_film_recovery_rate"] == 80.0
    figures = {"generated_t": 10.0, "utilised_t": 6.0, "disposed_t": 3.0, "stored_t": 0.5, "unresolved_t": 0.5}
    # region totals per stream, then only the districts that have something of that stream
    assert [(t["stream"], t["district"], t["level"]) for t in rep["tonnage"]] == [
        ("hazardous", "630100", "region"), ("hazardous", "630104", "district"), ("medical", "630100", "region")]
    assert {k: rep["tonnage"][1][k] for k in figures} == figures

    wb = load_workbook(io.BytesIO(write_annual_xlsx(rep)))
    assert wb.sheetnames == ["说明", "指标", "分类分区吨数", "产生者去向", "异常", "填报完整性", "历年趋势", "防治信息"]
    ws = wb["指标"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]][:6] == ["指标键 key", "指标名称", "数值", "单位", "目标值", "是否达标"]
    film_row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "agricultural_film_recovery_rate")
    assert film_row[2] == 92.5 and film_row[4] == 90 and film_row[5] == "是"
    # issue 18: the sheets say which indicators are national ★ and which local
    assert ws.cell(row=1, column=12).value.startswith("指标类别")
    scopes = {r[0]: r[11] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert scopes["industrial_solid_waste_intensity"] == "国家必选指标 ★"
    assert scopes["manifest_execution_rate"] == "本地/项目指标"
    assert scopes["agricultural_film_recovery_rate"] == "国家指标（可选）"
    cover = {r[1]: r[0] for r in wb["说明"].iter_rows(values_only=True)}
    assert cover["医疗废物收集处置体系覆盖率（medical_collection_coverage_rate）"] == "国家必选指标 ★"
    assert cover["医疗废物集中处置率（medical_central_disposal_rate）"] == "本地/项目指标"
    t = wb["分类分区吨数"]
    assert [c.value for c in t[3]][1:] == ["630104", "城西区", 10, 6, 3, 0.5, 0.5]
    assert t["D2"].number_format == "#,##0.000"
    assert wb["异常"]["B2"].value == "接收未确认 <script>"

    page = render_annual_html(rep, lineage_base="/lineage")
    assert "<script>" not in page and "接收未确认 &lt;script&gt;" in page
    assert page.count('class="chart sankey"') == 1 and page.count("暂无流向数据") == 4
    assert 'class="link"' in page  # the hazardous Sankey drew its bands
    assert 'href="/lineage/agricultural_film_recovery_rate?year=2024&amp;region=630100"' in page
    assert "92.50" in page and "达标" in page
