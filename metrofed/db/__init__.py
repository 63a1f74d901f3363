"""SQLAlchemy plumbing shared by the centre and gateway databases (each service owns its schema)."""
