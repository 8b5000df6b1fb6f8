"""The pure steps of ``nofei.storage.flowdata`` (issue 15): what a refresh reloads, which codes' attestations
changed, and the 豁免清单 decided once per (code, small clinic)."""

from __future__ import annotations

from nofei.catalogue import Catalogue
from nofei.flows.graph import Attestation
from nofei.flows.model import NodeFlows, UnitInfo
from nofei.storage.flowdata import _attestation_changes, _Exemptions, _node_of, _units_to_reload


def test_units_to_reload_are_the_ledger_changes_units_sorted_once_each():
    assert _units_to_reload([("ledger", 3), ("manifest", None), ("ledger", 1), ("ledger", 3)]) == [1, 3]
    assert _units_to_reload([("manifest", None)]) == []
    assert _units_to_reload([]) == []


def test_a_whole_reload_when_the_log_lost_the_stamp_or_a_change_names_no_unit():
    assert _units_to_reload(None) is None
    assert _units_to_reload([("ledger", 1), ("bulk", None)]) is None
    assert _units_to_reload([("bulk", 4)]) is None
    assert _units_to_reload([("ledger", None)]) is None


def _att(shipper: str, receiver: str, code: str, shipped: int) -> Attestation:
    return Attestation(shipper, receiver, code, shipped=shipped, received=shipped, manifest_count=1)


def test_attestation_changes_name_the_codes_that_differ_per_stream():
    old = {"hazardous": [_att("A", "B", "900-199-08", 10), _att("A", "B", "900-200-08", 5)],
           "medical": [_att("M", "C", "841-001-01", 3)]}
    new = {"hazardous": [_att("A", "B", "900-200-08", 5), _att("A", "B", "900-199-08", 12),
                         _att("A", "C", "900-201-08", 1)],
           "medical": [_att("M", "C", "841-001-01", 3)],  # the same, in a stream that did not change
           "kitchen_waste": []}
    assert _attestation_changes(old, new) == {"hazardous": {"900-199-08", "900-201-08"}}
    # a code whose attestations are gone is a change too; the order of the attestations is not
    fewer = [a for a in reversed(new["hazardous"]) if a.code != "900-201-08"]
    assert _attestation_changes(new, {"hazardous": fewer}) == {"hazardous": {"900-201-08"}}
    assert _attestation_changes(old, old) == {}


def test_exemptions_depend_on_code_and_small_clinic_and_are_decided_once():
    cat = Catalogue.default().for_year(2025)
    units = {"clinic": UnitInfo("clinic", "诊所", "630102", None, (), "medical", True),
             "hospital": UnitInfo("hospital", "医院", "630102", None, (), "medical", False)}
    ex = _Exemptions(cat, units)
    assert ex.of("clinic", "841-001-01")  # HW01 of a clinic with ≤ 19 beds
    assert not ex.of("hospital", "841-001-01")
    assert not ex.of("unknown", "841-001-01")  # no registry entry: not a small clinic
    assert ex.of("hospital", "900-052-31") and ex.of("unknown", "900-052-31")  # exempt for anyone
    assert not ex.of("clinic", "900-199-08")
    assert ex.known == {("841-001-01", True): True, ("841-001-01", False): False, ("900-052-31", False): True,
                        ("900-199-08", True): False}


def test_node_of_adds_a_node_once():
    nodes: dict[tuple[str, str], NodeFlows] = {}
    nd = _node_of(nodes, "A", "C")
    nd.received = 5
    assert _node_of(nodes, "A", "C") is nd and list(nodes) == [("A", "C")]
