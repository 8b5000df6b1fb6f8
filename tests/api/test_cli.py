"""The CLI: token create prints the token alone on the last line; units import; catalogue load."""

import json

from click.testing import CliRunner

from api.cli import cli
from tests.factories import unit_payload


def run(database_url, *args):
    return CliRunner().invoke(cli, ["--database-url", database_url, *args], catch_exceptions=False)


def test_token_create_list_revoke(database_url, tmp_path):
    r = run(database_url, "token", "create", "--role", "regulator", "--district", "630104", "--name", "城西局")
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("nf_") and " " not in token
    listed = run(database_url, "token", "list").output
    assert "regulator" in listed and token not in listed
    assert run(database_url, "token", "revoke", "1").exit_code == 0
    assert "revoked" in run(database_url, "token", "list").output


def test_token_create_refuses_bad_arguments(database_url):
    r = CliRunner().invoke(cli, ["--database-url", database_url, "token", "create", "--role", "regulator"])
    assert r.exit_code == 2


def test_units_import_json_is_all_or_nothing(database_url, tmp_path):
    good = [unit_payload(), unit_payload("630102")]
    f = tmp_path / "u.json"
    f.write_text(json.dumps(good + [{**unit_payload(), "district": "1"}]), encoding="utf-8")
    assert CliRunner().invoke(cli, ["--database-url", database_url, "units", "import", str(f)]).exit_code == 2
    f.write_text(json.dumps(good), encoding="utf-8")
    r = run(database_url, "units", "import", str(f))
    assert r.exit_code == 0 and "created 2" in r.output
    r = run(database_url, "units", "import", str(f))
    assert "updated 2" in r.output


def test_catalogue_load(database_url, tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("code,name_zh\n900-999-08,测试油泥\n", encoding="utf-8")
    r = run(database_url, "catalogue", "load", str(f))
    assert r.exit_code == 0 and "loaded 1" in r.output


def test_units_import_xlsx(database_url, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["credit_code", "name", "district", "park", "roles"])
    a, b = unit_payload(), unit_payload("630106")
    ws.append([a["credit_code"], "甲厂", "630104", None, "producer, collector"])
    ws.append([None, None, None, None, None])
    ws.append([b["credit_code"], "乙厂", "630106", "GANHE", "utiliser"])
    f = tmp_path / "units.xlsx"
    wb.save(f)
    r = run(database_url, "units", "import", str(f))
    assert r.exit_code == 0 and "created 2" in r.output, r.output
