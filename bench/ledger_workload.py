"""B1 workload: a monthly ledger workbook whose 转出 sheet has N rows (deterministic, seed 42).

Written with openpyxl ``write_only`` (``imports.write_ledger_workbook`` uses normal mode, which is
fine for a demo month but takes minutes and ~1 GB for 100,000 rows). The sheets, headers and
cell types are those of the template: dates as Excel dates, quantities as numbers in tonnes,
联单编号 and credit codes as text. The 产生贮存 rows make every code balance.
"""

from __future__ import annotations

import io
import random
from datetime import date
from pathlib import Path

from openpyxl import Workbook

from imports.spec import COVER, OUT, STOCK, template_header
from nofei.domain.units import make_credit_code

ME = make_credit_code("630104", "BE0000001")
RECEIVERS = [make_credit_code("630105", f"BR{i:07d}") for i in range(300)]
CODES = ["900-041-49", "900-249-08", "772-002-18", "SW01", "SW02", "SW07", "900-402-06", "841-001-01"]
MONTH = "2025-03"


def build(n: int, seed: int = 42, month: str = MONTH) -> bytes:
    rnd = random.Random(seed)
    wb = Workbook(write_only=True)
    cover = wb.create_sheet("填报信息")
    values = {"credit_code": ME, "unit_name": "基准测试化工有限公司", "month": month, "reporter": "基准", "phone": ""}
    for f in COVER:
        cover.append([f.label, values[f.key]])
    stock = wb.create_sheet(STOCK.name)
    stock.append([template_header(c) for c in STOCK.columns])
    out = wb.create_sheet(OUT.name)
    out.append([template_header(c) for c in OUT.columns])
    sent = {c: 0 for c in CODES}
    for i in range(n):
        code = CODES[rnd.randrange(len(CODES))]
        kg = rnd.randint(1, 50_000)
        sent[code] += kg
        hw = not code.startswith("SW")
        out.append([
            date(int(month[:4]), int(month[5:]), rnd.randint(1, 28)),
            f"2025{63010400000 + i:010d}"[:14] if hw else None,
            code, kg / 1000, "吨", RECEIVERS[rnd.randrange(len(RECEIVERS))], f"接收单位{rnd.randrange(300)}",
            None, "R4" if not hw else "D10", "备注" if rnd.random() < 0.3 else None,
        ])
    for code in CODES:
        stock.append([code, None, 1.5, sent[code] / 1000, 1.5, "吨", None])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def cached(n: int, directory: Path = Path("bench/out")) -> Path:
    """The workbook for ``n`` rows, generated once (bench/out is ignored by git)."""
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"b1_ledger_{n}.xlsx"
    if not p.exists():
        p.write_bytes(build(n))
    return p
