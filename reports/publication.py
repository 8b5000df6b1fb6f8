"""大中城市固体废物污染环境防治信息: the city's yearly publication of how much 一般工业固体废物, 工业危险废物
and 医疗废物 arose and where it went (published by 6 June; official-check.md §10), as a section of the
annual report (issue 14).

Built from the report's own region totals (the one flow model's figures), so the publication can never
disagree with the report. 工业危险废物 is the hazardous stream of every unit until the registry tells
industrial units from social sources (unit_type, issue 18); 生活垃圾 is not held by nofei.
"""

from __future__ import annotations

from typing import Any

FIGURES: tuple[str, ...] = ("generated", "utilised", "disposed", "stored", "unresolved")  # of a stream's total
ITEMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("general_industrial", "一般工业固体废物", FIGURES),
    ("hazardous", "工业危险废物", FIGURES),
    ("medical", "医疗废物", tuple(f for f in FIGURES if f != "utilised")),  # the publication has no 利用量 for 医疗废物
)
FIGURE_ZH = {"generated": "产生量", "utilised": "综合利用量", "disposed": "处置量", "stored": "贮存量",
             "unresolved": "去向不明量"}


def publication(tonnage: list[dict[str, Any]], *, year: int, region: str, region_name: str) -> dict[str, Any]:
    """The section: per category the figures (t) of the region's totals, with their Chinese names."""
    totals = {r["stream"]: r for r in tonnage if r.get("level") == "region"}
    items: list[dict[str, Any]] = []
    for stream, name, figures in ITEMS:
        row = totals.get(stream, {})
        items.append({"stream": stream, "name": name,
                      "figures": [{"key": f, "name": FIGURE_ZH[f], "t": row.get(f"{f}_t") or 0.0} for f in figures]})
    columns = [{"key": k, "name": v} for k, v in FIGURE_ZH.items()]
    for it in items:
        it["values"] = {f["key"]: f["t"] for f in it["figures"]}
    return {"title": f"{region_name} {year} 年固体废物污染环境防治信息", "region": region, "items": items,
            "columns": columns,
            "note": "数量单位：吨；依据各单位月度台账现行版本。工业危险废物暂含社会源危险废物（单位类型登记后区分）；"
                    "生活垃圾不在本系统统计范围。"}
