"""The central server: FastAPI app over the central store (SQLite or PostgreSQL)."""
