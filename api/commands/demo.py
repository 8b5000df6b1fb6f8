"""``nofei demo``: build (or reuse) a synthetic Xining in a SQLite database, then serve it.

The first command a new user runs (README, ``make demo``): within a minute they must see a
populated nofei in the browser, so the default city is sized to build in well under that.
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import click

from api.cli import Ctx, fail, pass_ctx
from nofei.access import SYSTEM
from nofei.catalogue import CITY
from nofei.errors import NofeiError

DEFAULT_DB = "sqlite:///nofei-demo.db"
DEFAULT_UNITS = 250  # ~30 s through the import path on 2 cores (bench/b5_demo.py): under a minute to serving; --units for more
SHOWCASE_DISTRICT = "630105"  # 城北区: two parks, the collector, the carriers


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and ":memory:" not in url and len(url) > len("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def _remove_sqlite(url: str) -> None:
    path = _sqlite_path(url)
    if path is None:
        raise click.UsageError("--fresh only deletes a SQLite file; drop the database yourself")
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            p.unlink()


def register(cli: click.Group) -> None:
    @cli.command("demo")
    @click.option("--seed", default=1, show_default=True, type=int, help="same seed → same city")
    @click.option("--units", "size", default=DEFAULT_UNITS, show_default=True, type=click.IntRange(30, 200_000),
                  help="about how many units (facilities included)")
    @click.option("--year", default=None, type=int, help="the year of the ledgers [default: last year]")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option("--threads", default=8, show_default=True, type=int)
    @click.option("--jobs", default=None, type=int,
                  help="worker processes writing workbooks, 0 = none [default: CPUs − 1, 1 to 4]")
    @click.option("--fast", is_flag=True, help="store ledgers directly (no workbooks): for benchmark-sized cities")
    @click.option("--fresh", is_flag=True, help="delete the SQLite database first and build anew")
    @click.option("--months", default=12, type=click.IntRange(1, 12), hidden=True, help="tests: fewer months")
    @click.option("--serve/--no-serve", default=True, show_default=True, help="serve after building")
    @pass_ctx
    def demo(ctx: Ctx, seed: int, size: int, year: int | None, host: str, port: int, threads: int,
             jobs: int | None, fast: bool, fresh: bool, months: int, serve: bool) -> None:
        """Build a demo Xining (units, 12 months of ledgers, manifests) and serve it with tokens for each role.

        The database defaults to ./nofei-demo.db (``--database-url`` / NOFEI_DATABASE_URL to change it).
        When it already holds the same demo (seed, units, year), nothing is rebuilt."""
        from api.demo import city as city_mod
        from api.demo import load

        today = date.today()
        year = year if year is not None else today.year - 1
        if year >= today.year:
            raise click.UsageError(f"--year must be a past year (ledgers of future months are refused): {year}")
        if ctx.database_url is None:
            ctx.database_url = DEFAULT_DB
        if fresh:
            _remove_sqlite(ctx.database_url)
        t0 = time.perf_counter()
        app = ctx.app()
        wanted = {"seed": seed, "units": size, "year": year, "generator": load.GENERATOR_VERSION, "months": months}
        with ctx.uow() as uow:
            have = load.marker(uow)
            begun = load.marker(uow, load.START_ACTION)
            occupied = load.holds_units(uow)
        if have is None and begun is not None and _sqlite_path(ctx.database_url) is not None:
            click.echo("nofei demo: an earlier build of this database was interrupted; starting again")
            app.extensions["nofei.engine"].dispose()
            _remove_sqlite(ctx.database_url)
            ctx = Ctx(ctx.database_url)
            app = ctx.app()
            occupied = False
        if have is not None and all(have.get(k) == v for k, v in wanted.items()):
            click.echo(f"nofei demo: reusing the demo in {ctx.database_url} "
                       f"(seed {seed}, {size} units, {year}; --fresh to rebuild)")
        elif occupied:
            what = (f"another demo (seed {have.get('seed')}, {have.get('units')} units, {have.get('year')})"
                    if have else "other data")
            raise click.UsageError(f"{ctx.database_url} holds {what}; use --fresh to rebuild it "
                                   "or --database-url for another database")
        else:
            click.echo(f"nofei demo: building 西宁 (seed {seed}, about {size} units, {year}) in {ctx.database_url}")
            plan = city_mod.plan_city(seed=seed, units=size, year=year, catalogue=app.extensions["nofei.catalogue"],
                                      months=months)
            click.echo(f"  planned {len(plan.units)} units, {len(plan.drafts)} monthly ledgers, "
                       f"{len(plan.manifests)} manifests ({time.perf_counter() - t0:.1f} s)")
            if size > 500 and not fast:
                click.echo("  (every ledger goes through a workbook: about 20 ms of CPU each; --fast stores them "
                           "directly for benchmark-sized cities)")
            n_jobs = jobs if jobs is not None else max(1, min(4, (os.cpu_count() or 1) - 1))
            try:
                rep = load.build(ctx.uow, plan, jobs=n_jobs, fast=fast, echo=click.echo, today=today)
            except NofeiError as e:
                fail(e)
            click.echo(f"  built in {rep.seconds['total']:.1f} s")
        with ctx.uow() as uow:
            have = load.marker(uow) or {}
        tokens = _tokens(ctx, have.get("enterprise"))
        base = f"http://{host}:{port}"
        click.echo(f"\nnofei demo ready in {time.perf_counter() - t0:.1f} s")
        click.echo(f"  sign in   {base}/login  (paste one of the tokens below)")
        click.echo(f"  API docs  {base}/api/docs")
        click.echo("tokens (for the pages, or as 'Authorization: Bearer <token>'):")
        for label, tok in tokens:
            click.echo(f"  {label}: {tok}")
        click.echo(f'try: curl -H "Authorization: Bearer {tokens[0][1]}" {base}/api/v1/units')
        if serve:
            import waitress

            click.echo(f"nofei serving on {base}/  (Ctrl-C to stop)")
            waitress.serve(app, host=host, port=port, threads=threads, ident="nofei",
                           max_request_body_size=app.config["MAX_CONTENT_LENGTH"])

    def _tokens(ctx: Ctx, enterprise: str | None) -> list[tuple[str, str]]:
        from ledgers import registry
        from nofei.storage import bulk

        out: list[tuple[str, str]] = []
        with ctx.uow() as uow:
            cat = uow.catalogue
            if enterprise is None:
                enterprise = bulk.first_unit_code(uow.session)
            name = ""
            if enterprise:
                from nofei.storage.repo import unit_row

                name = unit_row(uow.session, enterprise).name
        asks: list[tuple[str, str | None, list[str] | None, str]]
        asks = [("admin", None, None, "admin"),
                ("regulator", CITY, None, f"regulator {cat.region_name(CITY)} ({CITY})"),
                ("regulator", SHOWCASE_DISTRICT, None,
                 f"regulator {cat.region_name(SHOWCASE_DISTRICT)} ({SHOWCASE_DISTRICT})")]
        if enterprise:
            asks.append(("enterprise", None, [enterprise], f"enterprise {name} ({enterprise})"))
        for role, district, units, label in asks:
            with ctx.uow() as uow:
                t = registry.create_token(uow=uow, actor=SYSTEM, role=role, district=district, units=units,
                                          name=f"demo {label}")
            out.append((label, t.token))
        return out
