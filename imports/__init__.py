"""Workbook → ``LedgerDraft``: file-safety limits, sheet and header mapping, cell coercion, problems
pinned to cells; the template and the annotated error workbook. Imports only ``nofei``."""
