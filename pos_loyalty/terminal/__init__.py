"""The terminal: the till session, the service that answers the till, the daemon around it."""
