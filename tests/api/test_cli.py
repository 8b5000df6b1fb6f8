"""The CLI: token create prints the token alone on the last line; units import; catalogue load."""

import json

from click.testing import CliRunner

from api.cli import cli
from tests.factories import sheet, unit_payload


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
    # codes without an edition are additions; a hazardous one must exist in the 名录 (900-999-08 does not)
    f = tmp_path / "c.csv"
    f.write_text("code,name_zh\nSW58,测试废渣\n900-999-08,测试油泥\n", encoding="utf-8")
    r = run(database_url, "catalogue", "load", str(f))
    assert r.exit_code == 1 and "loaded 1" in r.output and "unknown_code 900-999-08" in r.output


def test_catalogue_load_a_later_edition(database_url, tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from nofei.catalogue import Catalogue
    from nofei.storage.uow import UnitOfWork

    f = tmp_path / "hw2025.csv"
    f.write_text("code,category,name_zh,hazard,edition\n321-035-48,HW48,锡冶炼测试废物,T,2025\n"
                 "900-041-49,HW49,含有或沾染毒性、感染性危险废物的废弃的包装物、容器、过滤吸附介质,T/In,2025\n",
                 encoding="utf-8")
    r = run(database_url, "catalogue", "load", str(f))
    assert r.exit_code == 0 and "edition 2025: 2 hazardous/medical codes" in r.output
    eng = create_engine(database_url)
    try:
        with UnitOfWork(sessionmaker(bind=eng), catalogue=Catalogue.default()) as uow:
            cat = uow.catalogue
            assert cat.for_year(2025).classify("321-035-48").known
            assert cat.for_year(2024).classify("321-035-48").error == "unknown_code"
            assert cat.for_year(2024).classify("900-052-31").known  # 2024 keeps the 2021 list
    finally:
        eng.dispose()


def test_units_import_xlsx(database_url, tmp_path):
    a, b = unit_payload(), unit_payload("630106")
    f = tmp_path / "units.xlsx"
    f.write_bytes(sheet([["credit_code", "name", "district", "park", "roles"],
                         [a["credit_code"], "甲厂", "630104", None, "producer, collector"],
                         [None, None, None, None, None],
                         [b["credit_code"], "乙厂", "630106", "GANHE", "utiliser"]]))
    r = run(database_url, "units", "import", str(f))
    assert r.exit_code == 0 and "created 2" in r.output, r.output


def test_units_import_xlsx_with_unit_types(database_url, tmp_path):
    from sqlalchemy import create_engine, select

    from nofei.storage.tables import UnitRow

    a, b, c = unit_payload(), unit_payload("630106"), unit_payload("630102")
    rows = [["credit_code", "name", "district", "park", "roles", "unit_type", "small_clinic"],
            [a["credit_code"], "汽修厂", "630104", None, "producer", "social_source", None],
            [b["credit_code"], "社区卫生服务站", "630106", None, "producer", "medical_institution", "是"],
            [c["credit_code"], "机械厂", "630102", None, "producer", None, None]]
    f = tmp_path / "units.xlsx"
    f.write_bytes(sheet(rows))
    r = run(database_url, "units", "import", str(f))
    assert r.exit_code == 0 and "created 3" in r.output, r.output
    eng = create_engine(database_url)
    try:
        with eng.connect() as conn:
            got = {row.credit_code: (row.unit_type, row.small_clinic) for row in
                   conn.execute(select(UnitRow.credit_code, UnitRow.unit_type, UnitRow.small_clinic))}
    finally:
        eng.dispose()
    assert got == {a["credit_code"]: ("social_source", False), b["credit_code"]: ("medical_institution", True),
                   c["credit_code"]: ("industrial", False)}
    rows[1][5] = "farm"
    f.write_bytes(sheet(rows))
    r = run(database_url, "units", "import", str(f))
    assert r.exit_code != 0 and "unit_type" in r.output
