"""nofei (无废): the material-flow ledger of a zero-waste city.

The core package: domain values, the catalogue, the flow graph, indicators and storage.
It knows no Flask, no Excel and no environment variables (see ``shared/design/architecture.md``).
"""

__version__ = "0.1.0"
