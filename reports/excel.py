"""The annual report as an .xlsx workbook (openpyxl): one sheet per section, readable in Excel and LibreOffice.

Every sheet has a bold frozen header row, an auto-filter, column widths set for Chinese text and
number formats (tonnes ``#,##0.000``, rates ``0.00``), so a regulator can sort and filter at once.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from nofei.catalogue import STREAM_NAMES_ZH
from nofei.text import neutralise_cell_text
from reports.publication import FIGURE_ZH

TONNES = "#,##0.000"
RATE = "0.00"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
GOOD = PatternFill("solid", fgColor="E2EFDA")
BAD = PatternFill("solid", fgColor="FCE4D6")

FIG_ZH = {k: f"{v}(吨)" for k, v in FIGURE_ZH.items()}  # the publication's figures, in tonnes
SheetSpec = list[tuple[str, str, int, str | None]]  # (field, header, width, number format)


def _sheet(wb: Workbook, title: str, spec: SheetSpec, rows: list[dict[str, Any]]) -> Worksheet:
    ws = wb.create_sheet(title)
    for c, (_, header, width, _fmt) in enumerate(spec, start=1):
        cell = ws.cell(row=1, column=c, value=header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(c)].width = width
    for r, row in enumerate(rows, start=2):
        for c, (key, _, _, fmt) in enumerate(spec, start=1):
            v = row.get(key)
            if isinstance(v, list | tuple):
                v = "、".join(str(x) for x in v)
            elif isinstance(v, dict):
                v = "; ".join(f"{k}={x}" for k, x in v.items())
            cell = ws.cell(row=r, column=c, value=neutralise_cell_text(v))
            if fmt and isinstance(v, int | float) and not isinstance(v, bool):
                cell.number_format = fmt
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 30
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(spec))}{len(rows) + 1}"
    return ws


def _yes_no(v: Any) -> str:
    return {True: "是", False: "否"}.get(v, "—")


INDICATOR_SPEC: SheetSpec = [
    ("key", "指标键 key", 36, None), ("name", "指标名称", 30, None), ("value", "数值", 14, RATE),
    ("unit", "单位", 9, None), ("target", "目标值", 12, RATE), ("meets", "是否达标", 10, None),
    ("numerator", "分子", 16, TONNES), ("denominator", "分母", 16, TONNES),
    ("units_count", "单位数", 9, "0"), ("ledgers_count", "台账数", 9, "0"), ("note", "说明", 40, None),
    ("scope_zh", "指标类别（★ 国家必选 / 国家 / 本地）", 24, None),
]
TONNAGE_SPEC: SheetSpec = [
    ("stream_name", "类别", 18, None), ("district", "区县代码", 10, None), ("district_name", "区县", 22, None),
    ("generated_t", "产生量(吨)", 15, TONNES), ("utilised_t", "利用量(吨)", 15, TONNES),
    ("disposed_t", "处置量(吨)", 15, TONNES), ("stored_t", "贮存量(吨)", 15, TONNES),
    ("unresolved_t", "去向不明(吨)", 15, TONNES),
]
FATE_SPEC: SheetSpec = [
    ("stream_name", "类别", 16, None), ("unit", "统一社会信用代码", 22, None), ("unit_name", "单位名称", 28, None),
    ("district", "区县", 10, None), ("code", "废物代码", 14, None), ("attributed_t", "应负责量(吨)", 15, TONNES),
    ("utilised_t", "利用(吨)", 13, TONNES), ("disposed_t", "处置(吨)", 13, TONNES),
    ("stored_t", "贮存(吨)", 13, TONNES), ("unresolved_t", "去向不明(吨)", 14, TONNES),
]
ANOMALY_SPEC: SheetSpec = [
    ("kind", "类型", 22, None), ("message", "说明", 50, None), ("units", "涉及单位", 30, None),
    ("manifests", "联单", 22, None), ("mass_t", "涉及量(吨)", 14, TONNES), ("district", "区县", 10, None),
    ("detail", "详情", 40, None),
]
COMPLETENESS_SPEC: SheetSpec = [
    ("unit", "统一社会信用代码", 22, None), ("unit_name", "单位名称", 28, None),
    ("district_name", "区县", 16, None), ("reports_from", "应报起始月", 12, None),
    ("expected", "应报月数", 10, "0"), ("reported", "已报月数", 10, "0"),
    ("missing_months", "未报月份", 60, None),
]
MEETS_FILL = {True: GOOD, False: BAD}  # the 是否达标 cell of an indicator that meets (or misses) its target


def _cover_lines(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The 说明 sheet: what the report is, its headline counts, how to read it, and the indicators' scopes."""
    sm = report["summary"]
    lines: list[tuple[str, Any]] = [
        ("报告", f"{report['region_name']} {report['year']} 年度无废城市建设报告"),
        ("区域代码", report["region"]),
        ("年度", report["year"]),
        ("生成时间", report["generated_at"]),
        ("达标指标", f"{sm['indicators_meeting_target']} / {sm['indicators_with_target']}"),
        ("登记单位", sm["units_registered"]),
        ("应报单位（已有到期月份）", sm.get("units_owing", 0)),
        ("按月报齐单位", sm["units_complete"]),
        ("缺报月数 / 应报月数", f"{sm.get('months_missing', 0)} / {sm.get('months_expected', 0)}"),
        ("异常事项", sm["anomalies"]),
        ("口径", "数量单位为吨；各项指标按 indicators.md 自当年各单位月度台账的现行版本计算。"),
        ("指标类别", "★ = 国家“无废城市”建设指标体系必选指标；国家指标 = 国家指标体系中的可选指标（2019 年版定义）；"
                     "本地指标 = 西宁市规划或本系统的本地口径。"),
    ]
    return lines + [(i.get("scope_zh") or "", f"{i['name']}（{i['key']}）") for i in report["indicators"]]


def _cover(wb: Workbook, report: dict[str, Any]) -> None:
    cover = wb.active
    assert cover is not None
    cover.title = "说明"
    cover.column_dimensions["A"].width = 22
    cover.column_dimensions["B"].width = 60
    for r, (k, v) in enumerate(_cover_lines(report), start=1):
        cover.cell(row=r, column=1, value=k).font = Font(bold=True)
        cover.cell(row=r, column=2, value=neutralise_cell_text(v))


def _indicators(wb: Workbook, report: dict[str, Any]) -> None:
    """The 指标 sheet; 是否达标 green when the target is met, red when it is not."""
    rows = [{**i, "meets": _yes_no(i.get("meets_target"))} for i in report["indicators"]]
    ws = _sheet(wb, "指标", INDICATOR_SPEC, rows)
    for r, i in enumerate(rows, start=2):
        meets = i.get("meets_target")
        if isinstance(meets, bool):
            ws.cell(row=r, column=6).fill = MEETS_FILL[meets]


def _first(a: dict[str, Any], *keys: str) -> Any:
    """``a[k1] or a[k2] …``: the first of ``keys`` that ``a`` fills, else the last one's value (anomalies of
    different families name their fields differently)."""
    for k in keys[:-1]:
        if a.get(k):
            return a.get(k)
    return a.get(keys[-1])


def _anomaly_row(a: dict[str, Any]) -> dict[str, Any]:
    return {"kind": _first(a, "title", "kind"), "message": _first(a, "message", "description") or "",
            "units": _first(a, "units", "unit") or "", "manifests": _first(a, "manifests", "manifest") or "",
            "mass_t": a.get("mass_t") if a.get("mass_t") is not None else a.get("quantity_t"),
            "district": a.get("district") or "", "detail": a.get("detail") or ""}


def _trend_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per indicator, one column per year."""
    names = {i["key"]: i["name"] for i in report["indicators"]}
    return [{"name": names.get(key, key), **{str(p["year"]): p["value"] for p in pts}}
            for key, pts in report["trends"].items()]


def write_annual_xlsx(report: dict[str, Any]) -> bytes:
    """Render the report dict of :func:`reports.annual.build_annual_report` as workbook bytes."""
    wb = Workbook()
    _cover(wb, report)
    _indicators(wb, report)
    _sheet(wb, "分类分区吨数", TONNAGE_SPEC, report["tonnage"])
    _sheet(wb, "产生者去向", FATE_SPEC,
           [{**r, "stream_name": STREAM_NAMES_ZH.get(r["stream"], r["stream"])} for r in report["fate"]])
    _sheet(wb, "异常", ANOMALY_SPEC, [_anomaly_row(a) for a in report["anomalies"]])
    _sheet(wb, "填报完整性", COMPLETENESS_SPEC, report["completeness"])
    _sheet(wb, "历年趋势", [("name", "指标", 30, None)] + [(str(y), f"{y}年", 12, RATE) for y in report["years"]],
           _trend_rows(report))
    pub = report.get("publication")
    if pub:
        _sheet(wb, "防治信息", [("name", "类别", 18, None)] + [(f, FIG_ZH[f], 14, TONNES) for f in FIG_ZH],
               [{"name": it["name"], **{f["key"]: f["t"] for f in it["figures"]}} for it in pub["items"]])
    return _save(wb)


def _save(wb: Workbook) -> bytes:
    """The workbook as bytes; the worksheet temp files openpyxl registered during a failed save are removed
    (``imports.writer.workbook_bytes`` does the same; ``reports`` may not import ``imports``)."""
    import os

    from openpyxl.worksheet import _writer

    before = set(_writer.ALL_TEMP_FILES)
    buf = io.BytesIO()
    try:
        wb.save(buf)
    except BaseException:
        for path in [p for p in _writer.ALL_TEMP_FILES if p not in before]:
            if os.path.exists(path):
                os.remove(path)
            _writer.ALL_TEMP_FILES.remove(path)
        raise
    return buf.getvalue()
