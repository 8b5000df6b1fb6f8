"""The hostile-file corpus against a real ``nofei serve`` (waitress, SQLite), not the Flask test client
(issue 17): every file gets its status and code in the JSON envelope within its time bound, the server's
and the workers' memory stay bounded, and ``/health`` answers after each."""

from __future__ import annotations

import io

import pytest

from tests.hostile import corpus as H
from tests.hostile.served import Server, rss_mb, start

pytestmark = pytest.mark.served

SERVER_RSS_MB = 500
WORKER_MEMORY = 1 << 30  # the workers' RLIMIT_AS here (default 2 GiB)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start(tmp_path_factory.mktemp("served"), PARSE_MEMORY_BYTES=WORKER_MEMORY, PARSE_SECONDS=20,
                PARSE_WORKERS=1)
    yield srv
    srv.stop()


def _bounded(srv: Server) -> None:
    assert srv.health() == 200
    assert srv.proc.poll() is None
    assert rss_mb(srv.pid) < SERVER_RSS_MB, rss_mb(srv.pid)
    for pid in srv.workers():
        assert rss_mb(pid) < WORKER_MEMORY / 2 ** 20


def _many_rows_manifest_import(n: int) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["分组", "接收单位统一社会信用代码", "计划转移日期", "废物代码", "数量（吨）"])
    for i in range(n):
        ws.append([i, "x", "2025-01-01", "900-041-49", 1])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


CASES = [
    # (id, path, file, filename, status, code, seconds)
    ("xfd-ledgers", "/api/v1/ledgers", lambda: H.with_cell("XFD1048576"), "x.xlsx", 413, "too_many_rows", 5),
    ("xfd-check-json", "/api/v1/ledgers/check?format=json", lambda: H.with_cell("XFD1048576"), "x.xlsx", 413,
     "too_many_rows", 5),
    ("xfd-check-xlsx", "/api/v1/ledgers/check?format=xlsx", lambda: H.with_cell("XFD1048576"), "x.xlsx", 413,
     "too_many_rows", 5),
    ("dimension", "/api/v1/ledgers?dry_run=true", lambda: H.with_dimension("A1:XFD1048576"), "x.xlsx", 413,
     "too_many_rows", 5),
    ("zz200000", "/api/v1/ledgers", lambda: H.with_cell("ZZ200000"), "x.xlsx", 413, "too_many_columns", 5),
    ("xfd-manifests", "/api/v1/manifests/import", lambda: H.manifest_import_with_cell("XFD1048576"), "m.xlsx", 413,
     "too_many_rows", 5),
    ("rows-manifests", "/api/v1/manifests/import", lambda: _many_rows_manifest_import(10_001), "m.xlsx", 413,
     "too_many_rows", 5),
    ("xls-abort", "/api/v1/ledgers", lambda: H.xls_changed(H.XLS_ABORT_OFFSET, H.XLS_ABORT_BYTE), "x.xls", 422,
     "unreadable_file", 15),
    ("xls-panic", "/api/v1/ledgers", lambda: H.xls_changed(H.XLS_PANIC_OFFSET, H.XLS_PANIC_BYTE), "x.xls", 422,
     "unreadable_file", 15),
    ("xls-abort-check", "/api/v1/ledgers/check?format=xlsx", lambda: H.xls_changed(H.XLS_ABORT_OFFSET, H.XLS_ABORT_BYTE),
     "x.xls", 422, "unreadable_file", 15),
    ("macro-char-refs", "/api/v1/ledgers", H.macro_by_char_refs, "x.xlsx", 415, "macro_enabled", 5),
    ("ods-columns", "/api/v1/ledgers", lambda: H.ods_cell_repeated(16_000_000), "x.ods", 413, "too_many_columns", 5),
    ("ods-rows", "/api/v1/ledgers", lambda: H.ods_row_repeated(100_000_000), "x.ods", 413, "too_many_rows", 5),
    ("ods-rows-check-xlsx", "/api/v1/ledgers/check?format=xlsx", lambda: H.ods_row_repeated(100_000_000), "x.ods",
     413, "too_many_rows", 5),
    ("ods-manifests", "/api/v1/manifests/import", lambda: H.ods_cell_repeated(16_000_000), "m.ods", 413,
     "too_many_columns", 5),
]


@pytest.mark.parametrize(("path", "make", "filename", "status", "code", "seconds"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_file_is_answered_in_the_envelope_and_the_server_lives(server, path, make, filename, status, code,
                                                                      seconds):
    r = server.upload(path, make(), filename)
    assert r.status == status, r.body[:500]
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == code and r.json()["status"] == status
    assert r.seconds < seconds
    _bounded(server)


def test_an_ods_refusal_names_the_sheet_and_cell(server):
    r = server.upload("/api/v1/ledgers", H.ods_row_repeated(100_000_000), "x.ods")
    p = r.json()["errors"][0]
    assert (p["sheet"], p["column"], p["row"]) == ("填报信息", "A", 100_000_005)
    _bounded(server)


XLS_CODES = {"corrupt_file", "not_a_spreadsheet", "empty_file", "unreadable_file", "ledger_rejected", "unknown_unit"}
MALFORMED_XLS = [("cut512", lambda: H.xls_truncated(512)), ("cut4096", lambda: H.xls_truncated(4096)),
                 ("cut8192", lambda: H.xls_truncated(8192)), ("cut9600", lambda: H.xls_truncated(9600)),
                 *[(f"flip{o}", lambda o=o: H.xls_flipped(o)) for o in (0, 520, 1100, 2624, 3735, 4100, 6000, 9000)]]


@pytest.mark.parametrize("make", [m for _, m in MALFORMED_XLS], ids=[n for n, _ in MALFORMED_XLS])
def test_a_malformed_xls_is_a_specific_4xx_never_a_500(server, make):
    r = server.upload("/api/v1/ledgers", make(), "x.xls")
    assert r.headers["content-type"].startswith("application/json"), r.body[:300]
    assert r.status in (201, 415, 422), r.body[:500]
    if r.status != 201:
        assert r.json()["code"] in XLS_CODES and r.json()["status"] == r.status and r.json()["message"]
    assert r.seconds < 15
    _bounded(server)


def test_repeated_panics_leave_the_server_answering(server):
    data = H.xls_changed(H.XLS_PANIC_OFFSET, H.XLS_PANIC_BYTE)
    for _ in range(6):
        r = server.upload("/api/v1/ledgers", data, "x.xls")
        assert r.status == 422 and r.json()["code"] == "unreadable_file"
    _bounded(server)


def test_annotating_a_file_with_a_big_extra_sheet_is_bounded(server):
    data = H.extra_sheet(20_000)  # 3.4 MB, 1.2 M cells in a sheet that is not the ledger's
    r = server.upload("/api/v1/ledgers/check?format=xlsx", data, "x.xlsx")
    assert r.status == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert r.seconds < 20
    from openpyxl import load_workbook

    assert "附表" not in load_workbook(io.BytesIO(r.body)).sheetnames
    _bounded(server)


def test_an_oversized_upload_gets_the_json_413(server):
    big = b"\0" * (60 * 1024 * 1024)
    r = server.upload("/api/v1/ledgers", big, "x.xlsx")
    assert r.status == 413 and r.headers["content-type"].startswith("application/json"), r.body[:300]
    assert r.json()["status"] == 413
    _bounded(server)


def test_a_chunked_upload_without_length_is_bounded_too(server):
    r = server.request("POST", "/api/v1/ledgers", b"\0" * (30 * 1024 * 1024),
                       {"Content-Type": "multipart/form-data; boundary=x"}, chunked=True)
    assert r.status == 413 and r.headers["content-type"].startswith("application/json"), r.body[:300]
    _bounded(server)


def test_a_good_ledger_still_goes_through(server):
    r = server.upload("/api/v1/ledgers/check?format=json", H.good(), "x.xlsx")
    assert r.status == 200, r.body[:300]
    assert r.json()["valid"] is True or r.json()["errors"]
    _bounded(server)
