"""Alembic migrations: central and terminal schemas match the models, old stores upgrade."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from pos_loyalty.migrations import current_revision, upgrade_central, upgrade_terminal
from pos_loyalty.store.central_models import CentralBase
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.models import Base
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import REPO, schema_head
from tests.tillsales import ring_up

# made by migration c0004 on PostgreSQL only (byte-order prefix search, see
# server/members/queries.py); the models cannot declare an index for one dialect
PG_ONLY_INDEXES = {"ix_members_id_c", "ix_members_name_key_c", "ix_cards_card_id_c"}


def _diff(url: str, metadata: object) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return [d for d in compare_metadata(ctx, metadata)  # type: ignore[arg-type]
                    if not (isinstance(d, tuple) and "alembic_version" in str(d))
                    and not (isinstance(d, tuple) and d[0] == "remove_index"
                             and d[1].name in PG_ONLY_INDEXES)]
    finally:
        engine.dispose()


class TestCentralMigrations:
    def test_migrated_schema_matches_the_models(self, central_url: str) -> None:
        """After upgrade the database has exactly the tables and columns the models declare."""
        assert current_revision(central_url) == schema_head("central")
        assert _diff(central_url, CentralBase.metadata) == []

    def test_upgrade_is_idempotent_and_keeps_data(self, central_url: str) -> None:
        """Running the upgrade again on a populated database changes nothing."""
        from pos_loyalty.server.central import CentralStore

        store = CentralStore(central_url)
        store.add_member("M1", "Ann", card_id="C1")
        upgrade_central(central_url)
        assert store.list_terminals() == [] and store.counts(store.horizon())["members"] == 1
        store.close()

    def test_a_database_at_c0010_from_before_c0007_and_c0008_gets_their_tables(
            self, central_url: str) -> None:
        """c0007 and c0008 came in below c0010 after c0010 had been the head: a database
        that was at c0010 then (no sales, no redeem holds) gets their tables on upgrade."""
        engine = create_engine(central_url)
        try:
            with engine.begin() as conn:
                for table in ("sale_lines", "sales", "redeem_holds"):
                    conn.execute(text(f"DROP TABLE {table}"))
                conn.execute(text("UPDATE alembic_version SET version_num = 'c0010'"))
        finally:
            engine.dispose()
        upgrade_central(central_url)
        assert current_revision(central_url) == schema_head("central")
        assert _diff(central_url, CentralBase.metadata) == []

    @pytest.mark.slow(seconds=10)
    def test_db_upgrade_command(self, tmp_path: Path) -> None:
        """`pos-loyalty db upgrade --central URL` migrates a fresh database and says so."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-m", "pos_loyalty", "db", "upgrade",
                              "--central", url], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert schema_head("central") in out.stdout
        bad = subprocess.run([sys.executable, "-m", "pos_loyalty", "db", "upgrade",
                              "--central", "nosuchdb://x"], capture_output=True, text=True,
                             env=env)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert "invalid database URL" in bad.stderr


class TestTerminalMigrations:
    def test_fresh_terminal_database_matches_the_models(self, tmp_path: Path) -> None:
        """A new terminal database migrated from nothing equals the local models."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        assert current_revision(url) == schema_head("terminal")
        assert _diff(url, Base.metadata) == []

    def test_a_store_at_t0009_from_before_t0006_to_t0008_gets_what_they_make(
            self, tmp_path: Path) -> None:
        """t0006 to t0008 came in below t0009 after t0009 had been the head: a store that
        was at t0009 then (no sale outbox, no holds on open sales, no tag links) gets them on
        upgrade, and then rings sales up."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                for table in ("sale_outbox", "tag_links", "tag_coupons"):
                    conn.execute(text(f"DROP TABLE {table}"))
                for column in ("hold_id", "hold_points"):
                    conn.execute(text(f"ALTER TABLE open_sales DROP COLUMN {column}"))
                conn.execute(text("UPDATE alembic_version SET version_num = 't0009'"))
        finally:
            engine.dispose()
        upgrade_terminal(url)
        assert current_revision(url) == schema_head("terminal")
        assert _diff(url, Base.metadata) == []
        store = LocalStore(url, terminal_id="T-OLD")
        try:
            store.add_member("M1", "Ann", card_id="C1")
            reply = ring_up(TerminalService(store), card_id="C1", pos_id="P", txn_id="1",
                            total=500)
            assert reply["type"] == "points.awarded" and reply["points"] == 5
        finally:
            store.close()

    def test_store_made_by_create_all_is_adopted(self, tmp_path: Path) -> None:
        """A store LocalStore created without Alembic is stamped, not re-created."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        LocalStore(url).close()
        upgrade_terminal(url)
        assert current_revision(url) == schema_head("terminal")
        assert _diff(url, Base.metadata) == []

    def test_baseline_store_gains_sync_columns_and_keeps_its_rows(self, tmp_path: Path) -> None:
        """A pre-sync terminal database is altered in batch mode with every row kept."""
        from alembic import command

        from pos_loyalty.migrations import _config

        url = f"sqlite:///{tmp_path / 't.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            command.upgrade(_config("terminal", conn), "t0001")
            conn.execute(text("INSERT INTO terminal_state (id, terminal_id, next_seq) "
                              "VALUES (1, 'T-OLD', 7)"))
            conn.execute(text("INSERT INTO members (member_id, display_name, balance, "
                              "lifetime_spend, visits) VALUES ('M1', 'Ann', 42, 0, 0)"))
        engine.dispose()
        upgrade_terminal(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            cols = {c["name"] for c in inspect(conn).get_columns("terminal_state")}
            state = conn.execute(text("SELECT terminal_id, next_seq, clock_offset_ms, "
                                      "pull_cursor FROM terminal_state")).one()
            bal = conn.execute(text("SELECT balance FROM members")).scalar_one()
        engine.dispose()
        assert {"credential", "clock_offset_ms", "pull_cursor"} <= cols
        assert tuple(state) == ("T-OLD", 7, 0, "{}") and bal == 42
        store = LocalStore(url)
        assert store.terminal_id == "T-OLD"
        store.add_member("M2", "Bo", card_id="C2")
        reply = ring_up(TerminalService(store), card_id="C2", pos_id="P", txn_id="1",
                        total=500)
        assert reply["type"] == "points.awarded" and reply["points"] == 5
        assert [e.terminal_seq for e in store.ledger()] == [7]
        store.close()

    @pytest.mark.parametrize("flag", ["--terminal"])
    def test_db_upgrade_terminal_command(self, tmp_path: Path, flag: str) -> None:
        """`pos-loyalty db upgrade --terminal URL` migrates a terminal database."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-m", "pos_loyalty", "db", "upgrade", flag, url],
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert schema_head("terminal") in out.stdout
