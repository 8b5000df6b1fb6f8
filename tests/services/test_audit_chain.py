from sqlalchemy import text, update

from ledgers import registry
from nofei.access import SYSTEM
from nofei.storage import audit
from nofei.storage.tables import AuditRow
from tests.factories import unit_payload


def test_writes_are_chained_and_a_changed_row_breaks_the_chain(uow_factory):
    for _ in range(3):
        with uow_factory() as uow:
            registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload())
    with uow_factory() as uow:
        check = audit.verify(uow.session)
    assert check.ok and check.entries == 3
    with uow_factory() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":  # as the superuser, past the append-only trigger
            uow.session.execute(text("SET LOCAL session_replication_role = replica"))
        uow.session.execute(update(AuditRow).where(AuditRow.seq == 2).values(action="unit.delete"))
        uow.commit()
    with uow_factory() as uow:
        check = audit.verify(uow.session)
    assert not check.ok and check.broken_at == 2


def test_a_rejected_write_leaves_no_audit_entry(uow_factory):
    import pytest

    from nofei.errors import InputRejected

    with pytest.raises(InputRejected), uow_factory() as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data={**unit_payload(), "district": "000000"})
    with uow_factory() as uow:
        assert audit.verify(uow.session).entries == 0
