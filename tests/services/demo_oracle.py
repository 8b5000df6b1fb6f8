"""An independent, deliberately naive reading of ``shared/domain/indicators.md`` §1–§3 over drafts.

Used by the demo tests to check the calibration without trusting the code under test: the flow
graph is rebuilt from the ledger drafts and fates are found by plain recursion (the demo's graph
is acyclic). Figures are floats: this is a check, never a report.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft


def rates(drafts: list[LedgerDraft], catalogue: Catalogue | None = None,
          unit_types: dict[str, str] | None = None) -> dict[str, float]:
    """``unit_types`` (credit code → unit_type): the hazardous rates count industrial and licensed producers
    only (indicators.md §3, issue 18); a unit not named is industrial."""
    cat = catalogue or Catalogue.default()
    types = unit_types or {}
    year = max(d.year for d in drafts)  # the year of the figures; earlier ledgers only explain old stock
    drafts = [d for d in drafts if d.year == year]
    node: dict[tuple[str, str], dict] = {}
    for d in sorted(drafts, key=lambda d: d.month):
        for s in d.stocks:
            n = node.setdefault((d.credit_code, s.code), {"G": 0, "U": 0, "D": 0, "T": defaultdict(int),
                                                          "open": s.open_kg, "stream": s.stream})
            n["G"] += s.generated_kg
            n["close"] = s.close_kg
        for t in d.treatments:
            n = node[(d.credit_code, t.code)]
            n["U" if cat.method_class(t.method) == "utilisation" else "D"] += t.qty_kg
        for tr in d.transfers:
            if tr.direction == "out":
                node[(d.credit_code, tr.code)]["T"][tr.counterpart] += tr.qty_kg

    @cache
    def fate(key: tuple[str, str]) -> tuple[float, float, float, float]:
        n = node[key]
        stored = max(0, n["close"] - n["open"])
        out = n["U"] + n["D"] + sum(n["T"].values()) + stored
        if out == 0:
            return (0.0, 0.0, 0.0, 0.0)
        acc = [n["U"], n["D"], stored, 0.0]
        for j, q in n["T"].items():
            if (j, key[1]) in node:
                f = fate((j, key[1]))
                for k in range(4):
                    acc[k] += q * f[k]
            else:
                acc[3] += q
        return tuple(a / out for a in acc)  # type: ignore[return-value]

    def totals(stream: str, keep=lambda key: True) -> dict[str, float]:  # noqa: ANN001, ANN202
        tot = defaultdict(float)
        for key, n in node.items():
            if n["stream"] != stream or n["G"] <= 0 or not keep(key):
                continue
            drawn = max(0, n["open"] - n["close"])
            a = n["G"] + drawn
            f = fate(key)
            tot["G"] += n["G"]
            tot["U"] += a * f[0]
            tot["D"] += a * f[1]
            tot["U_prior"] += drawn * f[0]
            tot["D_prior"] += drawn * f[1]
            central = 0.0
            stored = max(0, n["close"] - n["open"])
            out = n["U"] + n["D"] + sum(n["T"].values()) + stored
            for j, q in n["T"].items():
                if (j, key[1]) in node:
                    fj = fate((j, key[1]))
                    central += q / out * (fj[0] + fj[1])
            tot["central"] += a * central
            tot["A"] += a
            tot["recovered"] += sum(n["T"].values()) + n["U"] + n["D"]
        return tot

    gi, med = totals("general_industrial"), totals("medical")
    hw = totals("hazardous", lambda key: types.get(key[0], "industrial") in ("industrial", "licensed"))
    film = totals("agricultural_film", lambda key: key[1] == "NM01")  # 地膜
    shed = totals("agricultural_film", lambda key: key[1] == "NM02")  # 棚膜
    return {
        "greenhouse_film_recovery_rate": shed["recovered"] / shed["G"] * 100,
        "general_industrial_utilisation_rate": gi["U"] / (gi["G"] + gi["U_prior"]) * 100,
        "hazardous_utilisation_disposal_rate": (hw["U"] + hw["D"]) / (hw["G"] + hw["U_prior"] + hw["D_prior"]) * 100,
        "medical_central_disposal_rate": med["central"] / med["A"] * 100,
        "agricultural_film_recovery_rate": film["recovered"] / film["G"] * 100,
    }
