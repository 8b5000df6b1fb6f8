"""The contract's sheets and headers for monthly ledger workbooks in the tests (built by ``tests.factories.workbook``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from nofei.domain.units import make_credit_code
from tests.factories import workbook

__all__ = ["workbook"]  # the one builder, re-exported for the ledger tests

ME = make_credit_code("630104", "LT0000001")
RECV = make_credit_code("630105", "LT0000002")
SENDER = make_credit_code("630102", "LT0000003")

STOCK_HEAD = ["废物代码", "废物名称", "期初贮存量（吨）", "本月产生量（吨）", "期末贮存量（吨）", "计量单位", "备注", "形态",
              "有害成分名称"]
TREAT_HEAD = ["废物代码", "方式代码", "数量（吨）", "计量单位", "利用产物", "备注"]
OUT_HEAD = ["转移日期", "转移联单编号", "废物代码", "数量（吨）", "计量单位", "接收单位统一社会信用代码", "接收单位名称",
            "承运单位统一社会信用代码", "拟利用处置方式", "备注"]
IN_HEAD = ["接收日期", "转移联单编号", "废物代码", "数量（吨）", "计量单位", "移出单位统一社会信用代码", "移出单位名称", "备注"]


def cover(credit: str = ME, name: str = "测试化工有限公司", month: Any = "2025-03") -> list[list[Any]]:
    return [["统一社会信用代码", credit], ["单位名称", name], ["填报月份", month], ["填报人", "张三"], ["联系电话", "0971-1234567"]]


def balanced_sheets(month_day: date = date(2025, 3, 7)) -> dict[str, list[list[Any]]]:
    """A small ledger that balances: HW 900-041-49 and SW01."""
    return {
        "填报信息": cover(),
        "产生贮存": [list(STOCK_HEAD),
                 ["900-041-49", "废含油抹布", 1.5, 10, 2.5, "吨", None],     # 1.5 + 10 + 2 - 3 - 8 = 2.5
                 ["SW01", None, 0, 5000, 0, "千克", None]],                 # kg: 0 + 5000 - 5000 = 0
        "利用处置": [list(TREAT_HEAD), ["900-041-49", "D10", 3, "吨", None, None]],
        "转出": [list(OUT_HEAD),
               [month_day, "20250300000001", "900-041-49", 8, "吨", RECV, "接收单位", None, "D10", None],
               [month_day, None, "SW01", 5, "吨", RECV, "接收单位", None, "R4", None]],
        "转入": [list(IN_HEAD), [month_day, "20250300000002", "900-041-49", 2, "吨", SENDER, "移出单位", None]],
    }
