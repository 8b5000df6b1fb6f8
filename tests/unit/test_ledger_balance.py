from datetime import date

from nofei.domain.ledger import LedgerDraft, StockLine, TransferLine, TreatmentLine, balance_problems
from nofei.problems import SourceRef


def draft(close: int) -> LedgerDraft:
    d = LedgerDraft("X", "x", "2025-03")
    d.stocks.append(StockLine("SW01", "general_industrial", 1000, 5000, close, ref=SourceRef("产生贮存", 2), close_column="E"))
    d.treatments.append(TreatmentLine("SW01", "general_industrial", "R5", 3000))
    d.transfers.append(TransferLine("out", date(2025, 3, 2), "SW01", "general_industrial", 1500, "Y"))
    d.transfers.append(TransferLine("in", date(2025, 3, 3), "SW01", "general_industrial", 500, "Z"))
    return d


def test_a_balanced_ledger_has_no_problem():
    assert balance_problems(draft(2000)) == []


def test_tolerance_is_one_kilogram():
    assert balance_problems(draft(2001)) == []
    [p] = balance_problems(draft(2002))
    assert (p.code, p.sheet, p.row, p.column, p.header) == ("unbalanced", "产生贮存", 2, "E", "期末贮存量")
    assert "2.000" in p.message and "2.002" in p.message


def test_codes_without_a_stock_row_and_duplicates_are_errors():
    d = draft(2000)
    d.transfers.append(TransferLine("out", date(2025, 3, 2), "SW02", "general_industrial", 1, "Y", ref=SourceRef("转出", 7, "C")))
    d.stocks.append(StockLine("SW01", "general_industrial", 0, 0, 0, ref=SourceRef("产生贮存", 3)))
    codes = sorted(p.code for p in balance_problems(d))
    assert codes == ["duplicate_code", "missing_stock_row"]
