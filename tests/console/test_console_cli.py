"""`pos-loyalty admin user ...`: the first administrator and account upkeep from the shell."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.console.accounts import ConsoleAccounts, Principal

PASSWORD = "first admin passphrase"


def _run(db: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["admin", "user", *args, "--db", db], input=stdin)
    return result.exit_code, result.output


def _accounts(db: str) -> tuple[CentralStore, ConsoleAccounts]:
    store = CentralStore(db)
    return store, ConsoleAccounts(store)


class TestUserCommands:
    def test_first_admin_from_stdin_can_sign_in(self, tmp_path: Path) -> None:
        """`user add NAME --role admin --password-stdin` makes an account that verifies,
        and the audit log names the shell user who made it."""
        db = f"sqlite:///{tmp_path / 'c.db'}"
        code, out = _run(db, "add", "root", "--role", "admin", "--password-stdin",
                         stdin=PASSWORD + "\n")
        assert code == 0, out
        assert "user root added (admin)" in out
        store, accounts = _accounts(db)
        try:
            assert accounts.check_password("root", PASSWORD) == Principal("root", "", "admin")
            entry = accounts.audit_log(Principal("x", "", "admin"))[0]
            assert entry.action == "user.add" and entry.actor.startswith("cli")
        finally:
            store.close()

    def test_prompt_asks_twice(self, tmp_path: Path) -> None:
        """Without --password-stdin the password is prompted for, hidden, and confirmed."""
        db = f"sqlite:///{tmp_path / 'c.db'}"
        code, out = _run(db, "add", "mia", "--role", "manager", "--store", "S-A",
                         "--store", "S-B", stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert code == 0, out
        assert "for S-A, S-B" in out and PASSWORD not in out

    def test_refusals_are_one_line(self, tmp_path: Path) -> None:
        """A short password, a manager without a store or a taken name: exit 1, one line."""
        db = f"sqlite:///{tmp_path / 'c.db'}"
        code, out = _run(db, "add", "root", "--role", "admin", "--password-stdin",
                         stdin="short\n")
        assert code == 1 and "at least 10 characters" in out and "Traceback" not in out
        code, out = _run(db, "add", "mia", "--role", "manager", "--password-stdin",
                         stdin=PASSWORD + "\n")
        assert code == 1 and "needs at least one store" in out
        _run(db, "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        code, out = _run(db, "add", "root", "--role", "readonly", "--password-stdin",
                         stdin=PASSWORD + "\n")
        assert code == 1 and "already exists" in out
        code, out = _run(db, "add", "x", "--role", "owner", "--password-stdin", stdin="")
        assert code == 2 and "owner" in out

    def test_list_disable_and_password(self, tmp_path: Path) -> None:
        """`list` shows a header and each account; `disable` stops sign-in; `password`
        sets a new one."""
        db = f"sqlite:///{tmp_path / 'c.db'}"
        _run(db, "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        _run(db, "add", "mia", "--role", "manager", "--store", "S-A", "--password-stdin",
             stdin=PASSWORD + "\n")
        code, out = _run(db, "list")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split("\t")[:3] == ["USER", "ROLE", "STATUS"]
        assert lines[1].startswith("mia\tmanager\tactive\tS-A")
        assert _run(db, "disable", "mia")[0] == 0
        assert "mia\tmanager\tdisabled" in _run(db, "list")[1]
        assert _run(db, "disable", "nobody")[0] == 1
        assert _run(db, "password", "root", "--password-stdin",
                    stdin="a brand new passphrase\n")[0] == 0
        store, accounts = _accounts(db)
        try:
            assert accounts.check_password("root", "a brand new passphrase") is not None
            assert accounts.check_password("mia", PASSWORD) is None
        finally:
            store.close()
