"""Members and their cards."""
