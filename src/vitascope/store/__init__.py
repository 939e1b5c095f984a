"""Database models, migrations and blob storage."""
