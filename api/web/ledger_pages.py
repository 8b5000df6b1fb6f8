"""The enterprise's pages: download the template, upload a month, see every error (table and annotated
workbook), see the receipt, the versions of each month, and download an original file again."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from flask import Response, abort, current_app, render_template, request, session, url_for

from api.web import actor, bp, require_roles, uow
from imports import XLSX_MIME
from ledgers import ledger as ledger_uc
from nofei.errors import LedgerRejected, NofeiError, TooLarge, UnsupportedFile


class AnnotatedCache:
    """Annotated error workbooks kept briefly in memory for the clerk who uploaded them.

    The browser cannot re-send a file, so the annotated copy is made at upload time and fetched by a
    random key bound to the session; bounded in count and age so memory stays small."""

    def __init__(self, size: int = 32, ttl: float = 1800) -> None:
        self._d: OrderedDict[str, tuple[float, str, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.size, self.ttl = size, ttl

    def put(self, owner: str, data: bytes, filename: str) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._d[key] = (time.monotonic(), owner, data, filename)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return key

    def get(self, owner: str, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._d.get(key)
        if item is None or item[1] != owner or time.monotonic() - item[0] > self.ttl:
            return None
        return item[2], item[3]


def _cache() -> AnnotatedCache:
    c = current_app.extensions.get("nofei.web.annotated")
    if c is None:
        c = current_app.extensions["nofei.web.annotated"] = AnnotatedCache()
    return c


def _owner() -> str:
    sid = session.get("owner")
    if not sid:
        sid = session["owner"] = secrets.token_urlsafe(16)
    return sid


def _my_units() -> list[dict[str, Any]]:
    from ledgers import registry

    with uow() as u:
        units, _ = registry.list_units(uow=u, actor=actor(), per_page=200)
    return units


def _ledger_list(unit: str | None, year: int | None) -> tuple[list[dict[str, Any]], int, bool]:
    with uow() as u:
        items, total = ledger_uc.list_ledgers(uow=u, actor=actor(), unit=unit, year=year, page=1, per_page=200)
    return items, total, True


@bp.route("/ledgers")
@require_roles("enterprise", "admin")
def ledgers() -> Any:
    units = _my_units()
    unit = request.args.get("unit") or None
    year = request.args.get("year", type=int)
    items, total, available = _ledger_list(unit, year)
    return render_template("ledgers.html", units=units, items=items, total=total, available=available,
                           unit=unit, year=year, result=None)


@bp.route("/ledgers/template")
@require_roles("enterprise", "admin")
def ledger_template() -> Any:
    """The blank template; pre-filled for the enterprise's unit (the one chosen, or its only one)."""
    from imports import write_template

    code = request.args.get("unit") or (sorted(actor().units)[0] if actor().units else None)
    name = None
    if code:
        from ledgers import registry

        with uow() as u:
            name = registry.get_unit(uow=u, actor=actor(), credit_code=code)["name"]
    cat = current_app.extensions["nofei.catalogue"]
    body = write_template(code, name, cat)
    resp = Response(body, mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = f'attachment; filename="ledger-template{"-" + code if code else ""}.xlsx"'
    return resp


def _rejected(e: LedgerRejected, data: bytes, filename: str, limits: Any) -> dict[str, Any]:
    """Every error as a table and, kept briefly for this clerk, the workbook annotated where they are."""
    from imports import gate

    key = None
    warnings = list(getattr(e, "warnings", None) or [])
    try:
        key = _cache().put(_owner(), gate.annotate(data, e.problems, warnings, limits),
                           f"标注错误-{filename.rsplit('.', 1)[0]}.xlsx")
    except Exception:  # noqa: BLE001 - the table is the answer; the annotated copy is a convenience
        current_app.logger.warning("could not annotate workbook", exc_info=True)
    return {"kind": "rejected", "message": e.message, "problems": [p.to_dict() for p in e.problems],
            "warnings": [p.to_dict() for p in warnings],
            "annotated": url_for("web.ledger_annotated", key=key) if key else None, "filename": filename}


def _failed(e: NofeiError) -> tuple[dict[str, Any], int]:
    """A file refused before or while it is read (too large, not a spreadsheet) or another refusal."""
    from api.errors import status_for

    status = 413 if isinstance(e, TooLarge) else 415 if isinstance(e, UnsupportedFile) else status_for(e)
    return {"kind": "error", "message": e.message, "problems": [p.to_dict() for p in e.problems]}, status


@bp.route("/ledgers/upload", methods=["POST"])
@require_roles("enterprise", "admin")
def ledger_upload() -> Any:
    """Read the workbook and submit it: a receipt, or every error as a table and an annotated workbook."""
    from api.uploads import import_workbook
    from imports import ReadLimits

    f = request.files.get("file")
    items, total, available = _ledger_list(None, None)
    ctx = {"units": _my_units(), "items": items, "total": total, "available": available, "unit": None, "year": None}
    if f is None or not f.filename:
        return render_template("ledgers.html", result={"kind": "error", "message": "请选择要上传的台账文件。",
                                                        "problems": []}, **ctx), 400
    data, filename = f.read(), f.filename
    dry_run = request.form.get("dry_run") == "1"
    limits = ReadLimits.from_settings(current_app.config)
    try:
        receipt = import_workbook(uow=uow(), actor=actor(), data=data, filename=filename,
                                  content_type=f.mimetype or "", limits=limits, dry_run=dry_run)
    except LedgerRejected as e:
        return render_template("ledgers.html", result=_rejected(e, data, filename, limits), **ctx), 422
    except NofeiError as e:
        result, status = _failed(e)
        return render_template("ledgers.html", result=result, **ctx), status
    if dry_run:
        return render_template("ledgers.html", result={"kind": "checked", "filename": filename, "receipt": receipt},
                               **ctx), 200
    ctx["items"], ctx["total"], _ = _ledger_list(None, None)
    result = {"kind": "receipt", "receipt": receipt, "filename": filename}
    return render_template("ledgers.html", result=result, **ctx), 200 if receipt.get("duplicate") else 201


@bp.route("/ledgers/annotated/<key>")
@require_roles("enterprise", "admin")
def ledger_annotated(key: str) -> Any:
    item = _cache().get(_owner(), key)
    if item is None:
        abort(404)
    data, name = item
    from api.downloads import content_disposition

    resp = Response(data, mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = content_disposition(name, "annotated.xlsx")
    return resp


@bp.route("/ledgers/<int:ledger_id>")
@require_roles("enterprise", "admin", "regulator")
def ledger(ledger_id: int) -> Any:
    """One version: its receipt (rows, totals, warnings), its rows, and the other versions of its month."""
    with uow() as u:
        led = ledger_uc.get_ledger(uow=u, actor=actor(), ledger_id=ledger_id)
        versions = ledger_uc.versions(uow=u, actor=actor(), unit=led["unit"], month=led["month"])
    return render_template("ledger.html", led=led, versions=versions)


@bp.route("/ledgers/<int:ledger_id>/file")
def ledger_file(ledger_id: int) -> Any:
    """The original uploaded file of a version, byte for byte."""
    from api.downloads import original_file

    with uow() as u:
        content, name, _media = ledger_uc.ledger_file(uow=u, actor=actor(), ledger_id=ledger_id)
    return original_file(content, name, ledger_id)  # type and extension from the bytes, not the uploader
