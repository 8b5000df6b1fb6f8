"""Cases (案件): an anomaly with an owner and an end (issue 13).

A case is the regulator's work item for one anomaly. Its identity is the anomaly's kind and the object it is
about (the manifest, the manifest line, the unit + code + year, the unit + month …), so it survives every
recomputation of the anomaly list. Pure rules only: statuses, actions, who may act, and the identity and the
"facts" fingerprint of an anomaly; storage and use cases live in ``nofei.storage.cases`` / ``ledgers.cases``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

CaseStatus = Literal["open", "notified", "responded", "closed"]
STATUSES: tuple[CaseStatus, ...] = ("open", "notified", "responded", "closed")
STATUS_ZH: dict[str, str] = {"open": "待处理", "notified": "已通知企业", "responded": "企业已答复", "closed": "已结案"}

# Actions a person takes (POST /cases/{id}/events) and those the system records itself.
ACTIONS: tuple[str, ...] = ("note", "assign", "notify", "respond", "close", "waive", "reopen")
SYSTEM_ACTIONS: tuple[str, ...] = ("raise", "auto_reopen", "auto_resolve")
ACTION_ZH: dict[str, str] = {
    "note": "备注", "assign": "指派", "notify": "通知企业", "respond": "企业答复", "close": "结案（已解决）",
    "waive": "结案（免予处理）", "reopen": "重新打开", "raise": "系统立案", "auto_reopen": "系统重新打开",
    "auto_resolve": "系统结案（异常已消除）",
}
RESOLUTION_ZH: dict[str, str] = {"resolved": "已解决", "waived": "免予处理"}

# status after each action (None: unchanged)
_NEXT: dict[str, CaseStatus | None] = {
    "note": None, "assign": None, "notify": "notified", "respond": "responded", "close": "closed",
    "waive": "closed", "reopen": "open",
}
# statuses an action may start from
_FROM: dict[str, tuple[CaseStatus, ...]] = {
    "note": STATUSES, "assign": ("open", "notified", "responded"), "notify": ("open", "responded", "notified"),
    "respond": ("open", "notified", "responded"), "close": ("open", "notified", "responded"),
    "waive": ("open", "notified", "responded"), "reopen": ("closed",),
}
NEEDS_TEXT: frozenset[str] = frozenset({"note", "respond", "waive"})


def next_status(action: str, current: CaseStatus) -> CaseStatus:
    """The status after ``action``; ``ValueError`` when the action is not allowed from ``current``."""
    if action not in _NEXT:
        raise ValueError(f"unknown action {action}")
    if current not in _FROM[action]:
        raise ValueError(f"{action} is not allowed on a {current} case")
    return _NEXT[action] or current


def may_take(role: str, action: str, *, named: bool, in_district: bool) -> bool:
    """Whether this caller may ever take ``action`` on the case (whatever its status).

    Admins do anything; a regulator acts on cases of its district (everything but ``respond``, which is the
    enterprise's word); the enterprise named in the case may ``respond`` (and add a note)."""
    if role == "admin":
        return action in ACTIONS
    if role == "regulator" and in_district:
        return action in ("note", "assign", "notify", "close", "waive", "reopen")
    if role == "enterprise" and named:
        return action in ("respond", "note")
    return False


def allowed_actions(role: str, *, named: bool, in_district: bool, status: CaseStatus) -> list[str]:
    """What this caller may do to a case now (its role's actions the status allows)."""
    return [a for a in ACTIONS if may_take(role, a, named=named, in_district=in_district) and status in _FROM[a]]


# --- identity and facts ------------------------------------------------------------------------------------
def anomaly_key(a: dict[str, Any], year: int) -> str:
    """The stable identity of an anomaly: its kind and the object it is about.

    - manifest kinds: the manifest number (a discrepancy: number and line);
    - reconciliation: the number cited and the waste code;
    - ledger kinds: the unit, the code and the year (``unresolved_mass`` also the receiver);
    - permits: the receiver, the code and the method, per year; capacity: the receiver and the year;
    - ``missing_ledger``: the unit and the month."""
    kind = str(a["kind"])
    units = list(a.get("units") or [])
    first = units[0] if units else ""
    ms = list(a.get("manifests") or [])
    d = a.get("detail") or {}
    code = a.get("waste_code") or ""
    if kind == "receipt_overdue":
        parts = [ms[0] if ms else first]
    elif kind == "discrepancy":
        parts = [ms[0] if ms else first, str(d.get("line_no", ""))]
    elif kind == "reconciliation":
        parts = [str(d.get("number_cited") or (ms[0] if ms else "")), code]
    elif kind == "unresolved_mass":
        parts = [first, units[1] if len(units) > 1 else "", code, str(year)]
    elif kind == "permit_not_covering":
        parts = [first, code, str(d.get("method") or ""), str(year)]
    elif kind == "over_capacity":
        parts = [first, str(year)]
    elif kind == "missing_ledger":
        parts = [first, str(d.get("month", ""))]
    else:  # storage_over_year, missing_manifest_number, and any later kind: unit + code + year
        parts = [first, code, str(year)]
    return kind + ":" + "|".join(parts)


# what changes with the day the list is judged on, not with the facts (the message repeats the detail)
_VOLATILE = frozenset({"working_days_late"})


def facts(a: dict[str, Any]) -> str:
    """A digest of what an anomaly says (mass, the rows and manifests behind it, its detail).

    A closed case whose anomaly still holds reopens only when these facts have changed since it was closed —
    a new ledger version or a manifest step — never on a mere recomputation."""
    detail = {k: v for k, v in (a.get("detail") or {}).items() if k not in _VOLATILE}
    body = {"mass_kg": a.get("mass_kg"), "manifests": a.get("manifests"),
            "ledger_rows": [(r.get("ledger_id"), r.get("row")) for r in a.get("ledger_rows") or []],
            "detail": detail}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()
