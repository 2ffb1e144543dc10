"""Demo members for the simulated till: enough to show a tier, a balance and a newcomer."""

from __future__ import annotations

from pos_loyalty.store import LocalStore

DEMO_MEMBERS: tuple[tuple[str, str, str, str | None, int], ...] = (
    # member_id, name, card_id, tier, opening balance
    ("M-1001", "Ada Lovelace", "C-1001", "Gold", 120),
    ("M-1002", "Grace Hopper", "C-1002", "Silver", 40),
    ("M-1003", "Alan Turing", "C-1003", None, 0),
)


def seed_demo_members(store: LocalStore) -> int:
    """Add the demo members if the store has none; returns how many were added."""
    if store.member_count() > 0:
        return 0
    for member_id, name, card_id, tier, balance in DEMO_MEMBERS:
        store.add_member(member_id, name, card_id=card_id, tier=tier, balance=balance)
    return len(DEMO_MEMBERS)
