"""The incident store (SQLAlchemy 2 async): models, migrations, writers and readers."""
