"""Issue 15: dialect tuning lives in nofei.storage. import-linter keeps sqlalchemy out of api, ledgers, imports
and reports (pyproject); this keeps dialect *branches* out too, which no import shows: no ``.dialect``
attribute, no ``is_postgres`` call and no ``"postgresql"`` / ``"sqlite"`` literal outside nofei/storage (the
health check may name the database it reports)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {("api/resources/health.py", "dialect")}  # /health reports engine.dialect.name; it branches on nothing


def _offences(path: Path) -> list[str]:
    return _offences_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())


def _offences_in(source: str, rel: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "dialect" and (rel, "dialect") not in ALLOWED:
            out.append(f"{rel}:{node.lineno} .dialect")
        if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) == "is_postgres":
            out.append(f"{rel}:{node.lineno} is_postgres")
        if isinstance(node, ast.Constant) and node.value in ("postgresql", "sqlite"):
            out.append(f"{rel}:{node.lineno} {node.value!r}")
    return out


def test_no_dialect_branch_outside_storage():
    files = [p for pkg in ("api", "ledgers", "imports", "reports") for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 50  # the tree is where the test thinks it is
    assert [o for p in files for o in _offences(p)] == []


def test_the_check_sees_a_branch():
    src = 'def f(s):\n    return s.get_bind().dialect.name == "postgresql" or is_postgres(s)\n'
    assert len(_offences_in(src, "ledgers/probe.py")) == 3
