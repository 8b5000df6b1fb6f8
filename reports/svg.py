"""Charts as SVG text rendered on the server: bars against a target, year trends, Sankey, path graph.

Why hand-written SVG: the pages must work offline (no CDN) and under a strict Content-Security-Policy
(no script, no inline ``style``), so every chart is plain markup with presentation attributes only.
Every label goes through :func:`html.escape`; nothing from a client reaches the markup unescaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

PALETTE = ("#2b7a78", "#3a6ea5", "#c27c0e", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400")
FATE_COLOURS = {"U": "#2e8b57", "D": "#3a6ea5", "S": "#c27c0e", "X": "#c0392b"}
FONT = 'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, Microsoft YaHei, sans-serif"'


def _e(s: Any) -> str:
    return escape(str(s), quote=True)


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def _open(width: int, height: int, label: str, cls: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" viewBox="0 0 {width} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{_e(label)}" {FONT} '
            f'font-size="12"><title>{_e(label)}</title>')


def empty(label: str, message: str = "暂无数据", width: int = 480, height: int = 60) -> str:
    """A placeholder chart that says why there is nothing to draw."""
    return (_open(width, height, label, "empty")
            + f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" fill="#777">{_e(message)}</text></svg>')


def bar_chart(items: Sequence[tuple[str, float | None]], *, label: str, unit: str = "",
              target: float | None = None, width: int = 520, digits: int = 2) -> str:
    """Horizontal bars, one per item, with an optional vertical target line (the plan's target)."""
    rows = [(str(n), v) for n, v in items]
    if not rows:
        return empty(label)
    longest = max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in n) for n, _ in rows)
    left, right, bar_h, gap = min(width // 2, 16 + longest * 7), 80, 18, 8
    height = 20 + len(rows) * (bar_h + gap) + 10
    vals = [v for _, v in rows if v is not None]
    vmax = max([*vals, target or 0, 0.0]) or 1.0
    scale = (width - left - right) / vmax
    out = [_open(width, height, label, "bars")]
    for i, (name, v) in enumerate(rows):
        y = 20 + i * (bar_h + gap)
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end" fill="#333">{_e(name)}</text>')
        if v is None:
            out.append(f'<text x="{left + 4}" y="{y + bar_h - 5}" fill="#999">无数据</text>')
            continue
        w = max(0.0, v * scale)
        colour = PALETTE[0]
        if target is not None:
            colour = "#2e8b57" if v >= target else "#c0392b"
        out.append(f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="2" fill="{colour}">'
                   f'<title>{_e(name)}: {_fmt(v, digits)} {_e(unit)}</title></rect>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}" fill="#333">{_fmt(v, digits)} {_e(unit)}</text>')
    if target is not None:
        x = left + target * scale
        out.append(f'<line class="target" x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{height - 6}" stroke="#222" '
                   f'stroke-dasharray="4 3" stroke-width="1.5"/>')
        out.append(f'<text x="{x:.1f}" y="10" text-anchor="middle" fill="#222" font-size="10">目标 {_fmt(target, digits)}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(series: dict[str, list[tuple[int, float | None]]], *, label: str, unit: str = "",
               target: float | None = None, width: int = 520, height: int = 220) -> str:
    """Values over years, one polyline per series; a dashed line for the target."""
    pts = [(x, y) for s in series.values() for x, y in s if y is not None]
    if not pts:
        return empty(label, "暂无历年数据")
    years = sorted({x for s in series.values() for x, _ in s})
    ys = [y for _, y in pts] + ([target] if target is not None else [])
    ymin, ymax = min(0.0, min(ys)), max(ys) or 1.0
    if ymax == ymin:
        ymax = ymin + 1
    left, right, top, bottom = 56, 20, 16, 30
    pw, ph = width - left - right, height - top - bottom

    def xp(x: int) -> float:
        return left + (pw * (years.index(x) / (len(years) - 1)) if len(years) > 1 else pw / 2)

    def yp(y: float) -> float:
        return top + ph - (y - ymin) / (ymax - ymin) * ph

    out = [_open(width, height, label, "trend")]
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#999"/>')
    for frac in (0.0, 0.5, 1.0):
        v = ymin + (ymax - ymin) * frac
        out.append(f'<text x="{left - 4}" y="{yp(v) + 4:.1f}" text-anchor="end" fill="#555" font-size="10">{_fmt(v, 1)}</text>')
    for x in years:
        out.append(f'<text x="{xp(x):.1f}" y="{height - 10}" text-anchor="middle" fill="#555" font-size="11">{x}</text>')
    if target is not None:
        out.append(f'<line class="target" x1="{left}" y1="{yp(target):.1f}" x2="{left + pw}" y2="{yp(target):.1f}" '
                   f'stroke="#222" stroke-dasharray="4 3"/>')
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        good = [(x, y) for x, y in s if y is not None]
        if len(good) > 1:
            d = " ".join(f"{xp(x):.1f},{yp(y):.1f}" for x, y in good)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in good:
            out.append(f'<circle class="point" cx="{xp(x):.1f}" cy="{yp(y):.1f}" r="3.5" fill="{colour}">'
                       f'<title>{_e(name)} {x}: {_fmt(y)} {_e(unit)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


@dataclass
class _Node:
    id: str
    label: str
    layer: int = 0
    size: float = 0.0
    y: float = 0.0
    colour: str = PALETTE[0]


def _layers(ids: list[str], links: list[tuple[str, str, float]]) -> dict[str, int]:
    """Longest-path layering from the sources; a cycle cannot loop forever (at most len(ids) passes)."""
    layer = dict.fromkeys(ids, 0)
    for _ in range(len(ids)):
        changed = False
        for s, t, _v in links:
            if s != t and layer[t] < layer[s] + 1 and layer[s] + 1 < len(ids):
                layer[t] = layer[s] + 1
                changed = True
        if not changed:
            break
    return layer


def sankey(nodes: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]], *, label: str,
           unit: str = "t", width: int = 760, height: int = 360) -> str:
    """A Sankey diagram: nodes in columns by longest path, bands as cubic curves with width ∝ tonnes.

    ``nodes``: ``{id, label}``; ``links``: ``{source, target, value}`` (tonnes). Fates U/D/S/X (ids or
    ``kind``) get their fixed colours so every diagram reads the same way."""
    ls = [(str(x["source"]), str(x["target"]), float(x["value"])) for x in links if float(x.get("value") or 0) > 0]
    if not ls:
        return empty(label, "暂无流向数据", width, 60)
    by_id: dict[str, _Node] = {}
    for raw in nodes:
        by_id[str(raw["id"])] = _Node(str(raw["id"]), str(raw.get("label") or raw["id"]))
    for s, t, _ in ls:
        for i in (s, t):
            by_id.setdefault(i, _Node(i, i))
    for raw in nodes:
        kind = str(raw.get("kind") or raw.get("fate") or raw["id"])
        if kind in FATE_COLOURS:
            by_id[str(raw["id"])].colour = FATE_COLOURS[kind]
    ids = list(by_id)
    for k, nid in enumerate(ids):
        if by_id[nid].colour == PALETTE[0] and nid not in FATE_COLOURS:
            by_id[nid].colour = PALETTE[k % len(PALETTE)]
        elif nid in FATE_COLOURS:
            by_id[nid].colour = FATE_COLOURS[nid]
    layer = _layers(ids, ls)
    inflow: dict[str, float] = defaultdict(float)
    outflow: dict[str, float] = defaultdict(float)
    for s, t, v in ls:
        outflow[s] += v
        inflow[t] += v
    for nid, n in by_id.items():
        n.layer = layer[nid]
        n.size = max(inflow[nid], outflow[nid])
    ids = [i for i in ids if by_id[i].size > 0]
    ncols = max(by_id[i].layer for i in ids) + 1
    cols: dict[int, list[_Node]] = defaultdict(list)
    for i in ids:
        cols[by_id[i].layer].append(by_id[i])
    top, bottom, pad, node_w = 10, 10, 12, 14
    left_margin, right_margin = 8, 150
    avail = height - top - bottom
    scale = min((avail - pad * (len(c) - 1)) / (sum(n.size for n in c) or 1) for c in cols.values())
    scale = max(scale, 0.0)
    colx = {c: left_margin + (width - left_margin - right_margin - node_w) * (c / max(1, ncols - 1)) for c in cols}
    for col in cols.values():
        y: float = top
        for n in col:
            n.y = y
            y += max(n.size * scale, 2) + pad
    out = [_open(width, height, label, "sankey")]
    out_off: dict[str, float] = defaultdict(float)
    in_off: dict[str, float] = defaultdict(float)
    for s, t, v in sorted(ls, key=lambda x: (by_id[x[0]].y, by_id[x[1]].y)):
        a, b = by_id[s], by_id[t]
        w = max(v * scale, 1)
        x0, x1 = colx[a.layer] + node_w, colx[b.layer]
        y0 = a.y + out_off[s] + w / 2
        y1 = b.y + in_off[t] + w / 2
        out_off[s] += v * scale
        in_off[t] += v * scale
        if x1 <= x0:  # a back edge in a loop: draw it below, as a return arc
            x1 = colx[b.layer] + node_w / 2
        mx = (x0 + x1) / 2
        out.append(f'<path class="link" d="M{x0:.1f},{y0:.1f} C{mx:.1f},{y0:.1f} {mx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
                   f'fill="none" stroke="{a.colour}" stroke-opacity="0.35" stroke-width="{w:.1f}">'
                   f'<title>{_e(a.label)} → {_e(b.label)}: {_fmt(v, 3)} {_e(unit)}</title></path>')
    for i in ids:
        n = by_id[i]
        h = max(n.size * scale, 2)
        x = colx[n.layer]
        out.append(f'<rect class="node" x="{x:.1f}" y="{n.y:.1f}" width="{node_w}" height="{h:.1f}" fill="{n.colour}">'
                   f'<title>{_e(n.label)}: {_fmt(n.size, 3)} {_e(unit)}</title></rect>')
        tx, anchor = (x + node_w + 4, "start") if n.layer < ncols - 1 or ncols == 1 else (x + node_w + 4, "start")
        out.append(f'<text x="{tx:.1f}" y="{n.y + h / 2 + 4:.1f}" text-anchor="{anchor}" fill="#222" font-size="11">'
                   f'{_e(n.label)} {_fmt(n.size, 1)}</text>')
    out.append("</svg>")
    return "".join(out)


def path_graph(nodes: Sequence[dict[str, Any]], edges: Sequence[dict[str, Any]], *, label: str,
               highlight: str | None = None, width: int = 760) -> str:
    """A left-to-right graph of boxes and arrows (the path of a manifest's waste: shipper → … → fates).

    ``nodes``: ``{id, label, sub?}``; ``edges``: ``{source, target, label?}``."""
    if not nodes:
        return empty(label, "无路径数据", width, 60)
    ids = [str(n["id"]) for n in nodes]
    es = [(str(e["source"]), str(e["target"]), str(e.get("label") or "")) for e in edges
          if str(e["source"]) in ids and str(e["target"]) in ids]
    layer = _layers(ids, [(s, t, 1.0) for s, t, _ in es])
    cols: dict[int, list[str]] = defaultdict(list)
    for i in ids:
        cols[layer[i]].append(i)
    box_w, box_h, vgap = 170, 44, 22
    ncols = max(cols) + 1
    hgap = max(80, (width - ncols * box_w - 20) / max(1, ncols - 1)) if ncols > 1 else 0
    width = int(max(width, 20 + ncols * box_w + (ncols - 1) * hgap))
    height = 20 + max(len(c) for c in cols.values()) * (box_h + vgap)
    pos: dict[str, tuple[float, float]] = {}
    for c, members in cols.items():
        for k, i in enumerate(members):
            pos[i] = (10 + c * (box_w + hgap), 10 + k * (box_h + vgap))
    byid = {str(n["id"]): n for n in nodes}
    out = [_open(width, height, label, "path"),
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    for s, t, lab in es:
        (x0, y0), (x1, y1) = pos[s], pos[t]
        ax, ay, bx, by = x0 + box_w, y0 + box_h / 2, x1, y1 + box_h / 2
        if bx <= ax:
            bx, by = x1 + box_w / 2, y1 + box_h
        mx = (ax + bx) / 2
        out.append(f'<path class="edge" d="M{ax:.1f},{ay:.1f} C{mx:.1f},{ay:.1f} {mx:.1f},{by:.1f} {bx:.1f},{by:.1f}" '
                   f'fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>')
        if lab:
            out.append(f'<text x="{mx:.1f}" y="{(ay + by) / 2 - 4:.1f}" text-anchor="middle" fill="#333" '
                       f'font-size="10">{_e(lab)}</text>')
    for i in ids:
        x, y = pos[i]
        n = byid[i]
        kind = str(n.get("kind") or "")
        fill = {"U": "#e3f4ea", "D": "#e4ecf7", "S": "#fbf0dc", "X": "#fbe3e0"}.get(kind, "#f4f6f8")
        stroke = "#c0392b" if i == highlight else "#667"
        out.append(f'<rect class="node" x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="5" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{2 if i == highlight else 1}"/>')
        out.append(f'<text x="{x + 8:.1f}" y="{y + 18:.1f}" fill="#111" font-size="12">{_e(str(n.get("label") or i)[:14])}</text>')
        if n.get("sub"):
            out.append(f'<text x="{x + 8:.1f}" y="{y + 34:.1f}" fill="#555" font-size="10">{_e(str(n["sub"])[:32])}</text>')
    out.append("</svg>")
    return "".join(out)
