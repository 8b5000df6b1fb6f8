from decimal import Decimal

import pytest

from nofei.catalogue import Catalogue, WasteCode, parse_code_list


@pytest.fixture
def cat() -> Catalogue:
    return Catalogue.default()


@pytest.mark.parametrize(
    ("raw", "code", "stream", "known"),
    [
        ("SW01", "SW01", "general_industrial", True),
        ("sw58", "SW58", "general_industrial", False),
        ("101-001-S05", "101-001-S05", "general_industrial", False),
        ("900-041-49", "900-041-49", "hazardous", True),
        ("HW08-900-199-08", "900-199-08", "hazardous", True),
        ("hw08－900-199-08", "900-199-08", "hazardous", True),
        ("900-999-49", "900-999-49", "hazardous", True),
        ("309-001-49", "309-001-49", "hazardous", True),
        ("900-024-29", "900-024-29", "hazardous", True),
        ("841-001-01", "841-001-01", "medical", True),
        ("NM01", "NM01", "agricultural_film", True),
        ("CC03", "CC03", "kitchen_waste", True),
    ],
)
def test_codes_fall_into_the_stream_the_contract_names(cat, raw, code, stream, known):
    chk = cat.classify(raw)
    assert (chk.code, chk.stream, chk.known, chk.error) == (code, stream, known, None)


@pytest.mark.parametrize(
    ("raw", "error"),
    [("SW08", "unknown_code"), ("SW60", "unknown_code"), ("123-456-99", "bad_category"),
     ("HW09-900-199-08", "bad_category"), ("900-001-01", "unknown_code"), ("garbage", "unknown_code"),
     ("101-001-S60", "unknown_code"),
     # issue 18: a hazardous code outside the 2021 名录 is refused, not accepted with a warning
     ("900-999-08", "unknown_code"), ("841-000-01", "unknown_code"), ("841-006-01", "unknown_code"),
     ("841-007-01", "unknown_code"), ("841-008-01", "unknown_code"), ("841-009-01", "unknown_code"),
     ("851-001-29", "unknown_code"), ("312-001-31", "unknown_code"), ("397-052-31", "unknown_code"),
     ("421-001-31", "unknown_code"),
     # S08 is outside the industrial range in both SW forms
     ("101-001-S08", "unknown_code"), ("SW08", "unknown_code")],
)
def test_codes_of_the_wrong_form_or_category_are_refused(cat, raw, error):
    assert cat.classify(raw).error == error


def test_c1_class_is_a_setting(cat):
    assert cat.method_class("C1") == "disposal"
    assert Catalogue.default(c1_class="utilisation").method_class("C1") == "utilisation"
    assert cat.method_class("R4") == "utilisation"
    assert cat.method_class("Y10") == "disposal"
    assert cat.method_class("Z9") is None


def test_loaded_codes_extend_the_catalogue(cat):
    assert cat.classify("900-999-08").error == "unknown_code"
    ext = cat.with_codes([WasteCode("900-999-08", "测试", "hazardous", "HW08", "loaded")])
    assert ext.classify("900-999-08").known
    assert cat.classify("900-999-08").error == "unknown_code"  # the original is untouched


def test_parse_code_list_reports_bad_rows(cat):
    codes, bad = parse_code_list([{"code": "900-249-08", "name_zh": "x"}, {"code": "123-456-99", "name_zh": "y"},
                                  {"code": "900-999-08", "name_zh": "z"}], cat)
    assert [c.code for c in codes] == ["900-249-08"]
    assert bad == ["row 3: bad_category 123-456-99", "row 4: unknown_code 900-999-08"]


def test_targets_come_from_the_plan(cat):
    t = cat.target_for("general_industrial_utilisation_rate", "630100", 2025)
    assert t is not None and t.target == Decimal("93.4") and t.comparator == ">"
    assert t.met_by(93.5) is True and t.met_by(93.4) is False and t.met_by(None) is None
    assert cat.target_for("general_industrial_utilisation_rate", "630104", 2025) is None
