"""Pure domain values: units, ledgers, manifests. No database, no web, no Excel."""
