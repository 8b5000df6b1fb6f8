"""``Actor``: the access rules of issue 2, one case per role and place, worked out by hand."""

from __future__ import annotations

import pytest

from nofei.access import SYSTEM, Actor, visible_units

CITY, CHENGDONG, CHENGXI, PARK = "630100", "630102", "630104", "P01"  # PARK stands for a park code
MINE, OTHER = "91630100MA0000001X", "91630100MA0000002Y"

ADMIN = Actor("admin", "ops")
CITY_REG = Actor("regulator", "市局", district=CITY)
DISTRICT_REG = Actor("regulator", "城东", district=CHENGDONG)
PARK_REG = Actor("regulator", "园区", district=PARK)
FIRM = Actor("enterprise", "甲", units=frozenset({MINE}), token_id=7)


def test_label_names_role_and_name_or_token():
    assert ADMIN.label == "admin:ops"
    assert Actor("enterprise", token_id=7).label == "enterprise:7"
    assert FIRM.label == "enterprise:甲"
    assert SYSTEM.is_admin and SYSTEM.label == "admin:system"
    assert not DISTRICT_REG.is_admin


@pytest.mark.parametrize("actor, sees_all", [(ADMIN, True), (CITY_REG, True), (DISTRICT_REG, False),
                                             (PARK_REG, False), (FIRM, False)])
def test_only_admins_and_the_city_see_everything(actor, sees_all):
    assert actor.sees_all() is sees_all


@pytest.mark.parametrize("actor, mine_in_chengdong, other_in_chengxi", [
    (ADMIN, True, True),
    (CITY_REG, True, True),
    (DISTRICT_REG, True, False),  # its district only
    (FIRM, True, False),  # its own unit only, wherever it is
])
def test_who_reads_a_unit(actor, mine_in_chengdong, other_in_chengxi):
    assert actor.can_view_unit(MINE, CHENGDONG) is mine_in_chengdong
    assert actor.can_view_unit(OTHER, CHENGXI) is other_in_chengxi


def test_an_enterprise_reads_its_unit_in_any_district_and_no_other():
    assert FIRM.can_view_unit(MINE, CHENGXI)
    assert not FIRM.can_view_unit(OTHER, CHENGDONG)


def test_a_park_regulator_reads_the_units_of_its_park_but_not_the_rest_of_the_district():
    assert PARK_REG.can_view_unit_at(OTHER, CHENGXI, PARK)
    assert not PARK_REG.can_view_unit_at(OTHER, CHENGXI, None)
    assert not PARK_REG.can_view_unit(OTHER, CHENGXI)
    assert not FIRM.can_view_unit_at(OTHER, CHENGXI, PARK)  # the park rule is a regulator's


def test_an_unregistered_unit_is_seen_only_by_admins_and_the_city():
    assert ADMIN.can_view_unit_at(OTHER, None)
    assert CITY_REG.can_view_unit_at(OTHER, None)
    assert not DISTRICT_REG.can_view_unit_at(OTHER, None)
    assert not FIRM.can_view_unit_at(MINE, None)  # not even its own code, while it is not registered


@pytest.mark.parametrize("actor, mine, other", [(ADMIN, True, True), (FIRM, True, False),
                                                (CITY_REG, False, False), (DISTRICT_REG, False, False)])
def test_admins_submit_for_any_unit_an_enterprise_for_its_own_and_regulators_for_none(actor, mine, other):
    assert actor.can_submit_for(MINE) is mine
    assert actor.can_submit_for(OTHER) is other


@pytest.mark.parametrize("actor, city, chengdong, park_in_chengdong, chengxi", [
    (ADMIN, True, True, True, True),
    (CITY_REG, True, True, True, True),
    (DISTRICT_REG, False, True, True, False),  # its district and the parks in it
    (PARK_REG, False, False, True, False),
    (FIRM, True, False, False, False),  # published city figures only
])
def test_who_reads_a_region_aggregate(actor, city, chengdong, park_in_chengdong, chengxi):
    assert actor.can_view_region(CITY, None) is city
    assert actor.can_view_region(CHENGDONG, CHENGDONG) is chengdong
    assert actor.can_view_region(PARK, CHENGDONG) is park_in_chengdong
    assert actor.can_view_region(CHENGXI, CHENGXI) is chengxi


def test_visible_units_filters_a_directory_by_the_same_rules():
    units = {MINE: (CHENGDONG, None), OTHER: (CHENGXI, PARK), "UNREGISTERED": (None, None)}
    assert visible_units(ADMIN, units) == set(units)
    assert visible_units(CITY_REG, units) == set(units)
    assert visible_units(DISTRICT_REG, units) == {MINE}
    assert visible_units(PARK_REG, units) == {OTHER}
    assert visible_units(FIRM, units) == {MINE}


def test_an_actor_is_a_frozen_value():
    with pytest.raises(AttributeError):
        FIRM.role = "admin"  # type: ignore[misc]
    assert Actor("enterprise", "甲", frozenset({MINE}), token_id=7) == FIRM
