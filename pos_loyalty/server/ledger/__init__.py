"""The ledger: push with checks, balances, central adjustments."""
