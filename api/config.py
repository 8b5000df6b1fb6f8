"""Configuration: defaults, overridden by ``NOFEI_*`` environment variables, then by ``create_app(settings)``."""

from __future__ import annotations

from typing import Any

from nofei.domain.rules import SETTING_KEYS

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
    "RATE_LIMIT_PER_MINUTE": 1200,               # API requests per token (or address) a minute; 0 = off
    "LOGIN_RATE_LIMIT_PER_MINUTE": 10,           # sign-in attempts per address and per token prefix; 0 = off
    "SECRET_KEY": None,
    "AUDIT_KEY": None,                           # audit-entry MAC key (text, >= 16 bytes); or ...
    "AUDIT_KEY_FILE": None,                      # ... a file holding it (created with a random key if missing)
    "WEB_SESSION_HOURS": 12,                     # a page sign-in lasts this long (server-side, revocable)
    "LOG_LEVEL": "INFO",
}


def load_settings(overrides: dict[str, Any] | None = None, *, env: bool = True) -> dict[str, Any]:
    """Merge defaults, ``NOFEI_*`` environment variables (JSON-parsed when possible) and overrides."""
    import json
    import os

    cfg = dict(DEFAULTS)
    if env:
        # the rule settings (DISCREPANCY_RATIO, HOLIDAYS, ...) have their defaults in nofei.domain.rules.Rules
        for key in [*DEFAULTS, *SETTING_KEYS, "TEST_DATABASE_URL"]:
            raw = os.environ.get(f"NOFEI_{key}")
            if raw is None:
                continue
            try:
                cfg[key] = json.loads(raw)
            except ValueError:
                cfg[key] = raw
    cfg.update(overrides or {})
    return cfg


def audit_key(cfg: dict[str, Any]) -> bytes:
    """The audit-entry MAC key, from outside the database (issue 17 item 10): ``AUDIT_KEY`` itself, else the
    file ``AUDIT_KEY_FILE``, else a default file — beside a SQLite database file (``nofei.db.audit-key``) or
    ``~/.nofei/audit.key`` — created with 32 random bytes (mode 0600) the first time, so that ``nofei serve``
    and ``nofei audit verify`` on one machine share it. Production sets one of the two explicitly and keeps
    the key where the database's administrators cannot write (README, "Audit trail")."""
    import os
    import secrets
    from pathlib import Path

    raw = cfg.get("AUDIT_KEY")
    if raw:
        return str(raw).encode("utf-8")
    path_s = cfg.get("AUDIT_KEY_FILE")
    if not path_s:
        url = str(cfg.get("DATABASE_URL") or "")
        db = url.split("///", 1)[1] if url.startswith("sqlite:///") and url != "sqlite:///" else ""
        path_s = f"{db}.audit-key" if db and ":memory:" not in db else str(Path.home() / ".nofei" / "audit.key")
    path = Path(str(path_s))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    key = path.read_text(encoding="utf-8").strip().encode("utf-8")
    if len(key) < 16:
        raise ValueError(f"audit key file {path} holds fewer than 16 bytes")
    return key
