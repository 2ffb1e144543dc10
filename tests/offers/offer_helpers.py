"""Shared pieces of the offers tests that run a live central and a terminal."""

from __future__ import annotations

from pos_loyalty.sync.client import SyncClient, SyncReport, run_sync
from tests.conftest import TerminalHandle


def member_coupon_program(name: str, coupon: str) -> str:
    """A program earning 1 pt per 1.00 with one member-bound coupon rule ``winback``;
    ``coupon`` is the rule's label, code and what it gives, as TOML lines."""
    return f'''
[program]
name = "{name}"

[[rule]]
id = "base"
kind = "earn"
label = "Base"
points = 1
per = 100

[[rule]]
id = "winback"
kind = "coupon"
bound = "member"
{coupon}
'''


def sync(t: TerminalHandle) -> SyncReport:
    """One sync round of terminal ``t`` with central, which must succeed."""
    with SyncClient(t.server_url, t.credential) as client:
        report = run_sync(t.local, client)
    assert report.ok, report
    return report
