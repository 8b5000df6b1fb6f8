"""``nofei audit verify``: check the audit hash chain from the server's machine (exit 1 when broken)."""

from __future__ import annotations

import json
import sys

import click

from api.cli import SYSTEM, Ctx, pass_ctx
from ledgers import audit_trail


def register(cli: click.Group) -> None:
    @cli.group()
    def audit() -> None:
        """Audit trail (审计日志)."""

    @audit.command("verify")
    @click.option("--json", "as_json", is_flag=True, help="print {ok, entries, broken_at, reason} as JSON")
    @pass_ctx
    def audit_verify(ctx: Ctx, as_json: bool) -> None:
        """Recompute the hash chain; name the first broken link and exit 1 if there is one."""
        with ctx.uow() as uow:
            res = audit_trail.verify_chain(uow=uow, actor=SYSTEM)
        if as_json:
            click.echo(json.dumps(res))
        elif res["ok"]:
            click.echo(f"audit chain ok: {res['entries']} entries")
        else:
            click.echo(f"audit chain BROKEN at entry {res['broken_at']}: {res['reason']} "
                       f"({res['entries']} entries before it verify)")
        if not res["ok"]:
            sys.exit(1)
