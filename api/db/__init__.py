"""PostgreSQL: pool, migrations, repositories and unit of work (SQL lives here and only here)."""
