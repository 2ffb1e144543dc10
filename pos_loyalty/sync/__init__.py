"""Terminal-side sync: push the ledger outbox, pull deltas, in a background worker."""
