"""``nofei import FILE…``: load monthly ledger workbooks through the same code path as the upload."""

from __future__ import annotations

import json
import mimetypes
import sys
from pathlib import Path

import click

from api.cli import SYSTEM, Ctx, pass_ctx
from nofei.domain.calendar import today_cst
from nofei.errors import NofeiError


def register(cli: click.Group) -> None:
    @cli.command("import")
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="validate only, store nothing")
    @click.option("--json", "as_json", is_flag=True, help="print receipts and errors as JSON lines")
    @pass_ctx
    def import_ledgers(ctx: Ctx, files: tuple[Path, ...], dry_run: bool, as_json: bool) -> None:
        """Import monthly ledger workbooks as admin; prints a receipt or every error per file and
        exits 1 when any file is rejected."""

        from api.uploads import import_workbook
        from imports import ReadLimits

        app = ctx.app()
        limits = ReadLimits.from_settings(dict(app.config))
        rejected = 0
        for path in files:
            data = path.read_bytes()
            try:
                rc = import_workbook(uow=ctx.uow(), actor=SYSTEM, data=data, filename=path.name,
                                     content_type=mimetypes.guess_type(path.name)[0] or "", limits=limits,
                                     today=today_cst(), dry_run=dry_run)
            except NofeiError as e:
                rejected += 1
                if as_json:
                    click.echo(json.dumps({"file": str(path), "code": e.code, "message": e.message,
                                           "errors": [p.to_dict() for p in e.problems]}, ensure_ascii=False))
                    continue
                click.echo(f"{path}: rejected [{e.code}] {e.message}", err=True)
                for p in e.problems:
                    where = " ".join(str(x) for x in (p.sheet, f"{p.column or ''}{p.row or ''}", p.header) if x)
                    click.echo(f"  - [{p.code}] {where}: {p.message}" + (f" (值 {p.value})" if p.value is not None else ""),
                               err=True)
                continue
            if as_json:
                click.echo(json.dumps({"file": str(path), **rc}, ensure_ascii=False, default=str))
                continue
            state = "duplicate of" if rc["duplicate"] else ("would be" if dry_run else "stored as")
            rows = ", ".join(f"{k} {v}" for k, v in rc["rows"].items())
            click.echo(f"{path}: {state} ledger {rc['id'] or '-'} unit {rc['unit']} {rc['month']} v{rc['version']} ({rows}); "
                       f"{len(rc['warnings'])} warnings")
            for w in rc["warnings"][:20]:
                click.echo(f"  ! [{w['code']}] {w.get('sheet') or ''} {w.get('column') or ''}{w.get('row') or ''} {w['message']}")
        if rejected:
            click.echo(f"{rejected} of {len(files)} files rejected", err=True)
            sys.exit(1)
