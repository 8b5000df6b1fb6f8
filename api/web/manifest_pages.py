"""The three parties' manifest pages (issue 16): the producer writes, saves and submits a 联单, the carrier ships
it, the receiver receives or refuses it (and a refused load is received back by its shipper); any party prints it.

Each page calls the same use case as the API (``ledgers.manifests``) with the signed-in Actor, so the API's
rules (who takes which step, the time rules, visibility) hold on the pages too. No script: searching for a
receiver is a GET form, adding lines is a GET link, every step is a POST form with the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from api.web import actor, bp, require_roles, uow
from ledgers.manifests import (
    ManifestFilter,
    NewManifest,
    Receipt,
    Rejection,
    Shipment,
    drafts,
    lifecycle,
    queries,
)
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import CST, today_cst
from nofei.errors import InputRejected, NofeiError

MAX_LINES = 20
PARTY_TITLES = {"shipper": "我移出的联单", "carrier": "待我承运的联单", "receiver": "发往我单位的联单"}


def _problems(e: NofeiError) -> list[dict[str, Any]]:
    return [p.to_dict() for p in e.problems] or [{"message": e.message}]


def code_info(code: str | None) -> dict[str, Any] | None:
    """Name, category and 危险特性 of a waste code, shown beside it on the form and the printed 联单."""
    if not code:
        return None
    with uow() as u:
        cat = u.catalogue
    chk = cat.classify(code)
    wc = cat.codes.get(chk.code or "") if not chk.error else None
    if wc is None:
        return {"code": code, "known": False}
    cat_name = cat.hw_categories.get(wc.category or "", ("", ""))[0]
    return {"code": wc.code, "known": True, "name": wc.name_zh, "category": wc.category, "category_name": cat_name,
            "hazard": wc.hazard, "stream": wc.stream}


def _hazardous_codes() -> list[Any]:
    with uow() as u:
        cat = u.catalogue
    return cat.waste_codes("hazardous") + cat.waste_codes("medical")


def _methods() -> list[Any]:
    with uow() as u:
        return u.catalogue.method_list()


def _my_units() -> list[dict[str, Any]]:
    from ledgers import registry

    with uow() as u:
        units, _ = registry.list_units(uow=u, actor=actor(), per_page=200)
    return units


def _form_lines(form: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(MAX_LINES):
        ln = {k: (form.get(f"lines-{i}-{k}") or "").strip() for k in
              ("waste_code", "quantity_t", "packaging", "container_count", "planned_method")}
        if any(ln.values()):
            out.append(ln)
    return out


def _manifest_data(form: Any) -> dict[str, Any]:
    lines = []
    for ln in _form_lines(form):
        lines.append({"waste_code": ln["waste_code"], "quantity_t": ln["quantity_t"] or "0",
                      "packaging": ln["packaging"] or None, "container_count": ln["container_count"] or None,
                      "planned_method": ln["planned_method"] or None})
    return {"shipper": form.get("shipper") or None, "receiver": (form.get("receiver") or "").strip(),
            "carrier": form.get("carrier") or None, "planned_date": (form.get("planned_date") or "").strip(),
            "lines": lines}


def _from_manifest(m: dict[str, Any]) -> dict[str, Any]:
    """A manifest's fields as the form's values ("复制上一份联单": same receiver, carrier, codes, packaging)."""
    return {"shipper": m["shipper"]["credit_code"], "receiver": m["receiver"]["credit_code"],
            "carrier": (m.get("carrier") or {}).get("credit_code"), "planned_date": today_cst().isoformat(),
            "lines": [{"waste_code": ln["waste_code"], "quantity_t": _t(ln["quantity_t"]),
                       "packaging": ln.get("packaging") or "", "container_count": ln.get("container_count") or "",
                       "planned_method": ln.get("planned_method") or ""} for ln in m.get("lines") or []]}


def _t(v: Any) -> str:
    if v is None or v == "":
        return ""
    s = f"{float(v):.3f}".rstrip("0").rstrip(".")
    return s or "0"


def _carriers() -> list[dict[str, Any]]:
    with uow() as u:
        return [c.as_dict() for c in queries.carriers(uow=u)]


def _post_new(draft_id: int | None) -> tuple[Any, dict[str, Any], list[dict[str, Any]], int]:
    """保存草稿 or 提交联单: (a redirect when done, the form's values, problems, status)."""
    values = _manifest_data(request.form)
    action = request.form.get("action") or "submit"
    form = {**values, "lines": _form_lines(request.form)}
    try:
        with uow() as u:
            if action == "save":
                d = drafts.save_draft(uow=u, actor=actor(), data=values, draft_id=draft_id)
                return redirect(url_for("web.manifest_new", draft=d.id, saved=1)), form, [], 200
            cmd = NewManifest.from_mapping(values)
            if draft_id:
                m = drafts.submit_draft(uow=u, actor=actor(), draft_id=draft_id, cmd=cmd)
            else:
                m = lifecycle.create(uow=u, actor=actor(), cmd=cmd)
        return redirect(url_for("web.manifest", number=m.number, done="submitted")), form, [], 200
    except InputRejected as e:
        return None, form, _problems(e), 422
    except NofeiError as e:
        from api.errors import status_for

        return None, form, _problems(e), status_for(e)


def _start_form(draft_id: int | None) -> tuple[dict[str, Any], str | None]:
    """The form on a GET: a saved draft, a copy of the last manifest ("复制上一份联单"), or a blank one."""
    if draft_id:
        with uow() as u:
            form = drafts.get_draft(uow=u, actor=actor(), draft_id=draft_id).as_dict()
        return form, ("草稿已保存（尚未提交，未分配联单编号）。" if request.args.get("saved") else None)
    if request.args.get("copy"):
        with uow() as u:
            last = queries.last_manifest(uow=u, actor=actor(), shipper=request.args.get("shipper") or None,
                                         receiver=request.args.get("receiver") or None)
        if last is None:
            return {"lines": []}, "还没有可复制的联单。"
        return _from_manifest(last.as_dict()), f"已复制联单 {last.number}，请核对数量和日期后提交。"
    return {"lines": [], "planned_date": today_cst().isoformat(), "receiver": request.args.get("receiver") or ""}, None


def _form_rows(form: dict[str, Any]) -> tuple[list[dict[str, Any]], str, int]:
    """The form's line rows (at least one blank to add), the waste code the receiver search uses (the GET's, or
    the first line's) and how many rows are shown."""
    lines = list(form.get("lines") or [])
    code = (request.args.get("code") or "").strip() or (lines[0].get("waste_code") if lines else "") or ""
    if code and not lines:
        lines = [{"waste_code": code}]
    n = max(len(lines) + 1, min(request.args.get("n", 3, type=int), MAX_LINES), 1)
    lines = (lines + [{} for _ in range(n)])[:n]
    for ln in lines:
        ln["info"] = code_info(ln.get("waste_code"))
    return lines, code, n


def _receivers(code: str, q: str, chosen: str) -> list[dict[str, Any]]:
    """Receivers whose permit covers ``code`` today (by ``q``), with the one already chosen first if it is not
    among them."""
    with uow() as u:
        found = queries.receivers_for(uow=u, code=code or None, q=q or None, on=today_cst())
        if chosen and chosen not in {r.credit_code for r in found}:
            found = queries.receivers_for(uow=u, code=None, q=chosen) + found
    return [r.as_dict() for r in found]


@bp.route("/manifests/new", methods=["GET", "POST"])
@require_roles("enterprise", "admin")
def manifest_new() -> Any:
    """Write a 联单: receiver among registered units whose permit covers the code (a GET search), carrier,
    planned date, lines; 保存草稿 keeps it without a number, 提交联单 numbers and submits it."""
    problems: list[dict[str, Any]] = []
    notice = None
    status = 200
    draft_id = request.values.get("draft", type=int)
    if request.method == "POST":
        done, form, problems, status = _post_new(draft_id)
        if done is not None:
            return done
    else:
        form, notice = _start_form(draft_id)
    lines, code, n = _form_rows(form)
    q = (request.args.get("q") or "").strip()
    receivers = _receivers(code, q, str(form.get("receiver") or ""))
    return render_template("manifest_new.html", form=form, lines=lines, receivers=receivers, code=code, q=q,
                           carriers=_carriers(), units=_my_units(), codes=_hazardous_codes(), methods=_methods(),
                           problems=problems, notice=notice, draft_id=draft_id, more=min(n + 2, MAX_LINES)), status


@bp.route("/manifests/drafts/<int:draft_id>/delete", methods=["POST"])
@require_roles("enterprise", "admin")
def manifest_draft_delete(draft_id: int) -> Any:
    with uow() as u:
        drafts.delete_draft(uow=u, actor=actor(), draft_id=draft_id)
    return redirect(url_for("web.manifests_party", party="shipper"))


@bp.route("/manifests/party/<party>")
@require_roles("enterprise", "admin")
def manifests_party(party: str) -> Any:
    """One party's list with counts by status: 移出 (its own, with drafts), 承运 (waiting and on the road),
    接收 (on its way to it and received)."""
    if party not in PARTY_TITLES:
        abort(404)
    status = request.args.get("status") or None
    if status and status not in M.STATUSES:
        status = None
    if status is None and party == "carrier" and "status" not in request.args:
        status = "submitted"
    if status is None and party == "receiver" and "status" not in request.args:
        status = "in_transit"
    page = max(1, request.args.get("page", 1, type=int))
    with uow() as u:
        counts = queries.status_counts(uow=u, actor=actor(), party=party)
        got = queries.search(uow=u, actor=actor(), filters=ManifestFilter(status=status, party=party), page=page,
                             per_page=50)
        saved = [d.as_dict() for d in drafts.list_drafts(uow=u, actor=actor())] if party == "shipper" else []
    items, total = [m.as_dict() for m in got.items], got.total
    return render_template("manifests_party.html", party=party, title=PARTY_TITLES[party], counts=counts,
                           items=items, total=total, status=status, page=page, drafts=saved,
                           status_zh=M.STATUS_ZH)


def _manifest_or_404(number: str) -> dict[str, Any]:
    if not M.is_well_formed_number(number):
        abort(404)
    with uow() as u:
        return queries.get(uow=u, actor=actor(), number=number).as_dict()


def my_parties(m: dict[str, Any]) -> set[str]:
    """Which parties of ``m`` the signed-in user is (admins: all)."""
    a = actor()
    if a.is_admin:
        return {"shipper", "carrier", "receiver"}
    if a.role != "enterprise":
        return set()
    return set(M.parties_of_actor(a.units, shipper=m["shipper"]["credit_code"], receiver=m["receiver"]["credit_code"],
                                  carrier=(m.get("carrier") or {}).get("credit_code")))


def _now_local() -> str:
    return datetime.now(CST).strftime("%Y-%m-%dT%H:%M")


def _local_time(raw: str | None) -> datetime | None:
    """A ``datetime-local`` field (Beijing time, no offset) as an aware time; blank → None (now)."""
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise InputRejected("时间格式无效", problems=[]) from None
    return t if t.tzinfo else t.replace(tzinfo=CST)


@bp.route("/manifests/<number>/ship", methods=["GET", "POST"])
@require_roles("enterprise", "admin")
def manifest_ship(number: str) -> Any:
    """The carrier's 发运 form: 车牌号, 驾驶员, 营运证件号, departure time (phone-sized)."""
    m = _manifest_or_404(number)
    problems: list[dict[str, Any]] = []
    form = {"vehicle": m.get("vehicle") or "", "driver": m.get("driver") or "", "permit_no": m.get("permit_no") or "",
            "time": _now_local()}
    status = 200
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in ("vehicle", "driver", "permit_no", "time")}
        try:
            if not form["permit_no"]:
                raise InputRejected("请填写营运证件号", problems=[])
            with uow() as u:
                lifecycle.ship(uow=u, actor=actor(), number=number, cmd=Shipment(
                    vehicle=form["vehicle"], driver=form["driver"], permit_no=form["permit_no"],
                    time=_local_time(form["time"])))
            return redirect(url_for("web.manifest", number=number, done="shipped"))
        except NofeiError as e:
            from api.errors import status_for

            problems, status = _problems(e), status_for(e)
    return render_template("manifest_ship.html", m=m, form=form, problems=problems,
                           can=("carrier" in my_parties(m) and m["status"] == "submitted")), status


def _receipt_lines(m: dict[str, Any], form: Any, *, reject: bool) -> list[dict[str, Any]]:
    out = []
    for ln in m["lines"]:
        no = ln["line_no"]
        method = (form.get(f"method-{no}") or "").strip() or None
        mismatch = form.getlist(f"mismatch-{no}")
        if reject:
            refuse = form.get(f"refuse-{no}") == "1"
            row = {"line_no": no, "method": method, "mismatch": mismatch,
                   "reason": (form.get(f"reason-{no}") or "").strip() or None}
            if refuse:
                row["received_t"], row["rejected_t"] = "0", _t(ln["quantity_t"])
            else:
                row["received_t"], row["rejected_t"] = _t(ln["quantity_t"]), "0"
            out.append(row)
        else:
            out.append({"line_no": no, "received_t": (form.get(f"received-{no}") or "").strip() or None,
                        "method": method, "mismatch": mismatch})
    return out


@bp.route("/manifests/<number>/receive", methods=["GET", "POST"])
@require_roles("enterprise", "admin")
def manifest_receive(number: str) -> Any:
    """The receiver's page: 确认接收 (实收量 per line, 利用处置方式, 接受日期, mismatches) or 拒收 (the load or lines,
    with 拒收原因). A returned load is received back into the shipper's storage (method S)."""
    m = _manifest_or_404(number)
    problems: list[dict[str, Any]] = []
    status = 200
    values: dict[str, Any] = {}
    if request.method == "POST":
        values = request.form.to_dict(flat=True)
        kind = request.form.get("action") or "receive"
        try:
            t = _local_time(request.form.get("time"))
            accepted = (request.form.get("accepted_on") or "").strip() or None
            with uow() as u:
                if kind == "reject":
                    out = lifecycle.reject(uow=u, actor=actor(), number=number, cmd=Rejection.from_mapping({
                        "reason": (request.form.get("reason") or "").strip(), "time": t, "accepted_on": accepted,
                        "lines": _receipt_lines(m, request.form, reject=True)}))
                    return redirect(url_for("web.manifest", number=number, done="rejected",
                                            follow=(out.follow_ons or ("",))[0]))
                lifecycle.receive(uow=u, actor=actor(), number=number, cmd=Receipt.from_mapping({
                    "time": t, "accepted_on": accepted, "lines": _receipt_lines(m, request.form, reject=False)}))
            return redirect(url_for("web.manifest", number=number, done="received"))
        except NofeiError as e:
            from api.errors import status_for

            problems, status = _problems(e), status_for(e)
    for ln in m["lines"]:
        ln["info"] = code_info(ln["waste_code"])
    return render_template("manifest_receive.html", m=m, problems=problems, values=values, methods=_methods(),
                           mismatch_kinds=M.MISMATCH_KINDS, today=today_cst().isoformat(), now=_now_local(),
                           can=("receiver" in my_parties(m) and m["status"] == "in_transit"),
                           return_method=(M.RETURN_METHOD, M.RETURN_METHOD_ZH)), status


@bp.route("/manifests/<number>/print")
def manifest_print(number: str) -> Any:
    """The 联单 as an A4 page (print stylesheet) with a QR code that opens it in nofei, and one label per
    container in the spirit of HJ 1276-2022 (name, code, category, 危险特性, producer, contact, date, QR)."""
    import segno
    from markupsafe import Markup

    m = _manifest_or_404(number)
    url = url_for("web.manifest", number=number, _external=True)
    qr = Markup(segno.make(url, error="m").svg_inline(scale=3, title=f"联单 {number}"))  # noqa: S704 - segno's own SVG
    small = Markup(segno.make(url, error="m").svg_inline(scale=2, title=f"联单 {number}"))  # noqa: S704
    labels = []
    for ln in m["lines"]:
        info = code_info(ln["waste_code"]) or {}
        n = ln.get("container_count") or 1
        for k in range(min(int(n), 200)):
            labels.append({"line": ln, "info": info, "k": k + 1, "n": n})
    for ln in m["lines"]:
        ln["info"] = code_info(ln["waste_code"])
    return render_template("manifest_print.html", m=m, qr=qr, small_qr=small, labels=labels, url=url,
                           methods={x.code: x.name_zh for x in _methods()})
