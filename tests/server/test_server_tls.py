"""Central over TLS with a certificate from a CA made here: the terminal enrolls and syncs
when given that CA, refuses to without it, and refuses plain HTTP to another host."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pos_loyalty.errors import SyncError
from pos_loyalty.rules.program import DEFAULT_PROGRAM
from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.runner import ServerThread
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import REPO
from tests.tillsales import ring_up

SQLITE_ONLY = pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(root: Path) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("pos-loyalty test CA"))
          .issuer_name(_name("pos-loyalty test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(root / "ca.pem", root / "server.pem", root / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pki.key.chmod(0o600)
    return pki


@dataclass
class TlsCentral:
    url: str
    store: CentralStore
    pki: Pki


@pytest.fixture
def tls_central(central_url: str, tmp_path: Path) -> Iterator[TlsCentral]:
    pki = make_pki(tmp_path)
    store = CentralStore(central_url)
    app = create_app(Settings(db_url=central_url), store=store, migrate=False)
    with ServerThread(app, tls=(pki.cert, pki.key)) as srv:
        yield TlsCentral(srv.url, store, pki)
    store.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("POS_LOYALTY_CA_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "pos_loyalty", *args], capture_output=True,
                          text=True, env=env, timeout=120)


class TestTls:
    @SQLITE_ONLY
    def test_enroll_and_sync_need_the_ca(self, tls_central: TlsCentral, tmp_path: Path) -> None:
        """Without --ca-file the terminal refuses central's certificate; with it, it enrolls,
        bootstraps and pushes a sale."""
        c = tls_central
        assert c.url.startswith("https://127.0.0.1:")
        c.store.add_member("M1", "Ann", card_id="C1")
        _tid, code = c.store.add_terminal("S1")
        db = f"sqlite:///{tmp_path / 'terminal.db'}"
        refused = cli("enroll", c.url, code, "--db", db)
        assert refused.returncode == 1
        assert "does not trust" in refused.stderr and "--ca-file" in refused.stderr
        ok = cli("enroll", c.url, code, "--db", db, "--ca-file", str(c.pki.ca))
        assert ok.returncode == 0, ok.stderr
        assert "bootstrap done: 1 members" in ok.stdout
        local = LocalStore(db)
        try:
            cred = local.sync_identity().credential
            assert cred
            service = TerminalService(local, DEFAULT_PROGRAM, clock=lambda: datetime(2026, 3, 1))
            sold = ring_up(service, card_id="C1", pos_id="P", txn_id="T1", total=700)
            assert sold["type"] == "points.awarded" and sold["points"] == 7, sold
            with SyncClient(c.url, cred) as untrusting, pytest.raises(SyncError):
                run_sync(local, untrusting)
            with SyncClient(c.url, cred, ca_file=str(c.pki.ca)) as client:
                report = run_sync(local, client)
            assert report.stored == 1 and c.store.balance("M1") == 7
        finally:
            local.close()

    def test_plain_http_to_another_host_is_refused(self, tmp_path: Path) -> None:
        """`enroll http://<not loopback>` stops before sending the code, naming --insecure."""
        db = f"sqlite:///{tmp_path / 't.db'}"
        out = cli("enroll", "http://192.0.2.10:8080", "ABCD-EFGH", "--db", db)
        assert out.returncode == 2
        assert "refusing plain HTTP" in out.stderr and "--insecure" in out.stderr
        assert not (tmp_path / "t.db").exists()

    def test_server_needs_cert_and_key_together(self, tmp_path: Path) -> None:
        """`server --tls-cert` without `--tls-key` is a usage error."""
        pki = make_pki(tmp_path)
        out = cli("server", "--tls-cert", str(pki.cert), "--db",
                  f"sqlite:///{tmp_path / 'c.db'}")
        assert out.returncode == 2 and "--tls-key" in out.stderr
