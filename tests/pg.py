"""A real PostgreSQL for the tests: from POS_LOYALTY_PG_URL, or a throwaway cluster.

Order of preference:
1. ``POS_LOYALTY_PG_URL`` (a server URL whose user may CREATE DATABASE);
2. Debian's server binaries (``/usr/lib/postgresql/*/bin/initdb``): a throwaway cluster in a
   temporary directory, owned by the ``postgres`` user when we run as root (``initdb``
   refuses root), listening on 127.0.0.1 on a port held for it (``tests/ports.py``),
   removed at the end;
3. otherwise PostgreSQL tests are skipped with the reason, unless ``POS_LOYALTY_REQUIRE_PG=1``
   makes a missing PostgreSQL a failure.

Each test gets its own database cloned from a migrated template, dropped afterwards.

Under pytest-xdist every worker is a separate process with its own session and starts its own
throwaway cluster (own directory, own port); CI does that too. Workers sharing one server
through ``POS_LOYALTY_PG_URL`` do not meet in a database (random names), but transaction ids
are cluster-wide: the pull cursor waits for every transaction older than its horizon, so one
worker's open transaction holds back another's pull and a test that pulls right after a write
finds nothing. Give a URL only with ``-n 0``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from tests.ports import ReservedPort


class PgUnavailable(Exception):
    """No PostgreSQL could be found or started; the message says why."""


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class ThrowawayCluster:
    """initdb + pg_ctl start in a temp dir; ``stop()`` removes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # held until stop(): no parallel worker's server or client is given the port, and
        # the postmaster still binds it (it sets SO_REUSEADDR, as ReservedPort asks)
        self._reserved = ReservedPort()
        self.port = self._reserved.port
        self.tmp = Path(tempfile.mkdtemp(prefix="pos-loyalty-pg-"))
        self.data = self.tmp / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgUnavailable("running as root and there is no 'postgres' user") from exc
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.tmp.chmod(0o700)
            self._as = ["runuser", "-u", "postgres", "--"]
            self.user = "postgres"
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PgUnavailable(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-500:]}")

    def start(self) -> str:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", self.user, "--no-sync", "-E", "UTF8")
        opts = (f"-p {self.port} -h 127.0.0.1 -k {self.tmp} -F "
                "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.tmp / "log"), "-w", "-t", "60", "start")
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(PgUnavailable):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._reserved.close()


@contextlib.contextmanager
def pg_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server (maintenance database); raise PgUnavailable."""
    url = os.environ.get("POS_LOYALTY_PG_URL")
    if url:
        yield url
        return
    bindir = _bin_dir()
    if bindir is None:
        raise PgUnavailable("no POS_LOYALTY_PG_URL and no /usr/lib/postgresql/*/bin/initdb")
    cluster = ThrowawayCluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


class PgDatabases:
    """Creates per-test databases on one server, cloned from a migrated template."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        self._template: str | None = None

    def url_for(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def template(self) -> str:
        """A database with the central schema migrated, made once per session."""
        if self._template is None:
            from pos_loyalty.migrations import upgrade_central

            name = f"posl_tmpl_{uuid.uuid4().hex[:10]}"
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            upgrade_central(self.url_for(name))
            self._template = name
        return self._template

    def create(self, *, migrated: bool = True) -> str:
        name = f"posl_{uuid.uuid4().hex[:12]}"
        tmpl = f' TEMPLATE "{self.template()}"' if migrated else ""
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self._template is not None:
            with self._admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)'))
        self._admin.dispose()
