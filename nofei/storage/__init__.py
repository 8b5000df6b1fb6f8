"""Storage: engine factory, SQLModel tables, unit of work, migrations. Depends on the pure core, never the reverse."""
