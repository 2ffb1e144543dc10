"""The central store as one object: every resource's queries over one database.

The queries live beside their routers, one module per resource (``terminals``, ``members``,
``programs``, ``ledger``, ``review``, ``stores``, ``sync`` under ``pos_loyalty/server/``),
each a set of functions taking a :class:`~pos_loyalty.server.db.Database`. The CLI, the
routes and the tests hold a :class:`CentralStore`, which is that database with those
functions bound as methods, so ``store.push(...)`` and ``ledger.push(store, ...)`` are the
same call.
"""

from __future__ import annotations

from pos_loyalty.server.db import Database, aware, secure_sqlite_file, utcnow
from pos_loyalty.server.ledger import queries as ledger
from pos_loyalty.server.ledger.queries import (
    CENTRAL_TERMINAL,
    KINDS,
    EventIn,
    EventResult,
    PushOutcome,
)
from pos_loyalty.server.members import queries as members
from pos_loyalty.server.programs import queries as programs
from pos_loyalty.server.review import queries as review
from pos_loyalty.server.review.queries import HeldRow, IntegrityRow, ReconcileReport
from pos_loyalty.server.sales import queries as sales
from pos_loyalty.server.stores import queries as stores
from pos_loyalty.server.sync import queries as sync
from pos_loyalty.server.sync.queries import ENTITIES, PullPage, parse_cursor
from pos_loyalty.server.terminals import queries as terminal_q
from pos_loyalty.server.terminals.queries import BAD_CREDENTIAL, Enrollment, TerminalAuth

__all__ = [
    "BAD_CREDENTIAL", "CENTRAL_TERMINAL", "ENTITIES", "KINDS", "CentralStore", "Enrollment",
    "EventIn", "EventResult", "HeldRow", "IntegrityRow", "PullPage", "PushOutcome",
    "ReconcileReport", "TerminalAuth", "aware", "parse_cursor", "secure_sqlite_file",
    "utcnow",
]


class CentralStore(Database):
    """The chain's source of truth, over SQLite (one shop) or PostgreSQL (a chain)."""

    # terminals
    add_terminal = terminal_q.add_terminal
    enroll = terminal_q.enroll
    revoke_terminal = terminal_q.revoke_terminal
    terminals = terminal_q.terminals
    list_terminals = terminal_q.list_terminals
    terminal_health = terminal_q.terminal_health
    record_heartbeat = terminal_q.record_heartbeat
    authenticate = terminal_q.authenticate
    # members, cards, tiers
    add_member = members.add_member
    update_member = members.update_member
    get_member = members.get_member
    search_members = members.search_members
    list_members = members.list_members
    export_members = members.export_members
    import_members = members.import_members
    set_card_status = members.set_card_status
    issue_card = members.issue_card
    replace_card = members.replace_card
    issue_blank_cards = members.issue_blank_cards
    merge_members = members.merge_members
    set_tier = members.set_tier
    # programs
    publish_program = programs.publish
    activate_programs = programs.activate_due
    program_versions = programs.list_versions
    program_version = programs.get_version
    live_program = programs.live_for
    rollback_program = programs.rollback
    diff_programs = programs.diff_versions
    dry_run_program = programs.dry_run
    # ledger
    push = ledger.push
    adjust_points = ledger.adjust_points
    balance = ledger.balance
    ledger_sum = ledger.ledger_sum
    ledger_count = ledger.ledger_count
    # sales pushed by terminals (reports and replays only, never balances)
    push_sales = sales.push
    central_baskets = sales.central_baskets
    # store policies
    policy = stores.policy
    set_policy = stores.set_policy
    # held events, integrity, reconciliation
    held = review.held
    resolve_held = review.resolve_held
    integrity = review.integrity
    reconcile = review.reconcile
    # delta pull
    pull = sync.pull
    counts = sync.counts
