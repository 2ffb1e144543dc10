"""A terminal store URL that is not SQLite is one clear line from every command, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
URL = "mysql://loyalty:s3cret@db.example/loyalty"


@pytest.mark.parametrize("args", [
    ["run", "--simulation", "--serial", "/dev/null", "--reader", "udp:127.0.0.1:9",
     "--db", URL],
    ["db", "upgrade", "--terminal", URL],
    ["enroll", "http://127.0.0.1:9", "ABCD-EFGH", "--db", URL],
], ids=["run", "db-upgrade", "enroll"])
def test_a_mysql_url_is_refused_in_one_line(args: list[str], tmp_path: Path) -> None:
    """The command exits non-zero with one line naming the rule; the password is not shown."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POS_LOYALTY_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "pos_loyalty", *args], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "SQLite only" in lines[0] and "sqlite:///" in lines[0]
    assert "Traceback" not in out.stderr and "s3cret" not in out.stderr
