"""The case lifecycle rules (``nofei.domain.cases``): what a step does to a case, when the sync reopens or
closes one, and the identity of an anomaly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nofei.domain.cases import Closure, after_step, anomaly_key, auto_resolved, reopen_reason

NOW = datetime(2024, 5, 6, 8, tzinfo=UTC)
EARLIER = datetime(2024, 4, 1, tzinfo=UTC)


def test_closing_records_how_when_and_on_which_facts() -> None:
    assert after_step("close", Closure("notified"), facts="f1", at=NOW) == Closure("closed", "resolved", NOW, "f1")
    assert after_step("waive", Closure("open"), facts="f1", at=NOW) == Closure("closed", "waived", NOW, "f1")


def test_reopening_forgets_the_closure() -> None:
    closed = Closure("closed", "waived", EARLIER, "f0")
    assert after_step("reopen", closed, facts="f1", at=NOW) == Closure("open")


def test_a_step_that_keeps_an_open_status_keeps_the_rest() -> None:
    assert after_step("notify", Closure("open"), facts="f", at=NOW) == Closure("notified")
    assert after_step("note", Closure("responded"), facts="f", at=NOW) == Closure("responded")


def test_a_step_the_status_does_not_allow_is_refused() -> None:
    with pytest.raises(ValueError):
        after_step("reopen", Closure("open"), facts="f", at=NOW)
    with pytest.raises(ValueError):
        after_step("notify", Closure("closed", "resolved", EARLIER, "f"), facts="f", at=NOW)


def test_sync_reopens_a_closed_case_only_when_its_facts_changed_since_closing() -> None:
    closed = Closure("closed", "waived", EARLIER, "f0")
    assert reopen_reason(closed, held_before=True, facts_before="f0", facts_now="f1") == "changed"
    # a mere recomputation with the facts it was closed on: stays closed
    assert reopen_reason(closed, held_before=True, facts_before="f0", facts_now="f0") is None
    # facts changed back to those at closing: stays closed
    assert reopen_reason(closed, held_before=True, facts_before="f1", facts_now="f0") is None
    assert reopen_reason(Closure("open"), held_before=True, facts_before="f0", facts_now="f1") is None


def test_sync_reopens_a_self_resolved_case_whose_anomaly_is_back() -> None:
    resolved = Closure("closed", "resolved", EARLIER, "f0")
    assert reopen_reason(resolved, held_before=False, facts_before="f0", facts_now="f0") == "back"
    waived = Closure("closed", "waived", EARLIER, "f0")
    assert reopen_reason(waived, held_before=False, facts_before="f0", facts_now="f0") is None


def test_a_gone_anomaly_closes_its_open_case_as_resolved() -> None:
    assert auto_resolved(Closure("responded"), facts="f", at=NOW) == Closure("closed", "resolved", NOW, "f")
    assert auto_resolved(Closure("closed", "waived", EARLIER, "f0"), facts="f", at=NOW) is None


@pytest.mark.parametrize(("anomaly", "key"), [
    ({"kind": "receipt_overdue", "units": ["A", "B"], "manifests": ["20240001000001"]},
     "receipt_overdue:20240001000001"),
    ({"kind": "discrepancy", "units": ["A"], "manifests": ["20240001000001"], "detail": {"line_no": 2}},
     "discrepancy:20240001000001|2"),
    ({"kind": "reconciliation", "units": [], "manifests": [], "waste_code": "900-041-49",
      "detail": {"number_cited": "20249999999999"}}, "reconciliation:20249999999999|900-041-49"),
    ({"kind": "unresolved_mass", "units": ["A", "Z"], "waste_code": "HW08"}, "unresolved_mass:A|Z|HW08|2024"),
    ({"kind": "permit_not_covering", "units": ["R", "A"], "waste_code": "HW08", "detail": {"method": None}},
     "permit_not_covering:R|HW08||2024"),
    ({"kind": "over_capacity", "units": ["R"]}, "over_capacity:R|2024"),
    ({"kind": "missing_ledger", "units": ["A"], "detail": {"month": "2024-03"}}, "missing_ledger:A|2024-03"),
    ({"kind": "storage_over_year", "units": ["A"], "waste_code": "HW08"}, "storage_over_year:A|HW08|2024"),
    ({"kind": "receipt_overdue", "units": ["A"], "manifests": []}, "receipt_overdue:A"),
])
def test_anomaly_key_names_the_object_the_anomaly_is_about(anomaly: dict[str, object], key: str) -> None:
    assert anomaly_key(anomaly, 2024) == key
