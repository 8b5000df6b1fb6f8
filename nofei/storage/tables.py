"""SQLModel tables (persistence only). Quantities are integer kilograms (BigInteger), never floats.

Every table lives here so that one Alembic history describes the whole schema.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    Table,
    UniqueConstraint,
    false,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel


def _kg() -> Column[int]:
    return Column(BigInteger, nullable=False, default=0)


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` behind a table model: SQLModel creates ``__table__`` but does not declare it."""
    return cast(Table, inspect(model).local_table)


class UnitRow(SQLModel, table=True):
    """A registered unit (单位)."""

    __tablename__ = "unit"
    id: int | None = Field(default=None, primary_key=True)
    credit_code: str = Field(max_length=18, unique=True, index=True)
    name: str = Field(max_length=200)
    district: str = Field(max_length=6, index=True)
    park: str | None = Field(default=None, max_length=32, index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reports_from: str | None = Field(default=None, max_length=7)  # YYYY-MM: the first month a ledger is owed
    # industrial | social_source | medical_institution | licensed (migration h5_unit_type)
    unit_type: str = Field(default="industrial", max_length=24,
                           sa_column_kwargs={"server_default": "industrial", "nullable": False})
    small_clinic: bool = Field(default=False, sa_column_kwargs={"server_default": false(), "nullable": False})
    created_at: datetime
    updated_at: datetime


class PermitRow(SQLModel, table=True):
    """A permit of a unit: codes (or HW categories), methods, yearly capacity."""

    __tablename__ = "permit"
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    number: str = Field(max_length=64)
    waste_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    methods: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    capacity_kg: int = Field(sa_column=_kg())
    valid_from: date | None = None
    valid_to: date | None = None


class TokenRow(SQLModel, table=True):
    """An API token, stored as a SHA-256 hash; the clear token is shown once at creation."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    district: str | None = Field(default=None, max_length=6)
    units: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=12)
    created_at: datetime
    revoked_at: datetime | None = None


class CatalogueCodeRow(SQLModel, table=True):
    """A waste code loaded by an admin (the full 名录), on top of the package catalogue."""

    __tablename__ = "catalogue_code"
    code: str = Field(primary_key=True, max_length=16)
    name_zh: str = Field(default="", max_length=500)
    category: str | None = Field(default=None, max_length=4)
    stream: str = Field(max_length=24)
    loaded_at: datetime


class CatalogueEditionCodeRow(SQLModel, table=True):
    """A code of a whole edition of the 名录 loaded by an admin (``nofei catalogue load --edition 2025``)."""

    __tablename__ = "catalogue_edition_code"
    edition: int = Field(primary_key=True)
    code: str = Field(primary_key=True, max_length=16)
    category: str | None = Field(default=None, max_length=4)
    name_zh: str = Field(default="", max_length=1000, sa_column_kwargs={"server_default": ""})
    hazard: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    stream: str = Field(max_length=24)
    loaded_at: datetime


class LedgerRow(SQLModel, table=True):
    """One accepted version of a unit's monthly ledger (月度台账). Never updated but for ``is_current``."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("unit_id", "month", "version", name="uq_ledger_unit_month_version"),
        Index("ix_ledger_year_current", "year", "is_current"),
    )
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    month: str = Field(max_length=7)
    year: int
    version: int
    is_current: bool = True
    sha256: str = Field(max_length=64)
    filename: str = Field(default="", max_length=255)
    size: int = 0
    uploaded_at: datetime
    uploaded_by: str = Field(default="", max_length=200)
    reporter: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=64)
    unit_name: str = Field(default="", max_length=200)
    row_counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    totals: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    warnings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class LedgerFileRow(SQLModel, table=True):
    """The original uploaded bytes of a ledger version, so it can be downloaded again."""

    __tablename__ = "ledger_file"
    ledger_id: int = Field(foreign_key="ledger.id", primary_key=True)
    content_type: str = Field(default="", max_length=120)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class StockEntryRow(SQLModel, table=True):
    """A 产生贮存 row of a ledger version."""

    __tablename__ = "stock_entry"
    id: int | None = Field(default=None, primary_key=True)
    ledger_id: int = Field(foreign_key="ledger.id", index=True)
    row: int | None = None
    code: str = Field(max_length=16)
    stream: str = Field(max_length=24)
    name: str = Field(default="", max_length=500)
    open_kg: int = Field(sa_column=_kg())
    generated_kg: int = Field(sa_column=_kg())
    close_kg: int = Field(sa_column=_kg())
    note: str = Field(default="", max_length=500)
    form: str = Field(default="", max_length=20, sa_column_kwargs={"server_default": ""})
    harmful_components: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})


class TreatmentEntryRow(SQLModel, table=True):
    """A 利用处置 row of a ledger version."""

    __tablename__ = "treatment_entry"
    id: int | None = Field(default=None, primary_key=True)
    ledger_id: int = Field(foreign_key="ledger.id", index=True)
    row: int | None = None
    code: str = Field(max_length=16)
    stream: str = Field(max_length=24)
    method: str = Field(max_length=8)
    qty_kg: int = Field(sa_column=_kg())
    product: str = Field(default="", max_length=500)
    note: str = Field(default="", max_length=500)


class TransferEntryRow(SQLModel, table=True):
    """A 转出 (direction ``out``) or 转入 (``in``) row of a ledger version."""

    __tablename__ = "transfer_entry"
    # partial indexes (migration pg_manifest_partial): rows without a number (37 % of the B1 upload) skip the
    # random-order manifest_no b-tree; the trace's "transfers without a manifest" reads the small second one
    __table_args__ = (
        Index("ix_transfer_manifest", "manifest_no", postgresql_where=text("manifest_no IS NOT NULL"),
              sqlite_where=text("manifest_no IS NOT NULL")),
        Index("ix_transfer_unnumbered", "ledger_id", postgresql_where=text("manifest_no IS NULL"),
              sqlite_where=text("manifest_no IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    # A foreign key on SQLite; on PostgreSQL the same rule is checked once per statement by a trigger
    # (migration pg_transfer_ledger_guard: 100,000 per-row RI checks were the costliest part of an upload).
    ledger_id: int = Field(foreign_key="ledger.id", index=True)
    row: int | None = None
    direction: str = Field(max_length=3)
    day: date
    code: str = Field(max_length=16)
    stream: str = Field(max_length=24)
    qty_kg: int = Field(sa_column=_kg())
    counterpart: str = Field(max_length=18)  # no index: no query reads by it (migration import_perf_indexes)
    counterpart_name: str = Field(default="", max_length=200)
    manifest_no: str | None = Field(default=None, max_length=32)
    carrier: str | None = Field(default=None, max_length=18)
    planned_method: str | None = Field(default=None, max_length=8)
    note: str = Field(default="", max_length=500)


class ManifestRow(SQLModel, table=True):
    """A transfer manifest (转移联单). ``number`` is 14 digits; a correction is a new version row."""

    __tablename__ = "manifest"
    __table_args__ = (UniqueConstraint("number", "version", name="uq_manifest_number_version"),)
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=14, index=True)
    version: int = 1
    is_current: bool = True
    shipper_id: int = Field(foreign_key="unit.id", index=True)
    receiver_code: str = Field(max_length=18, index=True)
    carrier_code: str | None = Field(default=None, max_length=18)
    status: str = Field(max_length=24, index=True)
    planned_date: date
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    vehicle: str | None = Field(default=None, max_length=32)
    driver: str | None = Field(default=None, max_length=64)
    parent_number: str | None = Field(default=None, max_length=14)
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime
    created_by: str = Field(default="", max_length=200)
    updated_at: datetime
    permit_no: str | None = Field(default=None, max_length=64)  # 营运证件号 (第十一条)
    accepted_on: date | None = None  # 接受日期: the five working days run from it (第十八条)
    shipped_entered_at: datetime | None = None  # when nofei recorded the shipping (shipped_at: when it happened)
    received_entered_at: datetime | None = None  # when nofei recorded the receipt or refusal


class ManifestLineRow(SQLModel, table=True):
    """A line of a manifest: code, shipped and received quantity, method, discrepancy flag."""

    __tablename__ = "manifest_line"
    id: int | None = Field(default=None, primary_key=True)
    manifest_id: int = Field(foreign_key="manifest.id", index=True)
    line_no: int
    waste_code: str = Field(max_length=16, index=True)
    quantity_kg: int = Field(sa_column=_kg())
    packaging: str | None = Field(default=None, max_length=64)
    planned_method: str | None = Field(default=None, max_length=8)
    received_kg: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    method: str | None = Field(default=None, max_length=8)
    rejected_kg: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    discrepancy: bool = False
    container_count: int | None = None  # 包装数量
    mismatch: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # 第十八条 kinds


class ManifestEventRow(SQLModel, table=True):
    """One step in a manifest's history (created, shipped, received, rejected, corrected)."""

    __tablename__ = "manifest_event"
    id: int | None = Field(default=None, primary_key=True)
    manifest_id: int = Field(foreign_key="manifest.id", index=True)
    time: datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=24)
    from_status: str | None = Field(default=None, max_length=24)
    to_status: str = Field(max_length=24)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    event_time: datetime | None = None  # when the step happened (``time``: when it was entered)


class ManifestDraftRow(SQLModel, table=True):
    """A producer's saved manifest, not yet submitted: no number until it is (numbers are not spent on drafts)."""

    __tablename__ = "manifest_draft"
    id: int | None = Field(default=None, primary_key=True)
    shipper_id: int = Field(foreign_key="unit.id", index=True)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=200)
    updated_at: datetime


class ManifestSerialRow(SQLModel, table=True):
    """The last serial used for (year, region prefix); incremented under a row lock for unique numbers."""

    __tablename__ = "manifest_serial"
    key: str = Field(primary_key=True, max_length=8)
    last: int = 0


class StatisticRow(SQLModel, table=True):
    """Per region and year statistics entered by an admin (工业增加值, 万元, exact decimal text)."""

    __tablename__ = "statistic"
    year: int = Field(primary_key=True)
    region: str = Field(primary_key=True, max_length=32)
    industrial_value_added: str = Field(max_length=40)  # "" when only other figures were entered
    medical_institutions: int | None = None  # 医疗卫生机构总数 (migration h5_unit_type)
    updated_at: datetime


class AuditRow(SQLModel, table=True):
    """An audit entry; ``digest`` = SHA-256 over the entry and the previous digest (a hash chain), ``mac`` its
    HMAC under a key outside the database."""

    __tablename__ = "audit_entry"
    seq: int | None = Field(default=None, primary_key=True)
    time: datetime
    actor: str = Field(max_length=200, index=True)
    role: str = Field(max_length=16)
    action: str = Field(max_length=64)
    object: str = Field(max_length=200, index=True)
    district: str | None = Field(default=None, max_length=6)
    request_id: str = Field(default="", max_length=64)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_digest: str = Field(max_length=64)
    digest: str = Field(max_length=64)
    mac: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})  # HMAC-SHA256(key, digest)


class WebSessionRow(SQLModel, table=True):
    """A signed-in page session: the cookie holds a random id, this row its SHA-256 (never the API token)."""

    __tablename__ = "web_session"
    id_hash: str = Field(primary_key=True, max_length=64)
    token_id: int = Field(foreign_key="api_token.id", index=True)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class RateLimitRow(SQLModel, table=True):
    """Requests counted in one fixed window for one key (a token's hash, an address), shared by all processes."""

    __tablename__ = "rate_limit"
    __table_args__ = (Index("ix_rate_limit_window", "window"),)
    key: str = Field(primary_key=True, max_length=100)
    window: int = Field(sa_column=Column(BigInteger, primary_key=True))
    count: int = 0


class CaseRow(SQLModel, table=True):
    """A case (案件): one anomaly worked to an end. ``key`` is the anomaly's stable identity."""

    __tablename__ = "case_file"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True, index=True)
    kind: str = Field(max_length=32, index=True)
    year: int = Field(index=True)
    units: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    districts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    title: str = Field(default="", max_length=200)
    message: str = Field(default="", max_length=2000)
    mass_kg: int = Field(sa_column=_kg())
    anomaly: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    facts: str = Field(max_length=64)
    facts_at_close: str | None = Field(default=None, max_length=64)
    holds: bool = True  # the anomaly is in the latest computation
    status: str = Field(max_length=16, index=True)
    resolution: str | None = Field(default=None, max_length=16)
    assignee: str | None = Field(default=None, max_length=200, index=True)
    due: date | None = None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class CaseEventRow(SQLModel, table=True):
    """One step in a case's thread: a note, notify, respond, close, waive, reopen, assign, or a system step."""

    __tablename__ = "case_event"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case_file.id", index=True)
    time: datetime
    actor: str = Field(max_length=200)
    role: str = Field(max_length=16)
    action: str = Field(max_length=16)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    text: str = Field(default="", max_length=4000)
    link: str | None = Field(default=None, max_length=200)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CaseSyncRow(SQLModel, table=True):
    """The anomaly stamp a year's cases were last brought up to date with (sync only when it changes)."""

    __tablename__ = "case_sync"
    year: int = Field(primary_key=True)
    day: date = Field(primary_key=True)
    stamp: str = Field(max_length=400)
    synced_at: datetime


class TierOverrideRow(SQLModel, table=True):
    """A regulator's adjustment of a unit's HJ 1259 tier for a year (4.2.2), appended, never updated.

    The newest row of (unit, year) is in force; ``tier`` None withdraws the adjustment."""

    __tablename__ = "tier_override"
    __table_args__ = (Index("ix_tier_override_unit_year", "unit_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    year: int
    tier: str | None = Field(default=None, max_length=16)
    reason: str = Field(max_length=500)
    actor: str = Field(max_length=200)
    created_at: datetime


metadata = SQLModel.metadata


class FlowEdgeRow(SQLModel, table=True):
    """What one ledger version adds to the year's flow graph: its 转出/转入 rows grouped by direction, stream,
    code, counterpart and planned method (kg, rows, rows with a well-formed 联单编号). Written in the upload's
    transaction (``nofei.storage.flowstore``), so a year loads from these instead of every transfer row."""

    __tablename__ = "flow_edge"
    id: int | None = Field(default=None, primary_key=True)
    ledger_id: int = Field(foreign_key="ledger.id", index=True)
    year: int = Field(index=True)
    direction: str = Field(max_length=3)
    stream: str = Field(max_length=24)
    code: str = Field(max_length=16)
    counterpart: str = Field(max_length=18)
    method: str | None = Field(default=None, max_length=8)
    kg: int = Field(sa_column=_kg())
    rows: int = 0
    wellformed: int = 0


class FlowChangeRow(SQLModel, table=True):
    """One write that changed a year's flow graph (a ledger version, a manifest step, a bulk load).

    The newest row's (id, token) is the flow model's cache stamp: ``token`` is random, so the stamp never
    repeats, not even after ``TRUNCATE … RESTART IDENTITY`` hands out the same ids again; the rows after a
    cached stamp say which units to reload (``unit_id`` None: reload the whole year)."""

    __tablename__ = "flow_change"
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    kind: str = Field(max_length=16)  # ledger | manifest | bulk
    unit_id: int | None = None
    token: str = Field(max_length=32)


class FlowYearEdgeRow(SQLModel, table=True):
    """A unit's year of ``flow_edge`` over its current ledger versions: what the year's graph loads (a few
    rows per unit instead of one per ledger, counterpart and code). Rewritten for the unit with each version."""

    __tablename__ = "flow_year_edge"
    __table_args__ = (Index("ix_flow_year_edge_year_unit", "year", "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int
    unit_id: int = Field(foreign_key="unit.id")
    direction: str = Field(max_length=3)
    stream: str = Field(max_length=24)
    code: str = Field(max_length=16)
    counterpart: str = Field(max_length=18)
    kg: int = Field(sa_column=_kg())
    rows: int = 0
    wellformed: int = 0
