"""`admin card issue` never takes a card from another member silently: it refuses, naming
the holder, and moves it only with --move, written to the audit log."""

from __future__ import annotations

import json

from sqlalchemy import select

from pos_loyalty.store.central_models import AuditEntry, Card
from tests.admin.conftest import Admin


def holder(admin: Admin, card_id: str) -> tuple[str, str | None, str]:
    with admin.store.read() as conn:
        row = conn.execute(select(Card.member_id, Card.uid, Card.status).where(
            Card.card_id == card_id)).one()
    return row.member_id, row.uid, row.status


def audit(admin: Admin) -> list[tuple[str, str, str, dict[str, object], dict[str, object]]]:
    with admin.store.read() as conn:
        return [(r.actor, r.action, r.target, json.loads(r.before), json.loads(r.after))
                for r in conn.execute(select(AuditEntry).order_by(AuditEntry.audit_id))]


class TestCardIssue:
    def test_a_card_another_member_holds_is_refused_naming_them(self, admin: Admin) -> None:
        """One clear line names the holder and the way to move it; nothing changes."""
        admin("member", "add", "M-1", "--card", "C-1", "--uid", "04A1B2C3D4E5F6")
        admin("member", "add", "M-2")
        refused = admin("card", "issue", "M-2", "C-1", ok=False).stderr
        assert "card C-1 already belongs to member M-1" in refused
        assert "--move" in refused
        assert holder(admin, "C-1") == ("M-1", "04A1B2C3D4E5F6", "active")
        assert audit(admin) == []
        again = admin("card", "issue", "M-1", "C-1", ok=False).stderr
        assert "already belongs to member M-1" in again and "--move" not in again

    def test_move_takes_the_card_over_and_is_audited(self, admin: Admin) -> None:
        """--move gives the card to the new member (points stay with the old one) and the
        audit log says who moved it, from whom, to whom."""
        admin("member", "add", "M-1", "--card", "C-1", "--uid", "04A1B2C3D4E5F6",
              "--points", "70")
        admin("member", "add", "M-2")
        admin("card", "block", "C-1")
        out = admin("card", "issue", "M-2", "C-1", "--move").output
        assert "card C-1 moved from member M-1 to member M-2" in out
        assert holder(admin, "C-1") == ("M-2", "04A1B2C3D4E5F6", "active")
        assert admin.store.balance("M-1") == 70 and admin.store.balance("M-2") == 0
        [(actor, action, target, before, after)] = audit(admin)
        assert actor.startswith("cli") and action == "card.move" and target == "card C-1"
        assert before == {"member_id": "M-1", "uid": "04A1B2C3D4E5F6", "status": "blocked"}
        assert after == {"member_id": "M-2", "uid": "04A1B2C3D4E5F6", "status": "active"}

    def test_move_of_an_unknown_card_just_issues_it(self, admin: Admin) -> None:
        """--move on a card nobody holds issues it as usual, with nothing to audit."""
        admin("member", "add", "M-2")
        out = admin("card", "issue", "M-2", "C-7", "--move").output
        assert "card C-7 issued to member M-2" in out
        assert holder(admin, "C-7") == ("M-2", None, "active")
        assert audit(admin) == []
