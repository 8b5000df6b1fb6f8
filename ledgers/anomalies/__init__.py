"""Anomalies for regulators (异常联单 and ledger findings), as plain dicts for the API and the annual report.

Kinds (issue 5 §2–§4), one module per family:
- ``manifests``: ``receipt_overdue`` — receipt recorded more than 5 working days after the 接受日期 (第十八条
  在接受之日起; while still in transit, counted from the shipping date); ``discrepancy`` — a received line
  differs from the shipped one by > 5 % and > 0.1 t (ledger-workbook.md); ``missing_manifest_number`` — 转出
  rows of hazardous/medical codes without a well-formed 联单编号 (rows exempt from the 联单 at the transport
  stage, 豁免清单, need none);
- ``storage_age``: ``storage_over_year`` — hazardous waste held in stock over a year, aged FIFO over the
  monthly ledgers (固废法 第八十一条, regulations.md §2.5);
- ``permits``: ``permit_not_covering`` — a receiver whose permits do not cover the code or method;
  ``over_capacity`` — a receiver that took more than its permitted yearly capacity;
- ``reconciliation``: 转出 rows, the manifest and 转入 rows disagree by number and code (ledger-workbook.md
  "Counterparts"): quantity mismatch, one side missing after the following month, a row citing an unknown number
  — read from the one flow model's per-manifest sides (``nofei.flows.counterparts``);
- ``unresolved``: ``unresolved_mass`` — 转出 to a unit that is unregistered or reported no ledger of that code in
  the year (fate ``X``, indicators.md §1);
- ``filing``: ``missing_ledger`` — a month a unit owes (from its ``reports_from``, once the 15th of the next month
  has passed: ``nofei.domain.completeness``) with no current ledger version — one per unit and month (issue 13).

``listing`` holds the lifecycle (checks, scope, cache); the queries are ``nofei.storage.findings``, the pure rules
``nofei.domain.findings``. Each anomaly names its units, manifests, ledger rows and the mass at stake (integer kg;
tonnes for show).
"""

from __future__ import annotations

from nofei.domain.findings import fifo_over_limit

from .common import KINDS, MAX_NAMED, TITLES, Finding
from .listing import _CACHE, clear_cache, findings_stamp, list_anomalies, summary

__all__ = ["KINDS", "MAX_NAMED", "TITLES", "_CACHE", "Finding", "clear_cache", "fifo_over_limit", "findings_stamp",
           "list_anomalies", "summary"]
