"""``nofei indicators --year Y [--region R] [--format table|json]``: the indicators of indicators.md §3 on the console."""

from __future__ import annotations

import json

import click

from api.cli import SYSTEM, Ctx, fail, pass_ctx
from nofei.catalogue import CITY
from nofei.errors import NofeiError
from reports import indicators as uc


def _fmt(v: object) -> str:
    return "—" if v is None else str(v)


def register(cli: click.Group) -> None:
    @cli.command("indicators")
    @click.option("--year", type=int, required=True)
    @click.option("--region", default=CITY, show_default=True, help="district code, 630100 = city, or park code")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    @pass_ctx
    def indicators(ctx: Ctx, year: int, region: str, fmt: str) -> None:
        """Compute the 无废城市 indicators of a year and region from the current ledgers."""
        try:
            with ctx.uow() as uow:
                res = uc.compute_indicators(uow=uow, actor=SYSTEM, year=year, region=region)
        except NofeiError as e:
            fail(e)
        if fmt == "json":
            click.echo(json.dumps(res, ensure_ascii=False, indent=2))
            return
        click.echo(f"{year} {region}")
        click.echo(f"{'key':<38} {'value':>12} {'unit':<7} {'numerator':>14} {'denominator':>14} {'target':>8} met"
                   "  scope")
        for i in res["indicators"]:
            met = {True: "yes", False: "no", None: ""}[i["meets_target"]]
            scope = "national ★" if i.get("national") else i.get("scope", "")
            click.echo(f"{i['key']:<38} {_fmt(i['value']):>12} {i['unit']:<7} {_fmt(i['numerator']):>14} "
                       f"{_fmt(i['denominator']):>14} {_fmt(i['target']):>8} {met:<3}  {scope}")
            if i["note"]:
                click.echo(f"{'':<4}note: {i['note']}")
