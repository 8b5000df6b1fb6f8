"""Workbook → ``LedgerDraft``: file-safety limits, sheet and header mapping, cell coercion, problems
pinned to cells; the template and the annotated error workbook. Imports only ``nofei``."""

from imports.reader import read_monthly_ledger
from imports.safety import ReadLimits
from imports.writer import XLSX_MIME, annotate_workbook, write_ledger_workbook, write_template

__all__ = ["XLSX_MIME", "ReadLimits", "annotate_workbook", "read_monthly_ledger", "write_ledger_workbook",
           "write_template"]
