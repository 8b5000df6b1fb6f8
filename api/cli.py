"""The ``nofei`` command line. Every command drives the same use cases as the API.

Running a command on the server's machine is an admin act: commands run as the ``system`` actor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask

from api.deps import app_uow
from nofei.access import SYSTEM
from nofei.errors import NofeiError
from nofei.storage.uow import UnitOfWork


class Ctx:
    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._app: Flask | None = None

    def app(self, **extra: Any) -> Flask:
        if self._app is None:
            from api.app import create_app

            settings: dict[str, Any] = dict(extra)
            if self.database_url:
                settings["DATABASE_URL"] = self.database_url
            self._app = create_app(settings)
        return self._app

    def uow(self) -> UnitOfWork:
        app = self.app()
        return app_uow(app, "cli")


pass_ctx = click.make_pass_decorator(Ctx)


def fail(exc: NofeiError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    for p in exc.problems:
        where = " ".join(str(x) for x in (p.field, p.sheet, p.row, p.column) if x)
        click.echo(f"  - [{p.code}] {where} {p.message}", err=True)
    sys.exit(2)


@click.group()
@click.option("--database-url", envvar="NOFEI_DATABASE_URL", default=None, help="defaults to sqlite:///nofei.db")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """nofei (无废): the material-flow ledger of a zero-waste city."""
    ctx.obj = Ctx(database_url)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@pass_ctx
def serve(ctx: Ctx, host: str, port: int, threads: int) -> None:
    """Serve with waitress (a production WSGI server), migrating the database first."""
    import waitress

    from imports import ReadLimits, gate

    app = ctx.app()
    gate.warm(ReadLimits.from_settings(dict(app.config)))  # the parse workers start while waitress does
    click.echo(f"nofei serving on http://{host}:{port}/  (database: {app.extensions['nofei.engine'].url.render_as_string()})")
    # waitress's own limit sits well above the app's, so an oversized upload is answered by the app (413 in
    # the JSON envelope, decided on Content-Length; a chunked body is cut off at the app's limit), not by
    # waitress's text/plain 413; waitress spools bodies past 512 KB to a temporary file, not memory
    waitress.serve(app, host=host, port=port, threads=threads, ident="nofei",
                   max_request_body_size=max(int(app.config["MAX_REQUEST_BODY_BYTES"]),
                                             app.config["MAX_CONTENT_LENGTH"] + 1))


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Ctx) -> None:
    """Apply all Alembic migrations."""
    from nofei.storage.migrate import current_heads

    app = ctx.app(AUTO_MIGRATE=True)
    click.echo("database at " + ", ".join(sorted(current_heads(app.extensions["nofei.engine"]))))


@cli.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(["admin", "regulator", "enterprise"]), required=True)
@click.option("--unit", "units", multiple=True, help="credit code (enterprise); repeatable")
@click.option("--district", default=None, help="district code (regulator); 630100 = the city")
@click.option("--name", default="", help="who holds it")
@pass_ctx
def token_create(ctx: Ctx, role: str, units: tuple[str, ...], district: str | None, name: str) -> None:
    """Create a token; it is printed alone on the last line."""
    from ledgers import registry

    try:
        with ctx.uow() as uow:
            t = registry.create_token(uow=uow, actor=SYSTEM, role=role, units=list(units), district=district, name=name)
    except NofeiError as e:
        fail(e)
    click.echo(f"token {t.id} ({t.role}{' ' + t.district if t.district else ''}{' ' + ','.join(t.units) if t.units else ''})")
    click.echo(t.token)


@token.command("list")
@pass_ctx
def token_list(ctx: Ctx) -> None:
    """List tokens (never their secrets)."""
    from ledgers import registry

    with ctx.uow() as uow:
        for t in registry.list_tokens(uow=uow, actor=SYSTEM):
            state = "revoked" if t["revoked_at"] else "active"
            click.echo(f"{t['id']}\t{t['role']}\t{t['district'] or ''}\t{','.join(t['units'])}\t{t['name']}\t{t['prefix']}…\t{state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
def token_revoke(ctx: Ctx, token_id: int) -> None:
    """Revoke a token by id."""
    from ledgers import registry

    try:
        with ctx.uow() as uow:
            registry.revoke_token(uow=uow, actor=SYSTEM, token_id=token_id)
    except NofeiError as e:
        fail(e)
    click.echo(f"revoked {token_id}")


@cli.group()
def units() -> None:
    """Units registry."""


def read_units_file(path: Path, settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A JSON list of unit objects, or a workbook (``imports.units_reader``: first sheet with columns
    credit_code, name, district, park, roles, and optionally unit_type and small_clinic) read through the
    parse gate like every upload."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise click.BadParameter("the JSON file must hold a list of units")
        return data
    from api.config import load_settings
    from imports import ReadLimits, gate

    return gate.read_units(path.read_bytes(), ReadLimits.from_settings(settings or load_settings()))


@units.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def units_import(ctx: Ctx, file: Path) -> None:
    """Register or update units in bulk from a JSON list or an xlsx (all or nothing)."""
    from ledgers import registry

    try:
        items = read_units_file(file)
        with ctx.uow() as uow:
            res = registry.import_units(uow=uow, actor=SYSTEM, items=items)
    except NofeiError as e:
        fail(e)
    click.echo(f"created {res['created']}, updated {res['updated']}")


@cli.group()
def catalogue() -> None:
    """Code catalogue."""


@catalogue.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--edition", type=int, default=None,
              help="the file is the whole 名录 of this edition (e.g. 2025, in force from 1 January 2025); "
                   "default: the file's edition column, else the codes are additions to every edition")
@pass_ctx
def catalogue_load(ctx: Ctx, file: Path, edition: int | None) -> None:
    """Load waste codes from a CSV with columns code, name_zh[, category, hazard, edition].

    A whole later edition of the 名录 (``--edition`` or one value in the ``edition`` column) replaces the
    hazardous codes of earlier editions for the years from its own on: the year of a ledger decides which
    edition checks it."""
    import csv

    from ledgers import registry
    from nofei.catalogue import parse_code_list

    rows = list(csv.DictReader(file.read_text(encoding="utf-8-sig").splitlines()))
    eds = {(r.get("edition") or "").strip() for r in rows} - {""}
    if edition is None and len(eds) > 1:
        click.echo(f"error: the edition column holds several editions ({', '.join(sorted(eds))}); load one at a time",
                   err=True)
        sys.exit(2)
    if edition is None and eds:
        ed_text = next(iter(eds))
        if not ed_text.isdigit():
            click.echo(f"error: bad edition {ed_text!r}", err=True)
            sys.exit(2)
        edition = int(ed_text)
    if edition is not None and not 2000 <= edition <= 2100:
        click.echo(f"error: bad edition {edition}", err=True)
        sys.exit(2)
    with ctx.uow() as uow:
        codes, bad = parse_code_list(rows, uow.catalogue, edition=edition)
    for b in bad:
        click.echo(f"skipped {b}", err=True)
    with ctx.uow() as uow:
        n = registry.load_catalogue_codes(uow=uow, actor=SYSTEM, codes=codes, edition=edition)
    hw = sum(1 for c in codes if c.stream in ("hazardous", "medical"))
    if edition is not None:
        click.echo(f"loaded {n} codes (edition {edition}: {hw} hazardous/medical codes, applied to ledgers of "
                   f"{edition} and later)")
    else:
        click.echo(f"loaded {n} codes")
    if bad:
        sys.exit(1)


def _load_command_modules() -> None:
    """The commands defined in ``api.commands`` (they import this module, so they are imported here, late)."""
    from api.commands import audit_cmd, declarations_cmd, demo, import_cmd, indicators_cmd, report_cmd

    for mod in (audit_cmd, declarations_cmd, demo, import_cmd, indicators_cmd, report_cmd):
        mod.register(cli)


_loaded = False


def main() -> None:
    global _loaded
    if not _loaded:
        _load_command_modules()
        _loaded = True
    cli(prog_name="nofei")


if __name__ == "__main__":
    main()
