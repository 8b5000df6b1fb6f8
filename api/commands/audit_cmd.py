"""``nofei audit verify`` / ``nofei audit checkpoint``: check the audit chain from the server's machine
(exit 1 when broken), and print signed checkpoints that detect a cut-off tail later."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

import click

from api.cli import SYSTEM, Ctx, pass_ctx
from ledgers import audit_trail


def register(cli: click.Group) -> None:
    @cli.group()
    def audit() -> None:
        """Audit trail (审计日志)."""

    @audit.command("verify")
    @click.option("--json", "as_json", is_flag=True, help="print {ok, entries, broken_at, reason, checkpoints} as JSON")
    @click.option("--checkpoint", "checkpoints", multiple=True, metavar="SEQ:DIGEST:MAC",
                  help="a checkpoint printed by `nofei audit checkpoint` (repeatable): its entry must still be there")
    @click.option("--checkpoints-file", type=click.File("r"),
                  help="a file of checkpoints, one a line (`nofei audit checkpoint >> FILE`); # starts a comment")
    @pass_ctx
    def audit_verify(ctx: Ctx, as_json: bool, checkpoints: tuple[str, ...], checkpoints_file: TextIO | None) -> None:
        """Recompute the hash chain and the MACs; name the first broken link and exit 1 if there is one."""
        cps = list(checkpoints)
        if checkpoints_file is not None:
            cps += [ln.split("#", 1)[0].split()[-1] for ln in checkpoints_file if ln.split("#", 1)[0].strip()]
        with ctx.uow() as uow:
            try:
                res = audit_trail.verify_chain(uow=uow, actor=SYSTEM, checkpoints=cps)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--checkpoint") from e
        if as_json:
            click.echo(json.dumps(res))
        elif res["ok"]:
            extra = f", {res['checkpoints']} checkpoints hold" if res["checkpoints"] else ""
            click.echo(f"audit chain ok: {res['entries']} entries{extra}")
        else:
            click.echo(f"audit chain BROKEN at entry {res['broken_at']}: {res['reason']} "
                       f"({res['entries']} entries before it verify)")
        if not res["ok"]:
            sys.exit(1)

    @audit.command("checkpoint")
    @click.option("--json", "as_json", is_flag=True, help="print {seq, digest, mac, checkpoint} as JSON")
    @pass_ctx
    def audit_checkpoint(ctx: Ctx, as_json: bool) -> None:
        """Print the chain's head (seq, digest) and its MAC under the audit key: `SEQ:DIGEST:MAC`.

        Run it periodically (cron) and keep the lines away from the database (a log host, paper);
        `nofei audit verify --checkpoints-file` then detects entries deleted from the tail."""
        with ctx.uow() as uow:
            res = audit_trail.checkpoint(uow=uow, actor=SYSTEM)
        if as_json:
            click.echo(json.dumps(res))
        else:
            click.echo(f"{datetime.now(UTC).isoformat(timespec='seconds')} {res['checkpoint']}")
