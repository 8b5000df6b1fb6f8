"""Which region a unit belongs to: one rule for indicators, visibility, anomalies and reports.

indicators.md (header): a unit counts in the city, in its registered district and in its park (a park
is an administrative area inside a district, with its own code).
"""

from __future__ import annotations

from nofei.catalogue import CITY


def in_region(region: str | None, district: str | None, park: str | None, *, city: str = CITY) -> bool:
    """True when a unit registered in ``district`` (and ``park``) counts in ``region``."""
    if not region:
        return False
    return region == city or (district is not None and region == district) or (park is not None and region == park)
