"""Push the sales outbox to central: summaries of sales, refunds and voids, exactly once.

Central answers every record (stored, duplicate or conflict); only records it answered are
marked pushed, so a push cut by an outage or a kill is simply sent again and central's key
makes the repeat a duplicate. Central refusing a batch outright (a 4xx) stops the sales push
for this round and is reported, but never the ledger push or the pull: the figures feed
reports only, a balance never waits for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pos_loyalty.errors import SyncError
from pos_loyalty.store import sale_outbox

if TYPE_CHECKING:
    from pos_loyalty.store.local import LocalStore
    from pos_loyalty.sync.client import SyncClient, SyncReport

MAX_ROUNDS = 10_000


def push_sales(store: LocalStore, client: SyncClient, report: SyncReport) -> None:
    """Push every unpushed summary, oldest first, in batches of ``sale_outbox.MAX_PUSH``."""
    for _ in range(MAX_ROUNDS):
        pending = sale_outbox.unpushed(store.engine)
        if not pending:
            return
        try:
            answer = client.push_sales([p.body for p in pending])
        except SyncError as exc:
            if exc.status in (413, 422):  # this batch, not the link or the credential
                report.sales_error = exc.reason  # kept for the next round; never dropped
                return
            raise
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(pending):
            raise SyncError("central's sales answer does not match the batch")
        done = [pending[r["index"]].id for r in results
                if isinstance(r, dict) and isinstance(r.get("index"), int)
                and 0 <= r["index"] < len(pending)
                and r.get("status") in ("stored", "duplicate", "conflict")]
        sale_outbox.mark_pushed(store.engine, done)
        report.sales_pushed += len(done)
        report.sales_conflicts += sum(1 for r in results if isinstance(r, dict)
                                      and r.get("status") == "conflict")
        if len(done) < len(pending):
            raise SyncError("central did not answer every sale of the batch")
        if len(pending) < sale_outbox.MAX_PUSH:
            return
