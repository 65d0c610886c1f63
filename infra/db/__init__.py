"""Database adapter: advanced-alchemy configuration, migrations, transactions."""
