"""Who may see and do what: the ``Actor`` a token turns into, and the access rules.

Roles (issue #2): ``admin`` everything; ``regulator`` reads every unit of its district
(``630100`` = the whole city) and submits nothing; ``enterprise`` submits and reads only for its own units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nofei.catalogue import CITY

ActorRole = Literal["admin", "regulator", "enterprise"]
ACTOR_ROLES: tuple[ActorRole, ...] = ("admin", "regulator", "enterprise")


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller: role, the units it acts for (enterprise), its district (regulator)."""

    role: ActorRole
    name: str = ""
    units: frozenset[str] = field(default_factory=frozenset)
    district: str | None = None
    token_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.name or self.token_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def sees_all(self) -> bool:
        return self.role == "admin" or (self.role == "regulator" and self.district == CITY)

    def can_view_unit(self, credit_code: str, district: str) -> bool:
        """Read access to a unit's data."""
        if self.role == "admin":
            return True
        if self.role == "regulator":
            return self.district == CITY or self.district == district
        return credit_code in self.units

    def can_view_unit_at(self, credit_code: str, district: str | None, park: str | None = None) -> bool:
        """``can_view_unit`` for a unit that may be unregistered (``district`` None: only admins and the city's
        regulators see it) or in a park a regulator oversees (``park`` equal to its district code)."""
        if district is None:
            return self.sees_all()
        return self.can_view_unit(credit_code, district) or (
            self.role == "regulator" and park is not None and self.district == park)

    def can_submit_for(self, credit_code: str) -> bool:
        """Write access for a unit's ledgers and manifests: admins, or the enterprise's own units."""
        if self.role == "admin":
            return True
        return self.role == "enterprise" and credit_code in self.units

    def can_view_region(self, region: str, region_district: str | None) -> bool:
        """City/district/park aggregates: admins and regulators of that district (or the city).

        Enterprises see aggregates too only for the city as a whole (published figures)."""
        if self.role == "admin":
            return True
        if self.role == "regulator":
            return self.district == CITY or self.district in (region, region_district)
        return region == CITY


SYSTEM = Actor(role="admin", name="system")


def visible_units(actor: Actor, units: dict[str, tuple[str | None, str | None]]) -> set[str]:
    """The codes of ``units`` (code -> (district, park); (None, None) when unregistered) the actor may read."""
    if actor.sees_all():
        return set(units)
    return {cc for cc, (d, p) in units.items() if actor.can_view_unit_at(cc, d, p)}
