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
    plot = _Plot(years, ymin, ymax, width, height)
    out = [_open(width, height, label, "trend"), *plot.axes()]
    if target is not None:
        out.append(f'<line class="target" x1="{plot.left}" y1="{plot.yp(target):.1f}" x2="{plot.left + plot.pw}" '
                   f'y2="{plot.yp(target):.1f}" stroke="#222" stroke-dasharray="4 3"/>')
    for i, (name, s) in enumerate(series.items()):
        out.extend(plot.series(name, s, PALETTE[i % len(PALETTE)], unit))
    out.append("</svg>")
    return "".join(out)


@dataclass
class _Plot:
    """The frame of a trend chart: years spread along x, values from ``ymin`` to ``ymax`` along y."""

    years: list[int]
    ymin: float
    ymax: float
    width: int
    height: int
    left: int = 56
    right: int = 20
    top: int = 16
    bottom: int = 30

    @property
    def pw(self) -> int:
        return self.width - self.left - self.right

    @property
    def ph(self) -> int:
        return self.height - self.top - self.bottom

    def xp(self, x: int) -> float:
        years = self.years
        return self.left + (self.pw * (years.index(x) / (len(years) - 1)) if len(years) > 1 else self.pw / 2)

    def yp(self, y: float) -> float:
        return self.top + self.ph - (y - self.ymin) / (self.ymax - self.ymin) * self.ph

    def axes(self) -> list[str]:
        """The two axis lines, three value ticks and one label per year."""
        left, top, pw, ph = self.left, self.top, self.pw, self.ph
        out = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>',
               f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#999"/>']
        for frac in (0.0, 0.5, 1.0):
            v = self.ymin + (self.ymax - self.ymin) * frac
            out.append(f'<text x="{left - 4}" y="{self.yp(v) + 4:.1f}" text-anchor="end" fill="#555" '
                       f'font-size="10">{_fmt(v, 1)}</text>')
        for x in self.years:
            out.append(f'<text x="{self.xp(x):.1f}" y="{self.height - 10}" text-anchor="middle" fill="#555" '
                       f'font-size="11">{x}</text>')
        return out

    def series(self, name: str, s: list[tuple[int, float | None]], colour: str, unit: str) -> list[str]:
        """One series: a polyline through its known values (two or more) and a point on each."""
        good = [(x, y) for x, y in s if y is not None]
        out = []
        if len(good) > 1:
            d = " ".join(f"{self.xp(x):.1f},{self.yp(y):.1f}" for x, y in good)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in good:
            out.append(f'<circle class="point" cx="{self.xp(x):.1f}" cy="{self.yp(y):.1f}" r="3.5" fill="{colour}">'
                       f'<title>{_e(name)} {x}: {_fmt(y)} {_e(unit)}</title></circle>')
        return out


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


def _node_colour(k: int, nid: str, colour: str) -> str:
    """A fate's fixed colour by id; otherwise the colour its kind gave, or the k-th of the palette."""
    if nid in FATE_COLOURS:
        return FATE_COLOURS[nid]
    return PALETTE[k % len(PALETTE)] if colour == PALETTE[0] else colour


def _sankey_nodes(nodes: Sequence[dict[str, Any]], ls: list[tuple[str, str, float]]) -> dict[str, _Node]:
    """The diagram's nodes: the given ones (last wins), then any id only the links name; coloured."""
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
    for k, (nid, n) in enumerate(by_id.items()):
        n.colour = _node_colour(k, nid, n.colour)
    layer = _layers(list(by_id), ls)
    inflow: dict[str, float] = defaultdict(float)
    outflow: dict[str, float] = defaultdict(float)
    for s, t, v in ls:
        outflow[s] += v
        inflow[t] += v
    for nid, n in by_id.items():
        n.layer = layer[nid]
        n.size = max(inflow[nid], outflow[nid])
    return by_id


@dataclass
class _SankeyLayout:
    """Where the columns are and how many pixels a tonne is; sets each shown node's ``y``."""

    ncols: int
    scale: float
    colx: dict[int, float]
    node_w: int = 14


def _sankey_layout(shown: list[_Node], width: int, height: int) -> _SankeyLayout:
    top, bottom, pad, node_w = 10, 10, 12, 14
    left_margin, right_margin = 8, 150
    ncols = max(n.layer for n in shown) + 1
    cols: dict[int, list[_Node]] = defaultdict(list)
    for n in shown:
        cols[n.layer].append(n)
    avail = height - top - bottom
    scale = min((avail - pad * (len(c) - 1)) / (sum(n.size for n in c) or 1) for c in cols.values())
    scale = max(scale, 0.0)
    colx = {c: left_margin + (width - left_margin - right_margin - node_w) * (c / max(1, ncols - 1)) for c in cols}
    for col in cols.values():
        y: float = top
        for n in col:
            n.y = y
            y += max(n.size * scale, 2) + pad
    return _SankeyLayout(ncols, scale, colx, node_w)


def _sankey_bands(ls: list[tuple[str, str, float]], by_id: dict[str, _Node], lay: _SankeyLayout, unit: str) -> list[str]:
    """One cubic band per link, stacked at both ends in the order of the nodes' positions."""
    out = []
    out_off: dict[str, float] = defaultdict(float)
    in_off: dict[str, float] = defaultdict(float)
    for s, t, v in sorted(ls, key=lambda x: (by_id[x[0]].y, by_id[x[1]].y)):
        a, b = by_id[s], by_id[t]
        w = max(v * lay.scale, 1)
        x0, x1 = lay.colx[a.layer] + lay.node_w, lay.colx[b.layer]
        y0 = a.y + out_off[s] + w / 2
        y1 = b.y + in_off[t] + w / 2
        out_off[s] += v * lay.scale
        in_off[t] += v * lay.scale
        if x1 <= x0:  # a back edge in a loop: draw it below, as a return arc
            x1 = lay.colx[b.layer] + lay.node_w / 2
        mx = (x0 + x1) / 2
        out.append(f'<path class="link" d="M{x0:.1f},{y0:.1f} C{mx:.1f},{y0:.1f} {mx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
                   f'fill="none" stroke="{a.colour}" stroke-opacity="0.35" stroke-width="{w:.1f}">'
                   f'<title>{_e(a.label)} → {_e(b.label)}: {_fmt(v, 3)} {_e(unit)}</title></path>')
    return out


def _sankey_boxes(shown: list[_Node], lay: _SankeyLayout, unit: str) -> list[str]:
    """Each node as a bar with its label and size to its right."""
    out = []
    for n in shown:
        h = max(n.size * lay.scale, 2)
        x = lay.colx[n.layer]
        out.append(f'<rect class="node" x="{x:.1f}" y="{n.y:.1f}" width="{lay.node_w}" height="{h:.1f}" fill="{n.colour}">'
                   f'<title>{_e(n.label)}: {_fmt(n.size, 3)} {_e(unit)}</title></rect>')
        out.append(f'<text x="{x + lay.node_w + 4:.1f}" y="{n.y + h / 2 + 4:.1f}" text-anchor="start" fill="#222" '
                   f'font-size="11">{_e(n.label)} {_fmt(n.size, 1)}</text>')
    return out


def sankey(nodes: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]], *, label: str,
           unit: str = "t", width: int = 760, height: int = 360) -> str:
    """A Sankey diagram: nodes in columns by longest path, bands as cubic curves with width ∝ tonnes.

    ``nodes``: ``{id, label}``; ``links``: ``{source, target, value}`` (tonnes). Fates U/D/S/X (ids or
    ``kind``) get their fixed colours so every diagram reads the same way."""
    ls = [(str(x["source"]), str(x["target"]), float(x["value"])) for x in links if float(x.get("value") or 0) > 0]
    if not ls:
        return empty(label, "暂无流向数据", width, 60)
    by_id = _sankey_nodes(nodes, ls)
    shown = [n for n in by_id.values() if n.size > 0]
    lay = _sankey_layout(shown, width, height)
    return "".join([_open(width, height, label, "sankey"), *_sankey_bands(ls, by_id, lay, unit),
                    *_sankey_boxes(shown, lay, unit), "</svg>"])


_BOX_FILLS = {"U": "#e3f4ea", "D": "#e4ecf7", "S": "#fbf0dc", "X": "#fbe3e0"}
_BOX_W, _BOX_H, _VGAP = 170, 44, 22


def _path_layout(ids: list[str], es: list[tuple[str, str, str]], width: int) -> tuple[dict[str, tuple[float, float]], int, int]:
    """Top-left corner of each box (columns by longest path), and the drawing's width and height."""
    layer = _layers(ids, [(s, t, 1.0) for s, t, _ in es])
    cols: dict[int, list[str]] = defaultdict(list)
    for i in ids:
        cols[layer[i]].append(i)
    ncols = max(cols) + 1
    hgap = max(80, (width - ncols * _BOX_W - 20) / max(1, ncols - 1)) if ncols > 1 else 0
    width = int(max(width, 20 + ncols * _BOX_W + (ncols - 1) * hgap))
    height = 20 + max(len(c) for c in cols.values()) * (_BOX_H + _VGAP)
    pos: dict[str, tuple[float, float]] = {}
    for c, members in cols.items():
        for k, i in enumerate(members):
            pos[i] = (10 + c * (_BOX_W + hgap), 10 + k * (_BOX_H + _VGAP))
    return pos, width, height


def _path_edges(es: list[tuple[str, str, str]], pos: dict[str, tuple[float, float]]) -> list[str]:
    """An arrow per edge (into the box's bottom when it goes back), with its label at the middle."""
    out = []
    for s, t, lab in es:
        (x0, y0), (x1, y1) = pos[s], pos[t]
        ax, ay, bx, by = x0 + _BOX_W, y0 + _BOX_H / 2, x1, y1 + _BOX_H / 2
        if bx <= ax:
            bx, by = x1 + _BOX_W / 2, y1 + _BOX_H
        mx = (ax + bx) / 2
        out.append(f'<path class="edge" d="M{ax:.1f},{ay:.1f} C{mx:.1f},{ay:.1f} {mx:.1f},{by:.1f} {bx:.1f},{by:.1f}" '
                   f'fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>')
        if lab:
            out.append(f'<text x="{mx:.1f}" y="{(ay + by) / 2 - 4:.1f}" text-anchor="middle" fill="#333" '
                       f'font-size="10">{_e(lab)}</text>')
    return out


def _path_box(i: str, n: dict[str, Any], at: tuple[float, float], highlight: str | None) -> list[str]:
    """One box: filled by its fate kind, outlined red when highlighted, its label and optional sub-line."""
    x, y = at
    fill = _BOX_FILLS.get(str(n.get("kind") or ""), "#f4f6f8")
    stroke = "#c0392b" if i == highlight else "#667"
    out = [f'<rect class="node" x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" rx="5" fill="{fill}" '
           f'stroke="{stroke}" stroke-width="{2 if i == highlight else 1}"/>',
           f'<text x="{x + 8:.1f}" y="{y + 18:.1f}" fill="#111" font-size="12">{_e(str(n.get("label") or i)[:14])}</text>']
    if n.get("sub"):
        out.append(f'<text x="{x + 8:.1f}" y="{y + 34:.1f}" fill="#555" font-size="10">{_e(str(n["sub"])[:32])}</text>')
    return out


def path_graph(nodes: Sequence[dict[str, Any]], edges: Sequence[dict[str, Any]], *, label: str,
               highlight: str | None = None, width: int = 760) -> str:
    """A left-to-right graph of boxes and arrows (the path of a manifest's waste: shipper → … → fates).

    ``nodes``: ``{id, label, sub?}``; ``edges``: ``{source, target, label?}``."""
    if not nodes:
        return empty(label, "无路径数据", width, 60)
    ids = [str(n["id"]) for n in nodes]
    es = [(str(e["source"]), str(e["target"]), str(e.get("label") or "")) for e in edges
          if str(e["source"]) in ids and str(e["target"]) in ids]
    pos, width, height = _path_layout(ids, es, width)
    byid = {str(n["id"]): n for n in nodes}
    out = [_open(width, height, label, "path"),
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           *_path_edges(es, pos)]
    for i in ids:
        out.extend(_path_box(i, byid[i], pos[i], highlight))
    out.append("</svg>")
    return "".join(out)
