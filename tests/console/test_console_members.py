"""The members page over real HTTP: points adjusted with a reason, a lost card blocked."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from pos_loyalty.store.central_models import Card, LedgerEvent
from tests.conftest import Central
from tests.console.conftest import ConsoleClient, UserFactory

Clients = Callable[[], ConsoleClient]
PAGE = "/console/members"


class TestMembers:
    def test_adjust_needs_a_reason_and_lands_in_the_ledger(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """+50 with a reason moves the balance (= the ledger's sum) and the ledger row names
        the reason and the user; 0 points, no reason or an unknown member are refused beside
        their fields; the audit log has the change."""
        central.store.add_member("M1", "Ann")
        users("ada")
        c = client()
        c.sign_in("ada")
        bad = c.post_form(PAGE, f"{PAGE}/adjust", {"member_id": "M1", "points": "0",
                                                   "reason": ""})
        assert bad.status_code == 400
        assert 'href="#points"' in bad.text and 'href="#reason"' in bad.text
        assert 'value="M1"' in bad.text
        unknown = c.post_form(PAGE, f"{PAGE}/adjust", {"member_id": "M-NONE", "points": "5",
                                                       "reason": "x"})
        assert unknown.status_code == 400 and "unknown member" in unknown.text
        ok = c.post_form(PAGE, f"{PAGE}/adjust", {"member_id": "M1", "points": "+50",
                                                  "reason": "late delivery"})
        assert ok.status_code == 303
        assert central.store.balance("M1") == 50 == central.store.ledger_sum("M1")
        with central.store.engine.connect() as conn:
            refs = conn.execute(select(LedgerEvent.txn_ref)).scalars().all()
        assert refs == ["late delivery (by ada)"]
        audit = c.http.get("/console/audit").text
        assert "points.adjust" in audit and "M1" in audit

    def test_block_a_lost_card(self, central: Central, users: UserFactory,
                               client: Clients) -> None:
        """A known card is blocked (terminals learn it by pull); an unknown one is an error
        beside the field."""
        central.store.add_member("M1", "Ann", card_id="C-1")
        users("mia", "manager", ("S-A",))
        c = client()
        c.sign_in("mia")
        assert c.post_form(PAGE, f"{PAGE}/block-card", {"card_id": "C-9"}).status_code == 400
        assert c.post_form(PAGE, f"{PAGE}/block-card", {"card_id": "C-1"}).status_code == 303
        with central.store.engine.connect() as conn:
            assert conn.execute(select(Card.status)).scalar_one() == "blocked"

    def test_read_only_user_gets_no_forms_and_403(self, central: Central,
                                                  users: UserFactory,
                                                  client: Clients) -> None:
        """A read-only user sees no change form, and a post (with a valid token) is 403."""
        central.store.add_member("M1", "Ann")
        users("rita", "readonly")
        c = client()
        c.sign_in("rita")
        assert "/adjust" not in c.http.get(PAGE).text
        r = c.http.post(f"{PAGE}/adjust", data={
            "csrf_token": c.token_for(f"{PAGE}/adjust"), "member_id": "M1", "points": "5",
            "reason": "x"})
        assert r.status_code == 403 and central.store.balance("M1") == 0
