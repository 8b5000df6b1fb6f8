"""``nofei report``: the annual report to a file, through the same code as the API."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli import Ctx, fail, pass_ctx
from nofei.access import SYSTEM
from nofei.catalogue import CITY
from nofei.errors import NofeiError


def register(cli: click.Group) -> None:
    @cli.command("report")
    @click.option("--year", type=int, required=True)
    @click.option("--region", default=CITY, show_default=True, help="district code or park code")
    @click.option("--format", "fmt", type=click.Choice(["xlsx", "html", "json"]), default="xlsx", show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
    @pass_ctx
    def report(ctx: Ctx, year: int, region: str, fmt: str, output: Path) -> None:
        """Write the annual 无废城市 report of a region (as admin) to FILE."""
        from api.resources.reports import annual_report, render

        try:
            data = annual_report(uow_factory=ctx.uow, actor=SYSTEM, year=year, region=region)
        except NofeiError as e:
            fail(e)
        body, _media, _name = render(data, fmt)
        output.write_bytes(body)
        click.echo(f"wrote {output} ({len(body)} bytes, {len(data['indicators'])} indicators, "
                   f"{len(data['anomalies'])} anomalies)")
