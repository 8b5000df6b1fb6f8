"""Cases (案件): an anomaly with an owner and an end (issue 13).

A case is the regulator's work item for one anomaly. Its identity is the anomaly's kind and the object it is
about (the manifest, the manifest line, the unit + code + year, the unit + month …), so it survives every
recomputation of the anomaly list. Pure rules only: statuses, actions, who may act, and the identity and the
"facts" fingerprint of an anomaly; storage and use cases live in ``nofei.storage.cases`` / ``ledgers.cases``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
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
def _manifest_or_unit(a: dict[str, Any], year: int) -> list[str]:
    ms, units = list(a.get("manifests") or []), list(a.get("units") or [])
    return [ms[0] if ms else (units[0] if units else "")]


def _first(a: dict[str, Any]) -> str:
    units = list(a.get("units") or [])
    return units[0] if units else ""


def _detail(a: dict[str, Any], key: str) -> str:
    return str((a.get("detail") or {}).get(key) or "")


def _cited(a: dict[str, Any], year: int) -> list[str]:
    ms = list(a.get("manifests") or [])
    return [_detail(a, "number_cited") or (ms[0] if ms else ""), a.get("waste_code") or ""]


def _unresolved_parts(a: dict[str, Any], year: int) -> list[str]:
    units = list(a.get("units") or [])
    return [_first(a), units[1] if len(units) > 1 else "", a.get("waste_code") or "", str(year)]


# the parts of each kind's identity (any other kind: unit + code + year)
_KEY_PARTS: dict[str, Callable[[dict[str, Any], int], list[str]]] = {
    "receipt_overdue": _manifest_or_unit,
    "discrepancy": lambda a, y: [*_manifest_or_unit(a, y), str((a.get("detail") or {}).get("line_no", ""))],
    "reconciliation": _cited,
    "unresolved_mass": _unresolved_parts,
    "permit_not_covering": lambda a, y: [_first(a), a.get("waste_code") or "", _detail(a, "method"), str(y)],
    "over_capacity": lambda a, y: [_first(a), str(y)],
    "missing_ledger": lambda a, y: [_first(a), str((a.get("detail") or {}).get("month", ""))],
}


def anomaly_key(a: dict[str, Any], year: int) -> str:
    """The stable identity of an anomaly: its kind and the object it is about.

    - manifest kinds: the manifest number (a discrepancy: number and line);
    - reconciliation: the number cited and the waste code;
    - ledger kinds: the unit, the code and the year (``unresolved_mass`` also the receiver);
    - permits: the receiver, the code and the method, per year; capacity: the receiver and the year;
    - ``missing_ledger``: the unit and the month."""
    kind = str(a["kind"])
    parts = _KEY_PARTS.get(kind, lambda a, y: [_first(a), a.get("waste_code") or "", str(y)])(a, year)
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


# --- lifecycle ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Closure:
    """Where a case stands: its status and, once closed, how, when and on which facts."""

    status: CaseStatus
    resolution: str | None = None
    closed_at: datetime | None = None
    facts_at_close: str | None = None



def after_step(action: str, now_: Closure, *, facts: str, at: datetime) -> Closure:
    """The case after a person's ``action`` (``ValueError`` when its status does not allow it): closing records
    how (``waive``: waived, else resolved), when, and the facts it was closed on; leaving ``closed`` forgets them."""
    new = next_status(action, now_.status)
    if new == "closed":
        return Closure(new, "waived" if action == "waive" else "resolved", at, facts)
    if now_.status == "closed":
        return Closure(new)
    return replace(now_, status=new)


REOPEN_TEXT: dict[str, str] = {
    "changed": "结案后事实有变化（新的台账版本或联单步骤），异常仍然存在，案件重新打开",
    "back": "已消除的异常再次出现，案件重新打开",
}


def reopen_reason(case: Closure, *, held_before: bool, facts_before: str, facts_now: str) -> str | None:
    """Why the sync reopens a closed case whose anomaly holds now (None: it stays as it is).

    ``changed``: its facts changed since the last computation and differ from those it was closed on (a new
    ledger version, a manifest step) — never on a mere recomputation; ``back``: it closed itself as resolved when
    its anomaly vanished, and the anomaly is back."""
    if case.status != "closed":
        return None
    if facts_now != facts_before and (case.facts_at_close is None or facts_now != case.facts_at_close):
        return "changed"
    if not held_before and case.resolution == "resolved":
        return "back"
    return None


def auto_resolved(case: Closure, *, facts: str, at: datetime) -> Closure | None:
    """A case whose anomaly is gone closes itself as resolved, unless it is closed already (None)."""
    return None if case.status == "closed" else Closure("closed", "resolved", at, facts)
