"""Console accounts on the real central database: hashes, roles, sessions, audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from pos_loyalty.server.console import passwords
from pos_loyalty.server.console.accounts import (
    ABSOLUTE,
    IDLE,
    AccountError,
    ConsoleAccounts,
    Principal,
)
from pos_loyalty.store.central_models import ConsoleSession, ConsoleUser
from tests.conftest import Central
from tests.console.conftest import PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 8, 0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(central: Central) -> tuple[ConsoleAccounts, Clock]:
    clock = Clock()
    return ConsoleAccounts(central.store, clock=clock), clock


class TestUsers:
    def test_password_is_kept_as_an_argon2id_hash(self, accounts: ConsoleAccounts) -> None:
        """The stored value is an Argon2id hash that verifies the password, not the password."""
        accounts.add_user("ada", PASSWORD, "admin", actor="test")
        with accounts.engine.connect() as conn:
            stored = conn.execute(select(ConsoleUser.password_hash)).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert accounts.check_password("ada", PASSWORD) == Principal("ada", "", "admin")
        assert accounts.check_password("ADA", PASSWORD) is not None  # names are lower case
        assert accounts.check_password("ada", PASSWORD + "x") is None
        assert accounts.check_password("nobody", PASSWORD) is None

    @pytest.mark.parametrize(("name", "password", "role", "stores", "says"), [
        ("", PASSWORD, "admin", (), "user name"),
        ("has space", PASSWORD, "admin", (), "user name"),
        ("ada", "short", "admin", (), "at least 10"),
        ("ada", "x" * 300, "admin", (), "at most 256"),
        ("ada", PASSWORD, "owner", (), "role must be one of"),
        ("ada", PASSWORD, "manager", (), "needs at least one store"),
        ("ada", PASSWORD, "admin", ("S1",), "only a store manager"),
    ])
    def test_bad_accounts_are_refused_with_a_reason(
            self, accounts: ConsoleAccounts, name: str, password: str, role: str,
            stores: tuple[str, ...], says: str) -> None:
        """Each invalid request names what is wrong, and no account is made."""
        with pytest.raises(AccountError, match=says):
            accounts.add_user(name, password, role, actor="test", stores=stores)
        assert accounts.users() == []

    def test_a_taken_name_is_refused(self, accounts: ConsoleAccounts) -> None:
        """Adding a user twice is one clear error, not a database failure."""
        accounts.add_user("ada", PASSWORD, "readonly", actor="test")
        with pytest.raises(AccountError, match="already exists"):
            accounts.add_user("Ada", PASSWORD, "admin", actor="test")

    def test_manager_sees_and_changes_only_their_stores(self,
                                                        accounts: ConsoleAccounts) -> None:
        """A manager of S1 may see and change S1, not S2; read-only sees both, changes none."""
        accounts.add_user("m", PASSWORD, "manager", actor="test", stores=["S1"])
        accounts.add_user("r", PASSWORD, "readonly", actor="test")
        m = accounts.check_password("m", PASSWORD)
        r = accounts.check_password("r", PASSWORD)
        assert m is not None and r is not None
        assert (m.can_see_store("S1"), m.can_change_store("S1")) == (True, True)
        assert (m.can_see_store("S2"), m.can_change_store("S2")) == (False, False)
        assert (r.can_see_store("S2"), r.can_change_store("S2")) == (True, False)
        assert not r.can_change_members and m.can_change_members


class TestSessions:
    def test_session_lives_until_idle_or_absolute_deadline(
            self, clocked: tuple[ConsoleAccounts, Clock]) -> None:
        """A session is found by its token while in use, ends after IDLE without use and
        after ABSOLUTE in any case; only the token's hash is stored."""
        accounts, clock = clocked
        accounts.add_user("ada", PASSWORD, "admin", actor="test")
        p = accounts.check_password("ada", PASSWORD)
        assert p is not None
        token, _ = accounts.open_session(p)
        with accounts.engine.connect() as conn:
            assert token not in str(conn.execute(select(ConsoleSession.token_hash)).all())
        assert accounts.session(token) is not None
        assert accounts.session(token + "x") is None
        step = IDLE - timedelta(minutes=5)
        while clock.now + step < datetime(2026, 11, 30, 8, 0) + ABSOLUTE:
            clock.now += step
            assert accounts.session(token) is not None, clock.now
        clock.now = datetime(2026, 11, 30, 8, 0) + ABSOLUTE
        assert accounts.session(token) is None
        t2, _ = accounts.open_session(p)
        clock.now += IDLE
        assert accounts.session(t2) is None

    def test_disabling_or_a_new_password_ends_sessions(self,
                                                       accounts: ConsoleAccounts) -> None:
        """A disabled account's session is gone at once, and so is one after a reset."""
        accounts.add_user("ada", PASSWORD, "admin", actor="test")
        p = accounts.check_password("ada", PASSWORD)
        assert p is not None
        token, _ = accounts.open_session(p)
        accounts.set_active("ada", False, actor="boss")
        assert accounts.session(token) is None
        assert accounts.check_password("ada", PASSWORD) is None
        accounts.set_active("ada", True, actor="boss")
        token, _ = accounts.open_session(p)
        accounts.set_password("ada", "another long passphrase", actor="boss")
        assert accounts.session(token) is None
        assert accounts.check_password("ada", "another long passphrase") is not None


class TestAudit:
    def test_changes_are_logged_with_before_and_after(self, accounts: ConsoleAccounts) -> None:
        """Adding and disabling a user leave who/what/before/after rows, newest first."""
        accounts.add_user("ada", PASSWORD, "admin", actor="cli:root")
        accounts.set_active("ada", False, actor="boss")
        admin = Principal("x", "", "admin")
        rows = accounts.audit_log(admin)
        assert [(r.actor, r.action, r.target) for r in rows] == [
            ("boss", "user.disable", "ada"), ("cli:root", "user.add", "ada")]
        assert json.loads(rows[0].before) == {"active": True}
        assert json.loads(rows[0].after) == {"active": False}

    def test_manager_reads_only_their_stores_entries(self, accounts: ConsoleAccounts) -> None:
        """Store-scoped entries are shown to that store's manager only."""
        accounts.audit("a", "terminal.revoke", "T1", store_id="S1")
        accounts.audit("a", "terminal.revoke", "T2", store_id="S2")
        m = Principal("m", "", "manager", frozenset({"S1"}))
        assert [r.target for r in accounts.audit_log(m)] == ["T1"]


def test_dummy_verification_spends_the_same_work() -> None:
    """An unknown user is checked against a real hash, so it fails, but only after hashing."""
    assert passwords.verify(None, PASSWORD) is False
    assert passwords.verify(passwords.hash_password(PASSWORD), PASSWORD) is True
