"""The page handlers. Each one calls the same use case as its API endpoint, with the signed-in Actor."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Any

from flask import Response, abort, current_app, redirect, render_template, request, session, url_for

from api.web import actor, bp, require_roles, uow
from nofei.catalogue import CITY, STREAM_NAMES_ZH, STREAMS
from nofei.errors import InputRejected, NofeiError
from nofei.storage.repo import actor_for_token


def optional(module: str, name: str) -> Any:
    """A use case another feature provides, or None while it is not installed (the page says so)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None
    return getattr(mod, name, None)


def _int_arg(name: str, default: int, lo: int = 2000, hi: int = 2100) -> int:
    try:
        v = int(request.args.get(name, default))
    except ValueError:
        return default
    return v if lo <= v <= hi else default


def default_year() -> int:
    """The latest year with data, else last year (the annual report's usual subject)."""
    from reports.annual import years_present

    with uow() as u:
        ys = years_present(u)
    return ys[-1] if ys else date.today().year - 1


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
    """Sign in with an API token; the token is kept in the session cookie, never shown again."""
    error = None
    if request.method == "POST":
        token = (request.form.get("token") or "").strip()
        with current_app.extensions["nofei.sessions"]() as s:
            a = actor_for_token(s, token)
        if a is None:
            error = "令牌无效或已撤销，请检查后重试。"
        else:
            session.clear()
            session["token"] = token
            nxt = request.args.get("next") or ""
            return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else url_for("web.home"))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
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
                           stream_names=STREAM_NAMES_ZH)


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
    fn = optional("reports.indicators", "indicator_lineage")
    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    data: dict[str, Any] | None = None
    if fn is not None:
        with uow() as u:
            data = fn(uow=u, actor=actor(), key=key, year=year, region=region)
    return render_template("lineage.html", key=key, year=year, region=region, data=data, available=fn is not None)


@bp.route("/anomalies")
@require_roles("regulator", "admin")
def anomalies() -> Any:
    fn = optional("ledgers.anomalies", "list_anomalies")
    year = _int_arg("year", default_year())
    region = request.args.get("region") or default_region()
    kind = request.args.get("kind") or None
    items: list[dict[str, Any]] = []
    if fn is not None:
        with uow() as u:
            items = list(fn(uow=u, actor=actor(), year=year, region=None if region == CITY else region, kind=kind))
    kinds = sorted({str(a.get("kind")) for a in items})
    return render_template("anomalies.html", items=items, year=year, region=region, kind=kind, kinds=kinds,
                           regions=regions_for(), available=fn is not None)


@bp.route("/manifests")
def manifests() -> Any:
    """Search manifests (by number, status, unit, code, dates); a number jumps straight to its page."""
    number = (request.args.get("number") or "").strip()
    if number:
        return redirect(url_for("web.manifest", number=number))
    fn = optional("ledgers.manifests", "list_manifests")
    filters = {k: (request.args.get(k) or None) for k in ("status", "unit", "code")}
    page = _int_arg("page", 1, 1, 10**6)
    items: list[dict[str, Any]] = []
    total = 0
    if fn is not None:
        with uow() as u:
            items, total = fn(uow=u, actor=actor(), page=page, per_page=50, **filters)
    return render_template("manifests.html", items=items, total=total, page=page, filters=filters,
                           available=fn is not None)


@bp.route("/manifests/<number>")
def manifest(number: str) -> Any:
    """One manifest with its history, and its trace drawn as a path (forward to the fates, back to producers)."""
    from reports import svg

    get = optional("ledgers.manifests", "get_manifest")
    trace_fn = optional("ledgers.manifests", "trace_manifest") or optional("ledgers.trace", "trace_manifest")
    if get is None:
        abort(404)
    with uow() as u:
        m = get(uow=u, actor=actor(), number=number)
        trace = trace_fn(uow=u, actor=actor(), number=number) if trace_fn is not None else None
    drawing = None
    if trace:
        nodes, edges = trace_graph(trace)
        from reports.html import safe

        drawing = safe(svg.path_graph(nodes, edges, label=f"联单 {number} 的去向", highlight=m.get("shipper")))
    return render_template("manifest.html", m=m, trace=trace, drawing=drawing)


def trace_graph(trace: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes and edges to draw from a trace: its node-link subgraph when present, else its hops."""
    g = trace.get("graph") or trace.get("subgraph") or {}
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    for n in g.get("nodes", []):
        nid = str(n.get("id"))
        kind = str(n.get("kind") or n.get("fate") or "")
        label = n.get("name") or n.get("label") or n.get("unit") or nid
        sub = n.get("code") or n.get("waste_code") or (n.get("unit") if label != n.get("unit") else "") or ""
        nodes[nid] = {"id": nid, "label": label, "sub": sub, "kind": kind if kind in ("U", "D", "S", "X") else ""}
    for e in g.get("links", g.get("edges", [])):
        v = e.get("quantity_t", e.get("value_t", e.get("value", e.get("weight"))))
        edges.append({"source": str(e.get("source")), "target": str(e.get("target")),
                      "label": f"{float(v):,.3f} t" if isinstance(v, int | float) else ""})
    if not nodes:
        for hop in list(trace.get("backward", [])) + list(trace.get("forward", trace.get("hops", []))):
            s, t = str(hop.get("from") or hop.get("source")), str(hop.get("to") or hop.get("target"))
            for x in (s, t):
                nodes.setdefault(x, {"id": x, "label": x, "sub": "", "kind": x if x in ("U", "D", "S", "X") else ""})
            v = hop.get("quantity_t", hop.get("share_t", hop.get("value_t")))
            edges.append({"source": s, "target": t, "label": f"{float(v):,.3f} t" if isinstance(v, int | float) else ""})
    return list(nodes.values()), edges


# --- admin: units and tokens ------------------------------------------------------------------
@bp.route("/admin/units", methods=["GET", "POST"])
@require_roles("admin")
def admin_units() -> Any:
    from ledgers import registry

    created = None
    problems: list[dict[str, Any]] = []
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in ("credit_code", "name", "district", "park")}
        data = {**form, "park": form["park"] or None, "roles": request.form.getlist("roles"), "permits": []}
        try:
            with uow() as u:
                created = registry.register_unit(uow=u, actor=actor(), data=data)
            form = {}
        except InputRejected as e:
            problems = [p.to_dict() for p in e.problems] or [{"message": e.message}]
        except NofeiError as e:
            problems = [{"message": e.message}]
    q = request.args.get("q") or None
    with uow() as u:
        units, total = registry.list_units(uow=u, actor=actor(), q=q, per_page=500)
        cat = u.catalogue
    from nofei.domain.units import ROLES

    return render_template("admin_units.html", units=units, total=total, q=q or "", created=created,
                           problems=problems, form=form, roles=ROLES,
                           districts=[(c, d.name_zh) for c, d in cat.districts.items() if c != CITY],
                           parks=[(c, p.name_zh) for c, p in cat.parks.items()], region_name=cat.region_name)


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

from api.web import ledger_pages  # noqa: E402,F401 - the enterprise's ledger pages
