"""HTTP edge of the terminal's sync: talks to central, translates every failure to SyncError.

``run_sync`` is one sync round: push the whole outbox in ``terminal_seq`` order (marking
events acked only after central's answer), then, only if that completed, pull each entity
below one horizon. Pulling only after a complete push means no event this terminal still
holds as unacked can already be counted in the balances it pulls.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from pos_loyalty.errors import SyncError
from pos_loyalty.store import offers, sun_counters
from pos_loyalty.store.entities import NAMES as ENTITIES
from pos_loyalty.store.local import LocalStore, PendingEvent
from pos_loyalty.sync.phone import push_phone
from pos_loyalty.sync.policy import offset_sample_ms, smooth_offset_ms
from pos_loyalty.sync.sales import push_sales

MAX_RESPONSE_BYTES = 64 * 1024 * 1024

Progress = Callable[[str, int, int], None]  # (entity, rows done, rows total)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _parse_time(value: Any) -> datetime:
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SyncError(f"central sent a bad server_time {value!r}") from exc
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificates are always verified: against ``ca_file`` (or ``POS_LOYALTY_CA_FILE``)
    when given, else against the system's trust store."""
    ca = ca_file or os.environ.get("POS_LOYALTY_CA_FILE") or None
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise SyncError(f"cannot use CA file {ca}: {exc}") from exc


class SyncClient:
    """Calls to central's HTTP API for one terminal credential (TLS always verified)."""

    def __init__(self, base_url: str, credential: str | None = None, *,
                 timeout: float = 30.0, ca_file: str | None = None) -> None:
        """``timeout`` bounds each request; connecting takes at most 5 s of it."""
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self.base_url = base_url.rstrip("/")
        verify = tls_context(ca_file) if self.base_url.startswith("https://") else True
        # TCP_NODELAY: a push's headers and body are two writes; without it Nagle holds the
        # body until central ACKs the headers, which a delayed ACK can stall for ~40 ms
        transport = httpx.HTTPTransport(verify=verify, socket_options=[
            (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)))
        self.last_offset_sample: int | None = None

    def close(self) -> None:
        self._http.close()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        sent = utcnow()
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.ConnectError as exc:
            if isinstance(exc.__context__, ssl.SSLCertVerificationError) or \
                    "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise SyncError(f"central at {self.base_url} presented a certificate this "
                                f"terminal does not trust (give its CA with --ca-file): "
                                f"{exc}") from exc
            raise SyncError(f"central unreachable at {self.base_url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise SyncError(f"central unreachable at {self.base_url}: {exc}") from exc
        received = utcnow()
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise SyncError("central's answer is too large")
        try:
            body = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SyncError(f"central answered {resp.status_code} without JSON",
                            status=resp.status_code) from exc
        if not isinstance(body, dict):
            raise SyncError("central's answer is not a JSON object", status=resp.status_code)
        if resp.status_code >= 400:
            reason = body.get("reason") or body.get("detail") or resp.reason_phrase
            raise SyncError(f"central refused {path}: {resp.status_code} {reason}",
                            status=resp.status_code)
        if "server_time" in body:
            self.last_offset_sample = offset_sample_ms(sent, received,
                                                       _parse_time(body["server_time"]))
        return body

    def enroll(self, code: str) -> dict[str, Any]:
        """Exchange a one-time code; the credential comes back in the answer."""
        return self._call("POST", "/v1/enroll", json={"code": code})

    def push(self, events: list[PendingEvent], clock_offset_ms: int | None) -> dict[str, Any]:
        payload = {
            "events": [{
                "event_id": e.event_id, "terminal_id": e.terminal_id,
                "terminal_seq": e.terminal_seq, "member_id": e.member_id, "kind": e.kind,
                "points": e.points, "txn_ref": e.txn_ref,
                "terminal_time": e.terminal_time.isoformat(), "offline": e.offline,
            } for e in events],
            "clock_offset_ms": clock_offset_ms,
        }
        return self._call("POST", "/v1/ledger/push", content=json.dumps(payload),
                          headers={"Content-Type": "application/json"})

    def push_sun_counters(self, counters: list[tuple[str, int]]) -> dict[str, Any]:
        return self._call("POST", "/v1/sun/counters", json={
            "counters": [{"uid": uid, "counter": n} for uid, n in counters]})

    def push_sales(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Sale, refund and void summaries (see :mod:`pos_loyalty.sync.sales`)."""
        return self._call("POST", "/v1/sales/push", content=json.dumps(
            {"records": records}, separators=(",", ":")),
            headers={"Content-Type": "application/json"})

    def push_offer_uses(self, uses: list[offers.PendingUse]) -> dict[str, Any]:
        return self._call("POST", "/v1/offers/uses", json={"uses": [
            {"issue_id": u.issue_id, "txn_ref": u.txn_ref, "used_at": u.used_at.isoformat(),
             "discount": u.discount} for u in uses]})

    def push_links(self, links: list[dict[str, str]]) -> dict[str, Any]:
        """Product tags linked to buyers at this terminal (``/v1/phone/links``)."""
        return self._call("POST", "/v1/phone/links", json={"links": links})

    def redeem_coupon(self, body: dict[str, Any]) -> dict[str, Any]:
        """Use a product tag's reorder coupon (``/v1/phone/coupons/redeem``)."""
        return self._call("POST", "/v1/phone/coupons/redeem", json=body)

    def release_coupon(self, body: dict[str, Any]) -> dict[str, Any]:
        """Give back a coupon a sale took and did not use (``/v1/phone/coupons/release``)."""
        return self._call("POST", "/v1/phone/coupons/release", json=body)

    def horizon(self, *, counts: bool = False) -> dict[str, Any]:
        return self._call("GET", "/v1/sync/horizon", params={"counts": counts})

    def pull(self, entity: str, after: str, until: int, limit: int) -> dict[str, Any]:
        return self._call("GET", "/v1/sync/pull", params={
            "entity": entity, "after": after, "until": until, "limit": limit})

    def redeem_hold(self, hold_id: str, member_id: str, points: int, txn_ref: str,
                    replaces: str | None = None) -> dict[str, Any]:
        """Ask central to confirm a redemption and hold its points (sync/online.py)."""
        return self._call("POST", "/v1/redeem/hold", json={
            "hold_id": hold_id, "member_id": member_id, "points": points, "txn_ref": txn_ref,
            "replaces": replaces})

    def redeem_release(self, hold_id: str) -> dict[str, Any]:
        return self._call("POST", "/v1/redeem/release", json={"hold_id": hold_id})

    def heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/terminal/heartbeat", json=body)


Status = Callable[[], dict[str, Any]]
"""The daemon's own state for the heartbeat: program_name, program_version, reader_state,
till_state (any of them)."""


def heartbeat_body(store: LocalStore, report: SyncReport, last_ok: datetime | None,
                   status: Status | None = None) -> dict[str, Any]:
    """What a terminal tells central about itself after a sync round."""
    from pos_loyalty import __version__

    oldest = store.pending_events(1)
    body: dict[str, Any] = {
        "software_version": __version__,
        "outbox_depth": store.pending_count(),
        "oldest_unsent_at": oldest[0].terminal_time.isoformat() if oldest else None,
        "last_sync_ok_at": last_ok.isoformat() if last_ok else None,
        "clock_offset_ms": report.clock_offset_ms,
        "last_error": (report.error or "")[:2000],
        "held_count": report.held,
        "conflict_count": report.conflicts,
    }
    if status is not None:
        extra = status()
        body.update({k: extra[k] for k in ("program_name", "program_version", "reader_state",
                                           "till_state") if k in extra})
    return body


@dataclass
class SyncReport:
    """What one sync round did; ``ok`` False with ``error`` when it stopped early."""

    ok: bool = True
    error: str | None = None
    pushed: int = 0
    stored: int = 0
    duplicates: int = 0
    held: int = 0  # stored by central but not applied until store IT releases them
    conflicts: int = 0  # ids central already holds with other content (listed for review)
    problems: list[str] = field(default_factory=list)  # "event <id>: <status>: <reason>"
    acked_seq: int = 0
    overdrafts: int = 0
    flagged: int = 0
    pulled: dict[str, int] = field(default_factory=dict)
    clock_offset_ms: int | None = None
    pending_after: int = 0
    sales_pushed: int = 0  # sale summaries central answered this round
    sales_conflicts: int = 0
    sales_error: str | None = None  # central refused a batch of them (kept, sent again)


def run_sync(store: LocalStore, client: SyncClient, *, batch: int = 1000, page: int = 5000,
             progress: Progress | None = None, now: Callable[[], datetime] = utcnow,
             max_pushes: int = 1_000_000) -> SyncReport:
    """One round: push everything pending, then pull every entity.

    Raises SyncError (central unreachable, refusing, or answering nonsense) or StoreError.
    """
    try:
        return _run_sync(store, client, batch, page, progress, now, max_pushes)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise SyncError(f"central sent a malformed answer: {exc!r}") from exc


def _run_sync(store: LocalStore, client: SyncClient, batch: int, page: int,
              progress: Progress | None, now: Callable[[], datetime],
              max_pushes: int) -> SyncReport:
    report = SyncReport()
    ident = store.sync_identity()
    offset = ident.clock_offset_ms if ident.last_sync_at is not None else None
    for _ in range(max_pushes):
        events = store.pending_events(batch)
        if not events:
            break
        answer = client.push(events, offset)
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(events):
            raise SyncError("central's push answer does not match the batch")
        if not all(isinstance(r, dict) for r in results):
            raise SyncError("central's push answer holds a non-object result")
        sent = {e.event_id for e in events}
        # held and conflict are answers too: central has the event (or the review entry),
        # so sending it again would change nothing
        acked = [r["event_id"] for r in results if r.get("event_id") in sent
                 and r.get("status") in ("stored", "duplicate", "held", "conflict")]
        store.mark_acked(acked)
        report.pushed += len(events)
        report.stored += sum(1 for r in results if r.get("status") == "stored")
        report.duplicates += sum(1 for r in results if r.get("status") == "duplicate")
        for r in results:
            if r.get("status") in ("held", "conflict"):
                if r["status"] == "held":
                    report.held += 1
                else:
                    report.conflicts += 1
                if len(report.problems) < 100:
                    report.problems.append(f"event {r.get('event_id')}: {r['status']}: "
                                           f"{r.get('reason', '')}")
        report.flagged += sum(1 for r in results if r.get("flags"))
        report.overdrafts += int(answer.get("overdrafts", 0))
        report.acked_seq = int(answer.get("acked_seq", 0))
        if client.last_offset_sample is not None:
            offset = smooth_offset_ms(offset, client.last_offset_sample)
        if len(acked) < len(events):
            raise SyncError("central did not acknowledge every event of the batch")
    push_sun_counters(store, client)
    push_sales(store, client, report)
    push_offer_uses(store, client, report)
    for problem in push_phone(store.engine, client):  # tag links, offline coupons
        report.conflicts += 1
        if len(report.problems) < 100:
            report.problems.append(problem)
    hz = client.horizon(counts=progress is not None)
    until = int(hz["until"])
    totals: dict[str, int] = hz.get("counts") or {}
    cursors = store.pull_cursors()
    store.bulk_load_indexes(present=True)  # repairs a bootstrap cut short by a crash
    first_bootstrap = not any(cursors.values()) and store.member_count() == 0
    if first_bootstrap:
        store.bulk_load_indexes(present=False)
    try:
        _pull_all(store, client, report, cursors, until, totals, page, progress, now)
    finally:
        if first_bootstrap:
            store.bulk_load_indexes(present=True)
    if client.last_offset_sample is not None:
        offset = smooth_offset_ms(offset, client.last_offset_sample)
    report.clock_offset_ms = offset
    store.record_sync(now=now(), clock_offset_ms=offset)
    report.pending_after = store.pending_count()
    return report


def push_sun_counters(store: LocalStore, client: SyncClient) -> None:
    """Tell central the SUN read counters accepted here, so every terminal refuses replays."""
    while True:
        counters = sun_counters.unpushed(store.engine)
        if not counters:
            return
        client.push_sun_counters(counters)
        sun_counters.mark_pushed(store.engine, counters)
        if len(counters) < sun_counters.MAX_PUSH:
            return


def push_offer_uses(store: LocalStore, client: SyncClient, report: SyncReport) -> None:
    """Tell central which offers this terminal's sales used (each counts once chain-wide;
    a use of an offer already used elsewhere is held there for review). A batch central
    refuses (or a central without offers) keeps the uses queued and never stops the
    ledger push or the pull."""
    while True:
        uses = offers.unpushed_uses(store.engine)
        if not uses:
            return
        try:
            results = client.push_offer_uses(uses).get("results")
        except SyncError as exc:
            if exc.status in (404, 413, 422):  # this batch or an older central, not the link:
                report.problems.append(f"offer uses not pushed: {exc}")  # kept for later
                return
            raise
        if not isinstance(results, list) or len(results) != len(uses):
            raise SyncError("central's answer to the offer uses does not match them")
        for use, result in zip(uses, results, strict=True):
            if result in ("conflict", "unknown") and len(report.problems) < 100:
                report.problems.append(f"offer {use.issue_id}: {result}")
        offers.mark_pushed(store.engine, [u.issue_id for u in uses])
        if len(uses) < offers.MAX_PUSH:
            return


def _pull_all(store: LocalStore, client: SyncClient, report: SyncReport,
              cursors: dict[str, str], until: int, totals: dict[str, int], page: int,
              progress: Progress | None, now: Callable[[], datetime]) -> None:
    # The next page is fetched while the current one is written: the cursor of page n+1 is
    # known as soon as page n arrives, so network and SQLite work overlap.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prefetch") as pool:
        for entity in ENTITIES:
            after = cursors.get(entity, "")
            done = 0
            if progress is not None:
                progress(entity, 0, int(totals.get(entity, 0)))
            pending: Future[dict[str, Any]] | None = pool.submit(
                client.pull, entity, after, until, page)
            while pending is not None:
                body = pending.result()
                rows = body.get("rows")
                columns = body.get("columns")
                if not isinstance(rows, list) or not isinstance(columns, list):
                    raise SyncError(f"central's {entity} page is malformed")
                after = str(body.get("after", after))
                pending = (pool.submit(client.pull, entity, after, until, page)
                           if body.get("more") else None)
                done += store.apply_pull(entity, columns, rows, after, now())
                if progress is not None:
                    progress(entity, done, max(done, int(totals.get(entity, 0))))
            report.pulled[entity] = done
