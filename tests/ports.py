"""Ports for the tests that start a real ``nofei serve``: ten per purpose and xdist worker, placed by the run.

Two suites may run at once on one machine (a developer's SQLite and PostgreSQL runs, or CI beside them), and
two xdist workers at once in one suite: shared fixed ports made a client talk to another run's or worker's
server. Each run (xdist's shared run id, else the process id) gets its own window of 120 ports in 20000–29599;
in it, each purpose its 40 and each of up to four workers its 10.
"""

from __future__ import annotations

import os
import zlib

_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
_BASE = 20000 + (zlib.crc32(_RUN.encode()) % 80) * 120
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def block(purpose: int) -> range:
    """This worker's ten ports for ``purpose`` 0 (hostile corpus), 1 (hostile text) or 2 (hardening)."""
    n = int(_WORKER[2:]) % 4 if _WORKER[2:].isdigit() else 0
    start = _BASE + purpose * 40 + n * 10
    return range(start, start + 10)
