"""The members page over real HTTP: points adjusted with a reason, a lost card blocked."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from pos_loyalty.store.central_models import Card, LedgerEvent
from tests.conftest import Central
from tests.console.conftest import ConsoleClient, UserFactory, form_tokens

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


class TestSearchAndHistory:
    def test_search_by_id_card_or_name_links_to_the_member(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """A name prefix (any case), a card prefix and a member id prefix each find the
        member; the member's page shows its cards and its ledger rows, newest first."""
        central.store.add_member("M-100", "Dana Levi", card_id="C-555")
        central.store.add_member("M-200", "Noa", card_id="C-777")
        central.store.adjust_points("M-100", 40, "welcome gift")
        central.store.adjust_points("M-100", -15, "wrong scan")
        users("rita", "readonly")
        c = client()
        c.sign_in("rita")
        for q in ("dana", "C-55", "M-1"):
            page = c.http.get(PAGE, params={"q": q}).text
            found = page[page.index('id="found"'):]
            assert 'href="/console/members/M-100"' in found and "M-200" not in found, q
        assert "No member matches." in c.http.get(PAGE, params={"q": "zzz"}).text
        detail = c.http.get(f"{PAGE}/M-100").text
        assert '<dd id="balance">25</dd>' in detail and "C-555" in detail
        history = detail[detail.index('id="history"'):]
        assert history.index("wrong scan") < history.index("welcome gift")
        assert "-15" in history and "+40" in history
        assert "/replace-card" not in detail  # read-only: no forms
        assert c.http.get(f"{PAGE}/M-NONE").status_code == 404
        assert c.http.get(f"{PAGE}/bad%20id").status_code == 404


class TestCards:
    def test_replace_a_lost_card_keeps_the_balance(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """The lost card is blocked, the new one is the member's and active, the balance
        is untouched; a taken new number is refused beside its field; the audit log has
        it."""
        central.store.add_member("M1", "Ann", card_id="C-1")
        central.store.add_member("M2", "Bob", card_id="C-2")
        central.store.adjust_points("M1", 70, "gift")
        users("mia", "manager", ("S-A",))
        c = client()
        c.sign_in("mia")
        action = f"{PAGE}/M1/replace-card"
        taken = c.post_form(f"{PAGE}/M1", action, {"lost_card": "C-1", "new_card": "C-2"})
        assert taken.status_code == 400 and "already belongs to member M2" in taken.text
        not_hers = c.post_form(f"{PAGE}/M1", action, {"lost_card": "C-2", "new_card": "C-3"})
        assert not_hers.status_code == 400
        ok = c.post_form(f"{PAGE}/M1", action, {"lost_card": "C-1", "new_card": "C-9"})
        assert ok.status_code == 303
        m = central.store.get_member("M1")
        assert {(x.card_id, x.status) for x in m.cards} == {("C-1", "blocked"),
                                                            ("C-9", "active")}
        assert m.balance == 70 == central.store.ledger_sum("M1")
        users("ada")  # member changes belong to no store: the chain's audit log has them
        a = client()
        a.sign_in("ada")
        assert "card.replace" in a.http.get("/console/audit").text

    def test_claim_a_card_first_member(self, central: Central, users: UserFactory,
                                       client: Clients) -> None:
        """An anonymous member from a blank card is claimed with a name and consent; no
        consent or no name is refused and the member stays anonymous."""
        central.store.issue_blank_cards(["B-1"])
        users("ada")
        c = client()
        c.sign_in("ada")
        page = f"{PAGE}/A-B-1"
        assert "Claim this card-first member" in c.http.get(page).text
        bad = c.post_form(page, f"{page}/claim", {"display_name": "Gil"})
        assert bad.status_code == 400 and 'href="#consent"' in bad.text
        assert central.store.get_member("A-B-1").anonymous
        ok = c.post_form(page, f"{page}/claim", {"display_name": "Gil", "consent": "yes",
                                                 "email": "gil@example.com"})
        assert ok.status_code == 303
        m = central.store.get_member("A-B-1")
        assert (m.display_name, m.email, m.anonymous) == ("Gil", "gil@example.com", False)
        assert m.consent_at is not None
        assert "member.claim" in c.http.get("/console/audit").text


class TestMerge:
    def test_merge_asks_for_confirmation_then_moves_cards_and_points(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """The first post only shows what will happen; the confirming post moves the
        source's cards and points to the target, both balances stay sums of their
        ledgers, and the source is marked merged."""
        central.store.add_member("M1", "Ann", card_id="C-1")
        central.store.add_member("M2", "Ann L.", card_id="C-2")
        central.store.adjust_points("M1", 30, "gift")
        central.store.adjust_points("M2", 12, "gift")
        users("ada")
        c = client()
        c.sign_in("ada")
        action = f"{PAGE}/M1/merge"
        itself = c.post_form(f"{PAGE}/M1", action, {"source": "M1"})
        assert itself.status_code == 400
        ask = c.post_form(f"{PAGE}/M1", action, {"source": "M2"})
        assert ask.status_code == 200 and "Confirm the merge" in ask.text
        assert "Member M2 (12 points, 1 cards) is merged into member M1 (30 points)" \
            in ask.text
        assert central.store.get_member("M2").status == "active"  # nothing yet
        token = form_tokens(ask.text)[action]
        done = c.http.post(action, data={"csrf_token": token, "source": "M2",
                                         "confirm": "yes"})
        assert done.status_code == 303
        target, source = central.store.get_member("M1"), central.store.get_member("M2")
        assert target.balance == 42 == central.store.ledger_sum("M1")
        assert source.balance == 0 == central.store.ledger_sum("M2")
        assert (source.status, source.merged_into) == ("merged", "M1")
        assert {x.card_id for x in target.cards} == {"C-1", "C-2"}
        again = c.http.post(action, data={"csrf_token": token, "source": "M2",
                                          "confirm": "yes"})
        assert again.status_code == 400 and "already merged" in again.text
        assert "member.merge" in c.http.get("/console/audit").text
