"""The admin, enroll and report commands, run as a store's IT would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, Central


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pos_loyalty", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
class TestEnrollmentCommands:
    @pytest.mark.slow(seconds=15)
    def test_add_enroll_revoke_round_trip(self, central: Central, tmp_path: Path) -> None:
        """A code printed by `admin terminal add` enrolls once; `revoke` locks the terminal out."""
        central.store.add_member("M1", "Ann", card_id="C1")
        added = cli("admin", "terminal", "add", "--store", "S7", "--db", central.db_url)
        assert added.returncode == 0, added.stderr
        code = re.search(r"enrollment code: (\S+)", added.stdout)
        tid = re.search(r"terminal (\S+) \(store S7\)", added.stdout)
        assert code and tid
        terminal_db = f"sqlite:///{tmp_path / 'terminal.db'}"
        enrolled = cli("enroll", central.url, code.group(1), "--db", terminal_db)
        assert enrolled.returncode == 0, enrolled.stderr
        assert f"enrolled as terminal {tid.group(1)} of store S7" in enrolled.stdout
        assert "1 members" in enrolled.stdout
        again = cli("enroll", central.url, code.group(1), "--db",
                    f"sqlite:///{tmp_path / 'other.db'}")
        assert again.returncode == 1 and "already used" in again.stderr
        assert "Traceback" not in again.stderr
        from pos_loyalty.store.local import LocalStore

        local = LocalStore(terminal_db)
        cred = local.sync_identity().credential
        local.close()
        assert cred is not None
        listed = cli("admin", "terminal", "list", "--db", central.db_url)
        assert listed.stdout.split()[:3] == ["TERMINAL", "STORE", "STATUS"]
        assert re.search(rf"^{tid.group(1)}\s+S7\s+active\s+\S+\s+ok\b", listed.stdout, re.M)
        revoked = cli("admin", "terminal", "revoke", tid.group(1), "--db", central.db_url)
        assert revoked.returncode == 0
        r = httpx.get(f"{central.url}/v1/sync/horizon", headers={"Authorization": f"Bearer {cred}"})
        assert r.status_code == 403

    @pytest.mark.slow(seconds=10)
    def test_usage_errors_are_one_line(self, central: Central) -> None:
        """A bad URL or a missing terminal gives one clear line and a non-zero exit."""
        bad = cli("enroll", "ftp://x", "CODE")
        assert bad.returncode == 2 and "http://" in bad.stderr
        missing = cli("admin", "terminal", "revoke", "T-NOPE", "--db", central.db_url)
        assert missing.returncode == 1 and "no terminal T-NOPE" in missing.stderr
        both = cli("db", "upgrade", "--central", central.db_url, "--terminal", "sqlite://")
        assert both.returncode == 2
