"""The server-rendered pages: sign-in by token, CSRF on every form, CSP, and the API's authorisation rules."""

from __future__ import annotations

import re

import pytest

from tests.factories import register


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def sign_in(client, headers: dict[str, str]):
    token = headers["Authorization"].split(" ", 1)[1]
    csrf = csrf_of(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"token": token, "csrf_token": csrf})
    assert r.status_code == 302, r.get_data(as_text=True)
    return r


def test_pages_need_sign_in_and_redirect_to_login(client):
    r = client.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = client.get("/login")
    assert page.status_code == 200 and "访问令牌" in page.get_data(as_text=True)


def test_sign_in_sets_a_httponly_lax_cookie_and_bad_tokens_are_refused(client, admin):
    csrf = csrf_of(client.get("/login").get_data(as_text=True))
    bad = client.post("/login", data={"token": "nf_nope", "csrf_token": csrf})
    assert bad.status_code == 401 and "令牌无效" in bad.get_data(as_text=True)
    r = sign_in(client, admin)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/dashboard").status_code == 200


def test_post_without_csrf_token_is_refused(client, admin):
    sign_in(client, admin)
    r = client.post("/admin/tokens", data={"role": "admin", "name": "x"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = client.post("/admin/tokens", data={"role": "admin", "name": "x", "csrf_token": "forged"})
    assert r.status_code == 400
    # and the login form too (login CSRF)
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/admin/tokens").get_data(as_text=True))})
    assert client.post("/login", data={"token": admin["Authorization"][7:]}).status_code == 400


def test_pages_send_a_strict_content_security_policy(client, admin):
    sign_in(client, admin)
    r = client.get("/dashboard")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page = r.get_data(as_text=True)
    assert "<script" not in page and 'style="' not in page
    assert "<svg" in page  # charts are server-drawn


def test_admin_issues_and_revokes_a_token_from_the_page(client, admin):
    sign_in(client, admin)
    csrf = csrf_of(client.get("/admin/tokens").get_data(as_text=True))
    r = client.post("/admin/tokens", data={"role": "regulator", "district": "630102", "name": "城东监管",
                                           "csrf_token": csrf})
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    token = re.search(r'id="new-token">(nf_[^<]+)<', page).group(1)
    assert client.get("/api/v1/reports/annual?year=2024&region=630102",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    tid = re.findall(r"/admin/tokens/(\d+)/revoke", page)[-1]
    client.post(f"/admin/tokens/{tid}/revoke", data={"csrf_token": csrf})
    assert client.get("/api/v1/reports/annual?year=2024&region=630102",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_admin_registers_a_unit_and_sees_errors_for_a_bad_one(client, admin):
    from tests.factories import credit_code

    sign_in(client, admin)
    csrf = csrf_of(client.get("/admin/units").get_data(as_text=True))
    cc = credit_code("630105")
    r = client.post("/admin/units", data={"credit_code": cc, "name": "北川化工", "district": "630105",
                                          "roles": ["producer"], "csrf_token": csrf})
    assert r.status_code == 200 and "已登记" in r.get_data(as_text=True)
    assert client.get(f"/api/v1/units/{cc}", headers=admin).status_code == 200
    r = client.post("/admin/units", data={"credit_code": "123", "name": "坏", "district": "630105", "csrf_token": csrf})
    assert "登记失败" in r.get_data(as_text=True) and "GB 32100" in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/units", "/admin/tokens", "/anomalies"])
def test_enterprise_may_not_open_admin_or_regulator_pages(client, admin, tokens, path):
    code = register(client, admin, district="630104")["credit_code"]
    sign_in(client, tokens("enterprise", units=[code]))
    assert client.get(path).status_code == 403


def test_regulator_dashboard_follows_the_api_rules(client, tokens):
    sign_in(client, tokens("regulator", district="630102"))
    r = client.get("/dashboard")
    assert r.status_code == 200 and "城东区" in r.get_data(as_text=True)
    r = client.get("/dashboard?region=630104")
    assert r.status_code == 403 and "无权" in r.get_data(as_text=True)
    assert client.get("/ledgers").status_code == 403


def test_home_sends_each_role_to_its_main_page(client, admin, tokens):
    code = register(client, admin, district="630104")["credit_code"]
    sign_in(client, tokens("enterprise", units=[code]))
    assert client.get("/").headers["Location"].endswith("/ledgers")
    page = client.get("/ledgers").get_data(as_text=True)
    assert "下载模板" in page and 'enctype="multipart/form-data"' in page


def test_revoked_token_ends_the_page_session(client, admin, tokens, app):
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    reg = tokens("regulator", district="630100", name="r")
    sign_in(client, reg)
    assert client.get("/dashboard").status_code == 200
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        tid = [t for t in registry.list_tokens(uow=uow, actor=SYSTEM) if t["name"] == "r"][0]["id"]
        registry.revoke_token(uow=uow, actor=SYSTEM, token_id=tid)
    assert client.get("/dashboard").status_code == 302


def test_full_report_page_and_workbook_download(client, admin):
    sign_in(client, admin)
    r = client.get("/reports/annual?year=2024")
    assert r.status_code == 200 and "年度“无废城市”建设报告" in r.get_data(as_text=True)
    assert 'href="/lineage/' in r.get_data(as_text=True)
    r = client.get("/reports/annual?year=2024&format=xlsx")
    assert r.status_code == 200 and r.data[:2] == b"PK"
