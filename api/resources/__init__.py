"""One module per resource; ``create_app`` registers the blueprint (``blp``) of each module in ``ALL``, listed
by name (the order the API document lists their tags). A new resource module is added here."""

from api.resources import (
    anomalies,
    audit,
    cases,
    catalogue,
    declarations,
    health,
    indicators,
    ledgers,
    manifests,
    reports,
    traces,
    units,
)

ALL = (anomalies, audit, cases, catalogue, declarations, health, indicators, ledgers, manifests, reports, traces,
       units)
