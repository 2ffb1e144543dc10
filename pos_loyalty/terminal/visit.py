"""The receipt's short link to one question about the visit (central's ``/v/<sale>``).

A member's sale that earned has an earn ledger event (a UUIDv7 nobody can guess); once it
has reached central, ``<visit_url><event id without dashes>`` asks the buyer "how likely are
you to recommend us?" about that store. ``points.awarded`` carries the link when ``[phone]
visit_url`` is set; the till may print it, or its QR code, on the receipt.
"""

from __future__ import annotations

from pos_loyalty.ids import link_part
from pos_loyalty.store import LocalStore
from pos_loyalty.store import phone as phone_store
from pos_loyalty.store.sales import fit_ref


def visit_link(store: LocalStore, base: str | None, pos_id: str, txn_id: str,
               member_id: str | None) -> str | None:
    """The sale's visit link, or None (no base configured, no member, nothing earned)."""
    if base is None or member_id is None:
        return None
    event_id = phone_store.earn_event_id(store.engine, member_id, fit_ref(f"{pos_id}/{txn_id}"))
    if event_id is None:
        return None
    return base.rstrip("/") + "/" + link_part(event_id)
