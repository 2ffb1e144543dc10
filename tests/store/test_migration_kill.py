"""A kill -9 at any moment of a terminal's first start or schema upgrade leaves a store that
starts: every migration step is inside one SQLite transaction.

A child process counts the SQL statements the start runs and SIGKILLs itself just before or
just after the N-th one; the test then starts the store again, in a new process, as systemd
would, and checks it reaches the newest schema with its data intact.

Each start is a process forked from one that has imported SQLAlchemy, Alembic and the package
and never opened a store: a fork takes milliseconds where a fresh interpreter takes a second,
so the test can afford many kill points.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from pos_loyalty.migrations import _config, current_revision
from pos_loyalty.store.models import Base

ROOT = Path(__file__).resolve().parents[2]

STARTS = r"""
import json, os, signal, sys, traceback
from sqlalchemy import event
from sqlalchemy.engine import Engine
# what `pos-loyalty run` does first: migrate, then open the store
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.store.local import LocalStore

def start(url, kill_at, moment, out):
    seen = 0
    def count(*_args):
        nonlocal seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    event.listen(Engine, f"{moment}_cursor_execute", count)
    upgrade_terminal(url)
    LocalStore(url, terminal_id="T-KILL").close()
    os.write(out, str(seen).encode())

for line in sys.stdin:  # one start per line: url kill_at moment
    url, kill_at, moment = line.split()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the new process: nothing of a store was ever opened before the fork
        os.close(r)
        try:
            start(url, int(kill_at), moment, w)
        except BaseException:
            os.write(w, traceback.format_exc().encode())
            os._exit(1)
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(json.dumps({"rc": code, "out": b"".join(chunks).decode()}), flush=True)
"""

Start = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(url, kill_at=0, moment="before")``: a first start in a new process, killed
    before or after its ``kill_at``-th SQL statement (0: never); its exit code, its count of
    statements (stdout) or its traceback (stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-c", STARTS], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    def one(url: str, kill_at: int = 0,
            moment: str = "before") -> subprocess.CompletedProcess[str]:
        stdin.write(f"{url} {kill_at} {moment}\n")
        stdin.flush()
        line = stdout.readline()
        assert line, "the process that forks the starts has died"
        done = json.loads(line)
        ok = done["rc"] == 0
        return subprocess.CompletedProcess([url, str(kill_at), moment], done["rc"],
                                           done["out"] if ok else "", "" if ok else done["out"])

    yield one
    stdin.close()
    stdout.close()
    assert server.wait(timeout=60) == 0


def check_started(url: str) -> None:
    """The store is at the newest schema, exactly as the models describe it."""
    assert current_revision(url) == _head()
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def _head() -> str:
    from alembic.script import ScriptDirectory

    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(_config("terminal", conn)).get_current_head()
    engine.dispose()
    assert head is not None
    return head


def kill_points(total: int, n: int, seed: int) -> list[tuple[int, str]]:
    """First and last statement, and ``n`` random ones, each killed before or after."""
    rng = random.Random(seed)
    points = {1, total} | set(rng.sample(range(1, total + 1), min(n, total)))
    return [(k, rng.choice(("before", "after"))) for k in sorted(points)]


@pytest.mark.slow(seconds=20)
class TestKillDuringMigration:
    def test_first_start_killed_anywhere_starts_again(self, tmp_path: Path,
                                                       start: Start) -> None:
        """A first start killed at random statements of its migration starts on the next try."""
        probe = start(f"sqlite:///{tmp_path / 'probe.db'}")
        assert probe.returncode == 0, probe.stderr
        total = int(probe.stdout.split()[-1])
        assert total > 20  # the whole migration ran through the counted connection
        for k, moment in kill_points(total, 10, seed=20261130):
            url = f"sqlite:///{tmp_path / f'first-{k}-{moment}.db'}"
            killed = start(url, k, moment)
            assert killed.returncode == -signal.SIGKILL, (k, moment, killed.stderr)
            again = start(url)
            assert again.returncode == 0, (k, moment, again.stderr)
            check_started(url)

    @pytest.mark.parametrize("seed", [1, 2])
    def test_upgrade_killed_anywhere_keeps_the_data(self, tmp_path: Path, seed: int,
                                                    start: Start) -> None:
        """An older store killed mid-upgrade upgrades on the next start, its members kept."""
        template = tmp_path / "old.db"
        engine = create_engine(f"sqlite:///{template}")
        with engine.begin() as conn:
            command.upgrade(_config("terminal", conn), "t0002")
            conn.execute(text("INSERT INTO members (member_id, display_name, balance, "
                              "lifetime_spend, visits) VALUES ('M-7', 'Old', 70, 0, 0)"))
            conn.execute(text("INSERT INTO terminal_state (id, terminal_id, next_seq, "
                              "pull_cursor, clock_offset_ms) VALUES (1, 'T-OLD', 5, '{}', 0)"))
        engine.dispose()
        data = template.read_bytes()
        probe = tmp_path / "probe.db"
        probe.write_bytes(data)
        done = start(f"sqlite:///{probe}")
        assert done.returncode == 0, done.stderr
        total = int(done.stdout.split()[-1])
        for k, moment in kill_points(total, 4, seed=seed):
            path = tmp_path / f"up-{k}-{moment}.db"
            path.write_bytes(data)
            url = f"sqlite:///{path}"
            assert start(url, k, moment).returncode == -signal.SIGKILL
            again = start(url)
            assert again.returncode == 0, (k, moment, again.stderr)
            check_started(url)
            engine = create_engine(url)
            with engine.connect() as conn:
                row = conn.execute(text("SELECT balance, state FROM members")).one()
                tid = conn.execute(text("SELECT terminal_id FROM terminal_state")).scalar_one()
            engine.dispose()
            assert tuple(row) == (70, "{}") and tid == "T-OLD"
