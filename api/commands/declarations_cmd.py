"""``nofei declarations``: a unit's HJ 1259 declaration (C.1/C.2/C.3) to a file, through the API's code."""

from __future__ import annotations

import json
from pathlib import Path

import click

from api.cli import Ctx, fail, pass_ctx
from nofei.access import SYSTEM
from nofei.errors import NofeiError


def register(cli: click.Group) -> None:
    @cli.command("declarations")
    @click.option("--unit", "unit", required=True, help="the unit's credit code")
    @click.option("--period", required=True, help="2025-03 (C.1), 2025-Q1 (C.2) or 2025 (C.3)")
    @click.option("--format", "fmt", type=click.Choice(["xlsx", "json"]), default="xlsx", show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
    @pass_ctx
    def declarations(ctx: Ctx, unit: str, period: str, fmt: str, output: Path) -> None:
        """Write a unit's declaration table for a period (as admin) to FILE."""
        from api.resources.declarations import declaration

        try:
            d = declaration(uow_factory=ctx.uow, actor=SYSTEM, code=unit, period_text=period)
        except NofeiError as e:
            fail(e)
        if fmt == "xlsx":
            from reports.declarations_xlsx import write_declaration_xlsx

            body = write_declaration_xlsx(d)
        else:
            body = json.dumps(d, ensure_ascii=False, indent=1, default=str).encode("utf-8")
        output.write_bytes(body)
        gaps = sum(len(r["gaps"]) for r in d["rows"])
        click.echo(f"wrote {output} ({d['table']} {d['period']}, {len(d['rows'])} wastes, {gaps} gaps, "
                   f"missing months: {', '.join(d['missing_months']) or 'none'})")
