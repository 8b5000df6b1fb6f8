"""What of a trace its caller may read (issue 17 item 8): one filter over a trace's result, applied by
``ledgers.trace`` to every trace it returns, so the API, the pages and any export show the same.

Without it an enterprise could ship 1 kg to any unit and read, in that manifest's trace, the unit's
downstream receivers, a year's tonnage on those edges and other parties' manifest numbers. The rule,
with V = the units the actor may read (``nofei.access.visible_units``: its own units; a regulator's
district; all for admins and the city's regulators, for whom the trace is returned unchanged):

- A hop is shown, with all its figures (traced mass, share, the year's tonnage on the edge, manifest
  count and example number), when at least one of its ends is in V: the caller is a party to that edge
  (its own manifests and ledgers show it). Its other end is named (code and name): a direct counterpart.
- A hop with neither end in V is removed, and so is everything beyond it: no code, no name, no manifest
  number, no tonnage of an edge between third parties.
- Terminals (forward: a unit's U/D/S/X) and producers (backward) at a unit outside V are merged into one
  anonymous entry ``{"unit": null, "name": "其他单位（不可见）", "fate": "hidden"}`` whose mass is the traced
  mass that went beyond the visible hops (already the sum of those hops: nothing new is revealed).
  ``fates`` then counts U/D/S/X at visible units only and adds ``hidden``; ``closed_loop`` and
  ``hops_omitted`` (a count and traced mass of hops cut by ``max_hops``, no unit) stay.
- Follow-on manifest hops (``manifest_hops``) with neither end in V are removed.
- The node-link ``graph`` keeps unit nodes that are in V or named, links of kept hops, fate/origin links
  of units in V, and one node ``hidden|<code>`` (kind ``hidden``, no code, no quantity) that every named
  unit outside V links to (forward) or from (backward) when the trace went on beyond it.

The filter reads only the result's public fields, so a rewritten trace computation can keep applying it.
"""

from __future__ import annotations

from typing import Any

from nofei.access import Actor, visible_units
from nofei.storage.trace import unit_places
from nofei.storage.uow import UnitOfWork

HIDDEN_ZH = "其他单位（不可见）"
HIDDEN_FATE = "hidden"


def _codes(result: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for k in ("shipper", "receiver", "unit"):
        if isinstance(result.get(k), str):
            out.add(result[k])
    for h in result.get("manifest_hops", []):
        out |= {h["from"], h["to"]} - {None}
    for t in _parts(result):
        for h in t.get("hops", []):
            out |= {h["from"], h["to"]} - {None}
        out |= {e["unit"] for e in t.get("terminals", []) + t.get("producers", []) if e.get("unit")}
    for n in (result.get("graph") or {}).get("nodes", []):
        if n.get("kind") == "unit" and n.get("unit"):
            out.add(n["unit"])
    return out


def _parts(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result.get("forward", [])) + list(result.get("backward", [])) + list(result.get("traces", []))


def restrict_trace(result: dict[str, Any], actor: Actor, visible: set[str]) -> dict[str, Any]:
    """``result`` (a manifest or unit trace) reduced to what ``actor`` may read; ``visible`` = V (see above).

    Pure: no database, so it is tested on its own and kept by any trace computation."""
    if actor.sees_all():
        return result
    named = set(visible) | {result[k] for k in ("shipper", "receiver") if isinstance(result.get(k), str)}
    out = dict(result)
    if "manifest_hops" in result:
        out["manifest_hops"] = [h for h in result["manifest_hops"]
                                if h.get("manifest") != "follow-on" or {h["from"], h["to"]} & visible]
    beyond: dict[str, set[str]] = {}  # waste code -> named units outside V the trace went on from (or to)
    for key in ("forward", "backward", "traces"):
        if key not in result:
            continue
        parts = []
        for t in result[key]:
            direction = key if key != "traces" else str(result.get("direction", "forward"))
            ft, cut = _restrict_part(t, visible, direction)
            named |= {u for h in ft["hops"] for u in (h["from"], h["to"])}
            beyond.setdefault(str(t.get("waste_code")), set()).update(cut)
            parts.append(ft)
        out[key] = parts
    if "graph" in result:
        out["graph"] = _restrict_graph(result["graph"], visible, named, beyond)
    return out


def _anonymous(hidden: list[dict[str, Any]], side: str) -> dict[str, Any]:
    """The one entry that stands for every end at a unit outside V (their sums: nothing new is revealed)."""
    anon: dict[str, Any] = {"unit": None, "name": HIDDEN_ZH, "mass_t": round(sum(e["mass_t"] for e in hidden), 3),
                            "share": round(sum(e.get("share", 0) for e in hidden), 6)}
    if side == "terminals":
        anon["fate"] = HIDDEN_FATE
    return anon


def _visible_fates(t: dict[str, Any], ends: list[dict[str, Any]], shown: list[dict[str, Any]],
                   hidden: list[dict[str, Any]]) -> dict[str, float]:
    """U/D/S/X at visible units, what the propagation itself left unresolved, and ``hidden``."""
    fates = {k: 0.0 for k in t["fates"]}
    for e in shown:
        if e.get("unit") is not None:
            fates[e["fate"]] = fates.get(e["fate"], 0.0) + e["mass_t"]
    # what the propagation itself left unresolved (a closed loop cut) is no unit's: it stays in X
    fates["X"] = fates.get("X", 0.0) + max(0.0, t["fates"].get("X", 0.0) - sum(
        e["mass_t"] for e in ends if e.get("fate") == "X"))
    fates[HIDDEN_FATE] = sum(e["mass_t"] for e in hidden)
    return {k: round(v, 3) for k, v in fates.items()}


def _cut_hops(t: dict[str, Any], visible: set[str], direction: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The hops with an end in V, and the named units outside V whose onward (forward) or upstream (backward)
    part of the trace is hidden."""
    kept, cut = [], set()
    for h in t.get("hops", []):
        if h["from"] in visible or h["to"] in visible:
            kept.append(h)
        else:
            cut.add(h["from"] if direction == "forward" else h["to"])
    return kept, cut


def _restrict_part(t: dict[str, Any], visible: set[str], direction: str) -> tuple[dict[str, Any], set[str]]:
    ft = dict(t)
    ft["hops"], cut = _cut_hops(t, visible, direction)
    side = "terminals" if "terminals" in t else "producers"
    ends = t.get(side, [])
    hidden = [e for e in ends if e.get("unit") not in visible]
    cut |= {e["unit"] for e in hidden if e.get("unit")}
    shown = [e for e in ends if e.get("unit") in visible] + ([_anonymous(hidden, side)] if hidden else [])
    ft[side] = shown
    if "fates" in t:
        ft["fates"] = _visible_fates(t, ends, shown, hidden)
    return ft, cut - visible


def _kept_link(ln: dict[str, Any], unit_of: Any, visible: set[str]) -> bool:
    su, tu = unit_of(ln["source"]), unit_of(ln["target"])
    if su is not None and tu is not None:
        return su in visible or tu in visible  # a hop: kept like the hop
    return (su or tu) in visible  # a fate or origin of one unit: only a unit in V shows its own


def _hidden_nodes(beyond: dict[str, set[str]], keep: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ``hidden|<code>`` node per code, linked from every named unit outside V the trace went on beyond."""
    nodes, links = [], []
    for code, units in sorted(beyond.items()):
        present = [u for u in sorted(units) if f"{u}|{code}" in keep]
        if not present:
            continue
        hid = f"{HIDDEN_FATE}|{code}"
        nodes.append({"id": hid, "kind": HIDDEN_FATE, "name": HIDDEN_ZH, "waste_code": code})
        links += [{"source": f"{u}|{code}", "target": hid, "mass_t": None, "direction": "hidden"} for u in present]
    return nodes, links


def _restrict_graph(g: dict[str, Any], visible: set[str], named: set[str],
                    beyond: dict[str, set[str]]) -> dict[str, Any]:
    nodes = {n["id"]: n for n in g.get("nodes", [])}

    def unit_of(nid: str) -> str | None:
        n = nodes.get(nid)
        return n.get("unit") if n is not None and n.get("kind") == "unit" else None

    links = [ln for ln in g.get("links", []) if _kept_link(ln, unit_of, visible)]
    keep: set[str] = {i for ln in links for i in (ln["source"], ln["target"])}
    keep |= {i for i, n in nodes.items() if n.get("kind") == "unit" and n.get("unit") in named}
    out_nodes = [n for i, n in nodes.items() if i in keep and (n.get("kind") != "unit" or n.get("unit") in named)]
    more_nodes, more_links = _hidden_nodes(beyond, keep)
    return {**g, "nodes": out_nodes + more_nodes, "links": links + more_links}


def visible_trace(uow: UnitOfWork, actor: Actor, result: dict[str, Any]) -> dict[str, Any]:
    """``restrict_trace`` with V looked up: the one call every trace result goes through."""
    if actor.sees_all():
        return result
    return restrict_trace(result, actor, visible_units(actor, unit_places(uow.session, _codes(result))))
