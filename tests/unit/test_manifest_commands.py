"""The typed manifest commands read the loose shapes the API, the pages and the workbook import send."""

from datetime import date
from decimal import Decimal

from ledgers.manifests import Correction, NewLine, NewManifest, Receipt, Rejection, Shipment


def test_new_manifest_keeps_what_was_typed_for_the_rules_to_judge():
    cmd = NewManifest.from_mapping({"shipper": "", "receiver": "9163", "carrier": None, "planned_date": "2024-6-3",
                                    "lines": [{"waste_code": "900-200-08", "quantity_t": Decimal("1.5"),
                                               "packaging": "", "container_count": "x"}]})
    assert cmd.shipper is None and cmd.carrier is None  # blank: the single unit, the shipper carries
    assert cmd.planned_date == "2024-6-3"  # refused by the use case, by field, not here
    assert cmd.lines == (NewLine("900-200-08", Decimal("1.5"), None, None, "x"),)


def test_a_correction_knows_which_fields_were_given():
    c = Correction.from_mapping({"reason": "改", "carrier": None, "planned_date": date(2024, 6, 4)})
    assert c.given == frozenset({"carrier", "planned_date"})  # the carrier removed, not kept
    assert c.lines is None and Correction.from_mapping({"reason": "改"}).given == frozenset()


def test_receipt_and_rejection_lines():
    r = Receipt.from_mapping({"lines": [{"line_no": 1, "received_t": "2", "mismatch": ["form", "name"]}]})
    assert r.lines[0].mismatch == ("form", "name") and r.time is None and r.accepted_on is None
    j = Rejection.from_mapping({"reason": "破损", "destination": ""})
    assert j.lines == () and j.destination is None  # no lines: everything refused, back to the shipper
    assert Shipment.from_mapping({"vehicle": "青A1", "driver": "王"}).permit_no is None
