"""Small monthly ledger workbooks for the page tests: one that balances, one with errors in known cells."""

from __future__ import annotations

from datetime import date

from tests.factories import workbook

STOCK = ["废物代码", "废物名称", "期初贮存量（吨）", "本月产生量（吨）", "期末贮存量（吨）", "计量单位", "备注"]
TREAT = ["废物代码", "方式代码", "数量（吨）", "计量单位", "利用产物", "备注"]
OUT = ["转移日期", "转移联单编号", "废物代码", "数量（吨）", "计量单位", "接收单位统一社会信用代码", "接收单位名称",
       "承运单位统一社会信用代码", "拟利用处置方式", "备注"]


def good(credit_code: str, name: str, month: str = "2025-03", *, receiver: str) -> bytes:
    """SW01: 2 + 10 − 4 (own utilisation R4) − 6 (to ``receiver``) = 2 t at month end."""
    day = date(int(month[:4]), int(month[5:]), 7)
    return workbook({
        "填报信息": [["统一社会信用代码", credit_code], ["单位名称", name], ["填报月份", month], ["填报人", "张三"]],
        "产生贮存": [STOCK, ["SW01", "冶炼废渣", 2, 10, 2, "吨", None]],
        "利用处置": [TREAT, ["SW01", "R4", 4, "吨", "建材", None]],
        "转出": [OUT, [day, None, "SW01", 6, "吨", receiver, "接收单位", None, "R4", None]],
    })


def bad(credit_code: str, name: str, month: str = "2025-03") -> bytes:
    """Three errors: an unknown method (利用处置!B2), a non-number (产生贮存!D3), SW03 unbalanced (产生贮存!E4)."""
    return workbook({
        "填报信息": [["统一社会信用代码", credit_code], ["单位名称", name], ["填报月份", month]],
        "产生贮存": [STOCK, ["SW01", "冶炼废渣", 2, 10, 3, "吨", None], ["SW02", "粉煤灰", 0, "很多", 0, "吨", None],
                 ["SW03", "炉渣", 0, 5, 1, "吨", None]],
        "利用处置": [TREAT, ["SW01", "Z9", 4, "吨", None, None]],
    })


IN = ["接收日期", "转移联单编号", "废物代码", "数量（吨）", "计量单位", "移出单位统一社会信用代码", "移出单位名称", "备注"]


def receiver(credit_code: str, name: str, month: str = "2025-03", *, sender: str, tonnes: float = 6) -> bytes:
    """A utiliser that receives ``tonnes`` of SW01 from ``sender`` and utilises all of it (R4)."""
    day = date(int(month[:4]), int(month[5:]), 9)
    return workbook({
        "填报信息": [["统一社会信用代码", credit_code], ["单位名称", name], ["填报月份", month]],
        "产生贮存": [STOCK, ["SW01", "冶炼废渣", 0, 0, 0, "吨", None]],
        "利用处置": [TREAT, ["SW01", "R4", tonnes, "吨", "水泥熟料", None]],
        "转入": [IN, [day, None, "SW01", tonnes, "吨", sender, "发出单位", None]],
    })


def hw_pair(shipper: str, shipper_name: str, disposer: str, disposer_name: str, manifest_no: str,
            month: str = "2025-01", tonnes: float = 8) -> tuple[bytes, bytes]:
    """A producer that ships ``tonnes`` of 900-041-49 under ``manifest_no`` and the disposer that receives
    and incinerates it (D10): the two ledgers a manifest trace follows to its fate."""
    day = date(int(month[:4]), int(month[5:]), 10)
    code = "900-041-49"
    a = workbook({
        "填报信息": [["统一社会信用代码", shipper], ["单位名称", shipper_name], ["填报月份", month]],
        "产生贮存": [STOCK, [code, "废含油抹布", 0, tonnes, 0, "吨", None]],
        "转出": [OUT, [day, manifest_no, code, tonnes, "吨", disposer, disposer_name, None, "D10", None]],
    })
    b = workbook({
        "填报信息": [["统一社会信用代码", disposer], ["单位名称", disposer_name], ["填报月份", month]],
        "产生贮存": [STOCK, [code, "废含油抹布", 0, 0, 0, "吨", None]],
        "利用处置": [TREAT, [code, "D10", tonnes, "吨", None, None]],
        "转入": [IN, [day, manifest_no, code, tonnes, "吨", shipper, shipper_name, None]],
    })
    return a, b
