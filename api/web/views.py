"""The page handlers. Each one calls the same use case as its API endpoint, with the signed-in Actor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, current_app, redirect, render_template, request, session, url_for

from api.ratelimit import login_wait, retry_after
from api.web import actor, bp, require_roles, safe_next, uow
from nofei.catalogue import CITY, STREAM_NAMES_ZH, STREAMS
from nofei.domain.calendar import CST
from nofei.errors import InputRejected, NofeiError
from nofei.storage import websession
from nofei.storage.repo import actor_for_token


def _int_arg(name: str, default: int, lo: int = 2000, hi: int = 2100) -> int:
    try:
        v = int(request.args.get(name, default))
    except ValueError:
        return default
    return v if lo <= v <= hi else default


def default_year() -> int:
    """The latest year with data whose reporting is complete (every month past its deadline), else the latest
    year with data, else last year: a barely begun year would show 0 % against every target (issue 13)."""
    return _default_year()[0]


def _default_year() -> tuple[int, str]:
    from nofei.domain.completeness import reporting_closed
    from reports.annual import years_present

    today = datetime.now(UTC).astimezone(CST).date()
    with uow() as u:
        ys = years_present(u)
    closed = [y for y in ys if reporting_closed(y, today)]
    if closed:
        return closed[-1], f"默认显示 {closed[-1]} 年：报送已截止（{closed[-1] + 1} 年1月15日）的最近一年"
    if ys:
        return ys[-1], f"默认显示 {ys[-1]} 年：有数据的最近一年，报送尚未截止，数据不完整"
    return today.year - 1, f"默认显示 {today.year - 1} 年（尚无台账数据）"


def year_note(year: int) -> str | None:
    """Why the page shows this year, when the user did not choose it."""
    if request.args.get("year"):
        return None
    y, why = _default_year()
    return why if y == year else None


def default_region() -> str:
    a = actor()
    return a.district if a.role == "regulator" and a.district else CITY


def regions_for() -> list[tuple[str, str]]:
    """The regions the signed-in user may choose: the city and districts (regulators: their own)."""
    cat = current_app.extensions["nofei.catalogue"]
    a = actor()
    out = []
    for code, d in cat.districts.items():
        if a.can_view_region(code, code):
            out.append((code, d.name_zh))
    for code, p in cat.parks.items():
        if a.can_view_region(code, p.district):
            out.append((code, p.name_zh))
    return out


# --- sign in / out -------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with an API token, exchanged for a server-side session: the cookie carries only its random id."""
    error = None
    if request.method == "POST":
        token = (request.form.get("token") or "").strip()
        wait = login_wait(token)
        if wait is not None:
            resp = Response(render_template("error.html", status=429, title="尝试过于频繁",
                                            message="登录尝试过于频繁，请稍后再试。"), status=429)
            resp.headers["Retry-After"] = retry_after(wait)
            return resp
        with current_app.extensions["nofei.sessions"]() as s:
            a = actor_for_token(s, token)
            if a is not None:
                sid = websession.open_session(s, a, hours=float(current_app.config.get("WEB_SESSION_HOURS") or 12))
                s.commit()
        if a is None:
            error = "令牌无效或已撤销，请检查后重试。"
        else:
            session.clear()  # a fresh CSRF token too: nothing from before sign-in survives it
            session["sid"] = sid
            return redirect(safe_next(request.args.get("next")) or url_for("web.home"))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out: the session is revoked on the server, so a copy of the old cookie no longer signs in."""
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        with current_app.extensions["nofei.sessions"]() as s:
            websession.revoke_session(s, sid)
            s.commit()
    session.clear()
    return redirect(url_for("web.login"))


@bp.route("/assets/report.css")
def stylesheet() -> Response:
    from reports.html import stylesheet as css

    resp = Response(css(), mimetype="text/css")
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@bp.route("/")
def home() -> Any:
    return redirect(url_for("web.ledgers" if actor().role == "enterprise" else "web.dashboard"))


# --- regulator: dashboard, report, lineage, anomalies, manifests ------------------------------
@bp.route("/dashboard")
def dashboard() -> Any:
    """Indicator cards against targets, trends, the rate chart, each stream's Sankey, the districts."""
    from api.resources.reports import annual_report
    from reports.html import charts

    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    rep = annual_report(uow_factory=uow, actor=actor(), year=year, region=region)
    return render_template("dashboard.html", r=rep, c=charts(rep), year=year, region=region, regions=regions_for(),
                           stream_names=STREAM_NAMES_ZH, year_note=year_note(year))


@bp.route("/reports/annual")
def report_page() -> Any:
    """The full annual report page (the same HTML as the API's ``format=html``), or its workbook."""
    from api.resources.reports import REPORT_CSP, annual_report, render

    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "xlsx"):
        abort(404)
    rep = annual_report(uow_factory=uow, actor=actor(), year=year, region=region)
    body, media, name = render(rep, fmt, lineage_base=url_for("web.lineage", key="_").rsplit("/", 1)[0])
    resp = Response(body, mimetype=media.split(";")[0])
    resp.headers["Content-Type"] = media
    if fmt == "xlsx":
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp


@bp.route("/lineage/<key>")
def lineage(key: str) -> Any:
    """The units and ledger versions behind one figure, with their contributions."""
    from reports.indicators import indicator_lineage

    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    with uow() as u:
        data = indicator_lineage(uow=u, actor=actor(), key=key, year=year, region=region)
    return render_template("lineage.html", key=key, year=year, region=region, data=data)


@bp.route("/anomalies")
@require_roles("regulator", "admin")
def anomalies() -> Any:
    """The year's anomalies with their cases: kinds by their Chinese names, units by name, rows and manifests
    linked."""
    from ledgers import anomalies as svc
    from ledgers import cases

    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    kind = request.args.get("kind") or None
    kind = kind if kind in svc.KINDS else None
    with uow() as u:
        items = list(svc.list_anomalies(uow=u, actor=actor(), year=year, region=None if region == CITY else region,
                                        kind=kind))
        cases.sync_cases(uow=u, year=year)
        cases.annotate_anomalies(uow=u, year=year, items=items)
        names = registry_names(u, {c for a in items for c in a["units"]})
    from nofei.domain.cases import STATUS_ZH

    return render_template("anomalies.html", items=items, year=year, region=region, kind=kind,
                           kinds=[(k, svc.TITLES[k]) for k in svc.KINDS], names=names, status_zh=STATUS_ZH,
                           regions=regions_for(), year_note=year_note(year))


def registry_names(u: Any, codes: set[str]) -> dict[str, str]:
    from nofei.storage.repo import unit_rows_by_code

    return {cc: r.name for cc, r in unit_rows_by_code(u.session, codes).items()}


@bp.route("/manifests")
def manifests() -> Any:
    """Search manifests (by number, status, unit, code, dates); a number jumps straight to its page."""
    number = (request.args.get("number") or "").strip()
    if number:
        return redirect(url_for("web.manifest", number=number))
    from ledgers.manifests import list_manifests

    filters = {k: (request.args.get(k) or None) for k in ("status", "unit", "code")}
    page = _int_arg("page", 1, 1, 10**6)
    with uow() as u:
        items, total = list_manifests(uow=u, actor=actor(), page=page, per_page=50, status=filters["status"],
                                      unit=filters["unit"], code=filters["code"])
    return render_template("manifests.html", items=items, total=total, page=page, filters=filters)


@bp.route("/manifests/<number>")
def manifest(number: str) -> Any:
    """One manifest with its history, and its trace drawn as a path (forward to the fates, back to producers)."""
    from ledgers.manifests import get_manifest
    from ledgers.trace import trace_manifest
    from reports import svg

    with uow() as u:
        m = get_manifest(uow=u, actor=actor(), number=number)
        trace = trace_manifest(uow=u, actor=actor(), number=number)
    drawing = None
    if trace:
        nodes, edges = trace_graph(trace)
        from reports.html import safe

        codes = sorted({str(ln.get("waste_code")) for ln in m.get("lines") or []})
        drawing = safe(svg.path_graph(nodes, edges, label=f"联单 {number} 的去向",
                                      highlight=f"{m['shipper']['credit_code']}|{codes[0]}" if codes else None))
    from api.web.manifest_pages import my_parties
    from nofei.domain.manifests import MISMATCH_KINDS

    done = request.args.get("done")
    return render_template("manifest.html", m=m, trace=trace, drawing=drawing, parties=my_parties(m),
                           done=done if done in ("submitted", "shipped", "received", "rejected") else None,
                           follow=request.args.get("follow") or None, mismatch_kinds=MISMATCH_KINDS)


FATE_ZH = {"U": "利用", "D": "处置", "S": "贮存", "X": "去向不明"}


def trace_graph(trace: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Boxes and arrows of a manifest's trace: producers → shipper → (manifest) → receiver → … → fates.

    Uses the trace's node-link subgraph (``ledgers.trace``) plus the manifest's own hops, which the
    subgraph leaves out (it starts at the receiver going forward and at the shipper going back)."""
    g = trace.get("graph") or {}
    nodes: dict[str, dict[str, Any]] = {}

    def unit_node(nid: str, unit: str, name: str | None, code: str) -> None:
        nodes.setdefault(nid, {"id": nid, "label": name or unit, "sub": f"{unit} · {code}", "kind": ""})

    for n in g.get("nodes", []):
        nid, kind, code = str(n["id"]), n.get("kind"), str(n.get("waste_code") or "")
        if kind == "fate":
            f = str(n.get("fate"))
            nodes[nid] = {"id": nid, "label": FATE_ZH.get(f, f), "sub": code, "kind": f}
        elif kind == "origin":
            nodes[nid] = {"id": nid, "label": "产生", "sub": code, "kind": ""}
        elif kind == "hidden":  # beyond what the signed-in user may read (ledgers.trace_view)
            nodes[nid] = {"id": nid, "label": str(n.get("name")), "sub": code, "kind": ""}
        elif kind == "pending":  # received, the receiver's ledger of the code not yet in: not (yet) a loss
            nodes[nid] = {"id": nid, "label": "待接收方台账", "sub": code, "kind": ""}
        else:
            unit_node(nid, str(n.get("unit")), n.get("name"), code)
    edges = [{"source": str(e["source"]), "target": str(e["target"]),
              "label": f"{float(e['mass_t']):,.3f} t" if e.get("mass_t") is not None else ""}
             for e in g.get("links", [])]
    for h in trace.get("manifest_hops", []):
        code = str(h.get("waste_code"))
        s, t = f"{h['from']}|{code}", f"{h['to']}|{code}"
        unit_node(s, str(h["from"]), None, code)
        unit_node(t, str(h["to"]), None, code)
        edges.append({"source": s, "target": t, "label": f"联单 {float(h.get('mass_t') or 0):,.3f} t"})
    return list(nodes.values()), edges


# --- admin: units and tokens ------------------------------------------------------------------
def _problems_of(e: NofeiError) -> list[dict[str, Any]]:
    """A refused form's problems as the page lists them."""
    if isinstance(e, InputRejected):
        return [p.to_dict() for p in e.problems] or [{"message": e.message}]
    return [{"message": e.message}]


def _set_unit_type() -> Any:
    """Change an existing unit's type (and clinic mark) from its row of the table."""
    from ledgers import registry

    cc = (request.form.get("credit_code") or "").strip()
    patch = {"unit_type": (request.form.get("unit_type") or "").strip(),
             "small_clinic": request.form.get("small_clinic") == "1"}
    with uow() as u:
        return registry.update_unit(uow=u, actor=actor(), credit_code=cc, data=patch)


def _unit_form() -> dict[str, Any]:
    return {k: (request.form.get(k) or "").strip() for k in ("credit_code", "name", "district", "park", "unit_type")}


def _register_from_form(form: dict[str, Any]) -> Any:
    """Register the unit the form describes (no permits: those come with the API or the import)."""
    from ledgers import registry

    data = {**form, "park": form["park"] or None, "roles": request.form.getlist("roles"), "permits": [],
            "unit_type": form["unit_type"] or "industrial", "small_clinic": request.form.get("small_clinic") == "1"}
    with uow() as u:
        return registry.register_unit(uow=u, actor=actor(), data=data)


@bp.route("/admin/units", methods=["GET", "POST"])
@require_roles("admin")
def admin_units() -> Any:
    from ledgers import registry
    from ledgers.declarations import tiers_by_code, today_cst
    from nofei.domain.units import ROLES, UNIT_TYPE_ZH

    created = changed = None
    problems: list[dict[str, Any]] = []
    form: dict[str, Any] = {}
    try:
        if request.method == "POST" and request.form.get("action") == "set_type":
            changed = _set_unit_type()
        elif request.method == "POST":
            form = _unit_form()
            created = _register_from_form(form)
            form = {}
    except NofeiError as e:
        problems = _problems_of(e)
    q = request.args.get("q") or None
    page = _int_arg("page", 1, 1, 10**6)
    with uow() as u:
        units, total = registry.list_units(uow=u, actor=actor(), q=q, page=page, per_page=100)
        cat = u.catalogue
        tier_year = today_cst().year
        tiers = tiers_by_code(uow=u, actor=actor(), year=tier_year, codes=[x["credit_code"] for x in units])
    return render_template("admin_units.html", units=units, total=total, q=q or "", created=created, page=page,
                           changed=changed, problems=problems, form=form, roles=ROLES, unit_types=UNIT_TYPE_ZH,
                           districts=[(c, d.name_zh) for c, d in cat.districts.items() if c != CITY],
                           parks=[(c, p.name_zh) for c, p in cat.parks.items()], region_name=cat.region_name,
                           tiers=tiers, tier_year=tier_year)


@bp.route("/admin/tokens", methods=["GET", "POST"])
@require_roles("admin")
def admin_tokens() -> Any:
    from ledgers import registry

    issued = None
    problems: list[dict[str, Any]] = []
    if request.method == "POST":
        role = request.form.get("role") or ""
        units = [x.strip() for x in (request.form.get("units") or "").replace("，", ",").split(",") if x.strip()]
        try:
            with uow() as u:
                issued = registry.create_token(uow=u, actor=actor(), role=role, units=units,
                                               district=(request.form.get("district") or None),
                                               name=(request.form.get("name") or "").strip()[:200])
        except InputRejected as e:
            problems = [p.to_dict() for p in e.problems] or [{"message": e.message}]
    with uow() as u:
        toks = registry.list_tokens(uow=u, actor=actor())
        cat = u.catalogue
    return render_template("admin_tokens.html", tokens=toks, issued=issued, problems=problems,
                           districts=list(cat.districts.items()))


@bp.route("/admin/tokens/<int:token_id>/revoke", methods=["POST"])
@require_roles("admin")
def admin_token_revoke(token_id: int) -> Any:
    from ledgers import registry

    with uow() as u:
        registry.revoke_token(uow=u, actor=actor(), token_id=token_id)
    return redirect(url_for("web.admin_tokens"))


STREAM_CHOICES = [(s, STREAM_NAMES_ZH[s]) for s in STREAMS]

from api.web import case_pages, ledger_pages, manifest_pages  # noqa: E402,F401,I001 - casework, ledger and manifest pages
from api.web import declaration_pages  # noqa: E402,F401,I001 - HJ 1259 declarations (issue 14)
