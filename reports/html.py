"""The annual report as one self-contained Chinese HTML page: cards, trends, Sankeys, districts, tables.

All charts are SVG drawn on the server (``reports.svg``), the stylesheet is inlined, there is no
script: the page works offline, can be mailed as a file, and is safe under a strict CSP.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from nofei.catalogue import STREAM_NAMES_ZH
from reports import svg
from reports.annual import FATE_NAMES_ZH, FATES


def safe(markup: str) -> Markup:
    """Mark SVG/CSS produced by this package as safe: ``reports.svg`` escapes every label it writes."""
    return Markup(markup)  # noqa: S704 - built by reports.svg, which escapes all text


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_num
    return env


@cache
def stylesheet() -> str:
    """The report's CSS (also served as a static file by the web pages)."""
    return resources.files("reports").joinpath("static", "report.css").read_text(encoding="utf-8")


def fmt_num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    try:
        return f"{float(v):,.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def lineage_href(base: str, key: str, year: int, region: str) -> str:
    return f"{base.rstrip('/')}/{key}?{urlencode({'year': year, 'region': region})}"


def charts(report: dict[str, Any]) -> dict[str, Any]:
    """The report's SVG charts as safe markup, keyed by section (reused by the web dashboard)."""
    inds = report["indicators"]
    cards = []
    for i in inds:
        pts = [(p["year"], p["value"]) for p in report["trends"].get(i["key"], [])]
        cards.append({
            **i,
            "trend": safe(svg.line_chart({i["name"]: pts}, label=f"{i['name']} 历年趋势", unit=i.get("unit") or "",
                                           target=i.get("target"), width=360, height=150)),
        })
    rates = [i for i in inds if i.get("unit") == "%"]
    rate_chart = safe(svg.bar_chart([(i["name"].replace("综合", ""), i["value"]) for i in rates],
                                      label="各项比率指标 (%)", unit="%", width=620))
    sankeys = {}
    for stream, data in report["sankey"].items():
        sankeys[stream] = safe(svg.sankey(data["nodes"], data["links"],
                                            label=f"{STREAM_NAMES_ZH.get(stream, stream)} 流向 (吨)"))
    district_charts = []
    if report["districts"]:
        for i in rates:
            items = [(d["district_name"], d["values"].get(i["key"])) for d in report["districts"]]
            if all(v is None for _, v in items):
                continue  # nothing to compare: the table below still lists the rate as 无数据
            district_charts.append({"name": i["name"], "svg": safe(svg.bar_chart(
                items, label=f"{i['name']} 分区县对比", unit="%", target=i.get("target"), width=520))})
    tonnage_by_stream: dict[str, list[dict[str, Any]]] = {}
    for r in report["tonnage"]:
        tonnage_by_stream.setdefault(r["stream"], []).append(r)
    return {"cards": cards, "rates": rate_chart, "sankeys": sankeys, "districts": district_charts,
            "tonnage_by_stream": tonnage_by_stream}


def render_annual_html(report: dict[str, Any], *, lineage_base: str = "/lineage") -> str:
    """The whole page. ``lineage_base`` is where the drill-down links point (the web page of a figure's lineage)."""
    tpl = _env().get_template("annual.html")
    return tpl.render(r=report, c=charts(report), css=safe(stylesheet()), fates=FATES, fate_names=FATE_NAMES_ZH,
                      stream_names=STREAM_NAMES_ZH,
                      lineage=lambda key: lineage_href(lineage_base, key, report["year"], report["region"]))
