"""Delta pull for terminals."""
