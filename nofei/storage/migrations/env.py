"""Alembic environment: runs on the connection handed in by ``nofei.storage.migrate``."""

from alembic import context

from nofei.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # offline/autogenerate from the alembic CLI
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///nofei.db")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
