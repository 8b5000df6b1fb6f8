"""Issue 18: the complete 2021 名录 ships in the package, verbatim, with its editions and the 豁免清单."""

from __future__ import annotations

import csv
import hashlib
import os
from importlib import resources
from pathlib import Path

import pytest

from nofei.catalogue import Catalogue, WasteCode, parse_code_list

# sha256 of shared/domain/catalogue/hw_codes_2021_full.csv (extracted from the official PDF, official-check.md §5)
OFFICIAL_SHA256 = "0ce794b33b818e9db6d5e38d4d67b63ce9a58cddad57d6686b1df90d739b13af"


def _shipped() -> bytes:
    return resources.files("nofei.catalogue").joinpath("data", "hw_codes_2021.csv").read_bytes()


def _official_path() -> Path | None:
    """The official file beside the clone (CI has ../shared read-only) or where NOFEI_SHARED points."""
    here = Path(__file__).resolve()
    cands = [Path(os.environ["NOFEI_SHARED"]) / "domain" if os.environ.get("NOFEI_SHARED") else None,
             *(p.parent / "shared" / "domain" for p in here.parents)]
    for c in cands:
        if c is not None and (c / "catalogue" / "hw_codes_2021_full.csv").is_file():
            return c / "catalogue" / "hw_codes_2021_full.csv"
    return None


def test_the_shipped_copy_is_the_official_file():
    assert hashlib.sha256(_shipped()).hexdigest() == OFFICIAL_SHA256
    official = _official_path()
    if official is not None:
        assert official.read_bytes() == _shipped()


def test_all_467_codes_load_with_the_official_names_row_by_row():
    rows = list(csv.DictReader(_shipped().decode("utf-8").splitlines()))
    assert len(rows) == 467 and len({r["code"] for r in rows}) == 467
    cat = Catalogue.default()
    hw = [c for c in cat.waste_codes() if c.stream in ("hazardous", "medical")]
    assert len(hw) == 467
    for r in rows:
        wc = cat.codes[r["code"]]
        assert (wc.code, wc.category, wc.name_zh, wc.hazard, wc.edition) == (
            r["code"], r["category"], r["name_zh"], r["hazard"], int(r["edition"]))
        chk = cat.classify(r["code"])
        assert chk.known and chk.error is None and chk.name_zh == r["name_zh"]
    # the per-category counts of the 2021 table (official-check.md §5)
    per = {c: sum(1 for r in rows if r["category"] == c) for c in ("HW01", "HW08", "HW11", "HW48", "HW49", "HW50")}
    assert per == {"HW01": 5, "HW08": 32, "HW11": 85, "HW48": 33, "HW49": 11, "HW50": 44}


def test_official_notation_and_2021_names_are_kept():
    cat = Catalogue.default()
    assert cat.codes["900-402-06"].hazard == "T，I，R"
    assert cat.codes["336-064-17"].hazard == "T/C"
    assert cat.codes["900-352-35"].name_zh == "使用碱进行清洗产生的废碱液"
    assert cat.hw_categories["HW48"][0] == "有色金属采选和冶炼废物"
    assert cat.codes["841-004-01"].name_zh == "化学性废物" and cat.codes["841-005-01"].name_zh == "药物性废物"


def test_a_later_edition_applies_from_its_year():
    cat = Catalogue.default()
    new = WasteCode("321-035-48", "锡冶炼测试废物", "hazardous", "HW48", "loaded", "T", 2025)
    kept = WasteCode("900-041-49", "含有或沾染毒性、感染性危险废物的废弃的包装物、容器、过滤吸附介质", "hazardous", "HW49")
    ext = cat.with_edition(2025, [new, kept])
    assert ext.edition_for(2024) == 2021 and ext.edition_for(2025) == 2025 and ext.edition_for(2030) == 2025
    assert ext.edition_for(2019) == 2021
    assert ext.for_year(2025).classify("321-035-48").known
    assert ext.for_year(2024).classify("321-035-48").error == "unknown_code"
    assert ext.for_year(2025).classify("900-052-31").error == "unknown_code"  # not in that (test) edition
    assert ext.for_year(2024).classify("900-052-31").known
    assert ext.for_year(2025).classify("SW01").known  # general-industrial codes do not depend on the edition
    assert ext.for_year(2024).for_year(2025) is ext.for_year(2025)


def test_a_later_edition_file_may_hold_codes_the_2021_list_lacks():
    cat = Catalogue.default()
    rows = [{"code": "321-035-48", "name_zh": "x", "hazard": "T", "edition": "2025"},
            {"code": "900-041-49", "name_zh": "y", "edition": ""}, {"code": "900-041-49", "name_zh": "y", "edition": "2021"}]
    codes, bad = parse_code_list(rows, cat, edition=2025)
    assert [(c.code, c.edition, c.hazard) for c in codes] == [("321-035-48", 2025, "T"), ("900-041-49", 2025, "")]
    assert bad == ["row 4: edition 2021 is not 2025"]


def test_the_exemption_list_has_its_32_items():
    cat = Catalogue.default()
    items = {e.item for e in cat.exemption_list()}
    assert items == set(range(1, 33))


@pytest.mark.parametrize(("code", "clinic", "item"), [
    ("900-052-31", False, 18),   # 未破损的废铅蓄电池: transport only
    ("900-044-49", False, 27), ("900-045-49", False, 28), ("772-007-50", False, 29), ("251-017-50", False, 30),
    ("900-049-50", False, 31), ("900-210-08", False, 7), ("900-451-13", False, 11),
    ("841-001-01", True, 2), ("841-002-01", True, 2),  # a clinic with ≤ 19 beds: 收集 and 运输
    ("841-001-01", False, None),  # a hospital's infectious waste needs its 联单 (item 3 needs disinfection first)
    ("900-041-49", False, None),  # exempt only when not sorted out (全部环节, a condition nofei cannot see)
    ("321-024-48", False, None),  # 铝灰渣: exempt at 利用, not transport
    ("900-003-04", False, None),  # 农药包装: a condition of its own rules
    ("900-214-08", True, None),
])
def test_transport_exemptions(code, clinic, item):
    e = Catalogue.default().transport_exempt(code, small_clinic=clinic)
    assert (e.item if e else None) == item
    if e is not None:
        assert "运输" in e.stages
