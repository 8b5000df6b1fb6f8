"""Configuration: defaults, overridden by ``NOFEI_*`` environment variables, then by ``create_app(settings)``."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///nofei.db",
    "AUTO_MIGRATE": True,
    "MAX_UPLOAD_BYTES": 20 * 1024 * 1024,       # 413 above this
    "MAX_REQUEST_BODY_BYTES": 256 * 1024 * 1024,  # nofei serve: waitress's own (text/plain) 413 above this
    "MAX_UNCOMPRESSED_BYTES": 200 * 1024 * 1024,  # zip bomb: total uncompressed size
    "MAX_COMPRESSION_RATIO": 100,                # zip bomb: per-member ratio
    "MAX_SHEETS": 20,
    "MAX_ROWS_PER_SHEET": 200_000,
    "MAX_CELL_CHARS": 2_000,
    "MAX_COLUMNS": 64,                           # a cell beyond column BL is refused before parsing
    "PARSE_MEMORY_BYTES": 2 * 1024 ** 3,         # parse worker: address-space limit (RLIMIT_AS)
    "PARSE_SECONDS": 60,                         # parse worker: wall-clock limit per file
    "PARSE_WORKERS": 2,                          # parse worker processes (0 = in process, trusted files only)
    "BALANCE_TOLERANCE_KG": 1,                   # 0.001 t (ledger-workbook.md)
    "C1_CLASS": "disposal",                      # 水泥窑协同处置: utilisation or disposal (indicators.md)
    "RATE_LIMIT_PER_MINUTE": 0,                  # 0 = off
    "DISCREPANCY_RATIO": "0.05",                 # manifests: > 5 % ...
    "DISCREPANCY_MIN_KG": 100,                   # ... and > 0.1 t
    "RECEIPT_WORKING_DAYS": 5,
    "STORAGE_LIMIT_DAYS": 365,
    "HOLIDAYS": None,                            # manifests: public holidays (None = built-in calendar)
    "EXTRA_WORKDAYS": None,                      # ... and weekend days worked in exchange (调休)
    "SECRET_KEY": None,
    "LOG_LEVEL": "INFO",
}


def load_settings(overrides: dict[str, Any] | None = None, *, env: bool = True) -> dict[str, Any]:
    """Merge defaults, ``NOFEI_*`` environment variables (JSON-parsed when possible) and overrides."""
    import json
    import os

    cfg = dict(DEFAULTS)
    if env:
        for key in list(DEFAULTS) + ["TEST_DATABASE_URL"]:
            raw = os.environ.get(f"NOFEI_{key}")
            if raw is None:
                continue
            try:
                cfg[key] = json.loads(raw)
            except ValueError:
                cfg[key] = raw
    cfg.update(overrides or {})
    return cfg
