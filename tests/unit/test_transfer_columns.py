"""``TransferColumns`` against the ``list[TransferLine]`` it stands for: the same rows, and fast paths whose
answers are worked out here by hand from a five-row sheet pair."""

from __future__ import annotations

from datetime import date

import pytest

from nofei.domain.ledger import SHEET_IN, SHEET_OUT, SHEET_STOCK, SHEET_TREAT, LedgerDraft, TransferLine
from nofei.domain.transfer_columns import (
    TransferBlock,
    TransferColumns,
    block_tuples,
    row_counts,
    summarised,
    transfer_counts,
)
from nofei.problems import SourceRef

A, B = "91630100MA0000001X", "91630100MA0000002Y"
D1, D2 = date(2025, 3, 3), date(2025, 3, 9)


def out_block() -> TransferBlock:
    """转出 rows 3, 4, 5 and 7: 900-041-49 twice to A (100 + 250 kg), HW01 841-001-01 to B, 900-041-49 to B."""
    return TransferBlock(
        direction="out", sheet=SHEET_OUT, rows=[3, 4, 5, 7], days=[D1, D2, D1, D2],
        codes=["900-041-49", "900-041-49", "841-001-01", "900-041-49"],
        streams=["hazardous", "hazardous", "medical", "hazardous"], qty_kg=[100, 250, 40, 10],
        counterparts=[A, A, B, B], counterpart_names=["甲", "甲", "乙", "乙"],
        manifests=["2025630100000001", None, "2025630100000002", None], carriers=[None, None, "运输", None],
        planned_methods=["D10", "D10", None, "R9"], notes=["", "", "", "备注"])


def in_block() -> TransferBlock:
    """转入 row 3: 20 kg of 900-041-49 from B."""
    return TransferBlock(
        direction="in", sheet=SHEET_IN, rows=[3], days=[D1], codes=["900-041-49"], streams=["hazardous"],
        qty_kg=[20], counterparts=[B], counterpart_names=["乙"], manifests=[None], carriers=[None],
        planned_methods=[None], notes=[""])


def columns() -> TransferColumns:
    return TransferColumns([out_block(), in_block()])


def as_lines() -> list[TransferLine]:
    return list(columns())


def test_the_rows_read_back_as_transfer_lines_in_sheet_order_with_their_cells():
    lines = as_lines()
    assert len(lines) == 5
    assert [(t.direction, t.ref) for t in lines] == [
        ("out", SourceRef(SHEET_OUT, 3)), ("out", SourceRef(SHEET_OUT, 4)), ("out", SourceRef(SHEET_OUT, 5)),
        ("out", SourceRef(SHEET_OUT, 7)), ("in", SourceRef(SHEET_IN, 3))]
    assert lines[3] == TransferLine("out", D2, "900-041-49", "hazardous", 10, B, "乙", None, None, "R9", "备注",
                                    SourceRef(SHEET_OUT, 7))
    assert columns()[4].counterpart == B
    assert columns()[1:3] == lines[1:3]


def test_an_empty_block_is_dropped_and_the_sequence_equals_its_list():
    empty = TransferBlock("in", SHEET_IN, [], [], [], [], [], [], [], [], [], [], [])
    cols = TransferColumns([out_block(), empty])
    assert len(cols.blocks) == 1
    assert len(cols) == 4
    assert cols == list(cols) and cols == TransferColumns(_lines=list(cols))
    assert cols != list(cols)[:3]
    assert (cols == 4) is False  # compared with something that is not a sequence of lines


def test_counts_per_direction_columnar_and_after_an_append():
    cols = columns()
    assert cols.counts() == {"out": 4, "in": 1}
    assert cols.columnar
    cols.append(TransferLine("in", D2, "900-041-49", "hazardous", 5, A))
    assert not cols.columnar
    assert len(cols) == 6
    assert cols.counts() == {"out": 4, "in": 2}
    cols.extend([TransferLine("out", D2, "900-041-49", "hazardous", 1, A)])
    assert cols.counts() == {"out": 5, "in": 2}


def test_summary_sums_per_direction_code_and_stream_at_the_first_row():
    s = columns().summary()
    got = {(t.direction, t.code, t.stream): (t.qty_kg, t.ref.row if t.ref else None) for t in s}
    # 900-041-49 out: 100 + 250 + 10 = 360 kg, first at row 3; HW01 40 kg at row 5; 转入 20 kg at row 3
    assert got == {("out", "900-041-49", "hazardous"): (360, 3), ("out", "841-001-01", "medical"): (40, 5),
                   ("in", "900-041-49", "hazardous"): (20, 3)}
    assert len(s) == 3
    assert sum(t.qty_kg for t in s) == sum(t.qty_kg for t in as_lines())  # a sum, nothing lost


def test_summary_of_lines_given_as_lines_is_the_lines_themselves():
    lines = as_lines()
    assert TransferColumns(_lines=list(lines)).summary() == lines


def test_insert_tuples_follow_the_transfer_entry_columns_both_ways():
    cols = columns()
    tuples = cols.insert_tuples(7)
    assert tuples[0] == (7, 3, "out", D1, "900-041-49", "hazardous", 100, A, "甲", "2025630100000001", None, "D10", "")
    assert tuples[-1] == (7, 3, "in", D1, "900-041-49", "hazardous", 20, B, "乙", None, None, None, "")
    assert cols.insert_tuples(7, iso_days=True)[1][3] == "2025-03-09"
    by_lines = TransferColumns(_lines=as_lines())
    assert by_lines.insert_tuples(7) == tuples
    assert by_lines.insert_tuples(7, iso_days=True) == cols.insert_tuples(7, iso_days=True)
    assert block_tuples(in_block(), 7) == tuples[-1:]


@pytest.mark.parametrize("fields, expected", [
    (("direction", "counterpart"), {("out", A), ("out", B), ("in", B)}),
    (("code",), {("900-041-49",), ("841-001-01",)}),
    (("direction", "stream", "counterpart", "code", "planned_method"),
     {("out", "hazardous", A, "900-041-49", "D10"), ("out", "medical", B, "841-001-01", None),
      ("out", "hazardous", B, "900-041-49", "R9"), ("in", "hazardous", B, "900-041-49", None)}),
])
def test_distinct_combinations_are_those_of_the_lines(fields, expected):
    assert columns().distinct(*fields) == expected
    assert TransferColumns(_lines=as_lines()).distinct(*fields) == expected


def test_first_refs_name_the_first_row_of_each_combination_in_one_direction():
    want = {(A, "900-041-49"): SourceRef(SHEET_OUT, 3), (B, "841-001-01"): SourceRef(SHEET_OUT, 5),
            (B, "900-041-49"): SourceRef(SHEET_OUT, 7)}
    assert columns().first_refs("out", "counterpart", "code") == want
    assert TransferColumns(_lines=as_lines()).first_refs("out", "counterpart", "code") == want
    assert columns().first_refs("in", "counterpart") == {(B,): SourceRef(SHEET_IN, 3)}


def _draft(transfers: list[TransferLine]) -> LedgerDraft:
    return LedgerDraft(A, "甲", "2025-03", transfers=transfers)


def test_counts_of_a_draft_with_columns_or_with_a_plain_list_agree():
    by_cols, by_list = _draft(columns()), _draft(as_lines())
    assert transfer_counts(by_cols) == transfer_counts(by_list) == {"out": 4, "in": 1}
    assert row_counts(by_cols) == {SHEET_STOCK: 0, SHEET_TREAT: 0, SHEET_OUT: 4, SHEET_IN: 1}
    assert row_counts(by_cols) == by_list.row_counts()


def test_summarised_keeps_a_plain_draft_and_sums_a_columnar_one():
    plain = _draft(as_lines())
    assert summarised(plain) is plain
    s = summarised(_draft(columns()))
    assert [(t.direction, t.code, t.qty_kg) for t in s.transfers] == [
        ("out", "900-041-49", 360), ("out", "841-001-01", 40), ("in", "900-041-49", 20)]
    assert (s.credit_code, s.month) == (A, "2025-03")
