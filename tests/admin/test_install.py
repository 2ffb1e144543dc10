"""The install path: hardware/install.sh lays out what the systemd unit names, the example
config loads as installed, and `enroll --config` writes where `run --config` reads."""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.config import load_config
from pos_loyalty.errors import ConfigError
from pos_loyalty.store.local import LocalStore
from tests.conftest import Central

REPO = Path(__file__).resolve().parents[2]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(REPO / "hardware" / "pos-loyalty.service")
    return parser


class TestInstallScript:
    def test_lays_out_what_the_unit_expects(self, tmp_path: Path) -> None:
        """Config, data directory (0700), unit, udev rule and blacklist land where the unit
        and the config point; the config loads and keeps its store in the state directory."""
        env = dict(os.environ, ROOT=str(tmp_path), SKIP_VENV="1")
        out = subprocess.run(["sh", str(REPO / "hardware" / "install.sh")], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        service = unit()["Service"]
        exec_start = service["ExecStart"].split()
        assert exec_start[0] == "/opt/pos-loyalty/venv/bin/pos-loyalty"
        assert exec_start[1:3] == ["run", "--config"]
        config_path = tmp_path / exec_start[3].lstrip("/")
        assert config_path.is_file()
        data = tmp_path / "var/lib" / service["StateDirectory"]
        assert data.is_dir() and (data.stat().st_mode & 0o777) == 0o700
        assert service["ReadWritePaths"] == "/var/lib/pos-loyalty"
        for path in ("etc/systemd/system/pos-loyalty.service",
                     "etc/udev/rules.d/99-pos-loyalty-nfc.rules",
                     "etc/modprobe.d/blacklist-pos-loyalty-nfc.conf"):
            assert (tmp_path / path).is_file(), path
        script = (REPO / "hardware" / "install.sh").read_text()
        assert f"--groups plugdev,dialout {service['User']}" in script
        assert '"$ROOT/opt/pos-loyalty/venv"' in script
        config = load_config(config_path)
        assert str(config.data_dir) == "/var/lib/pos-loyalty"
        assert config.resolved_db_url == "sqlite:////var/lib/pos-loyalty/terminal.db"
        assert config.program_file is None  # runs without a program file beside it
        # a re-run keeps an edited config
        config_path.write_text(config_path.read_text().replace('"T-1"', '"T-EDITED"'))
        again = subprocess.run(["sh", str(REPO / "hardware" / "install.sh")], env=env,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "T-EDITED" in config_path.read_text()


class TestConfig:
    def test_ca_file_is_read_relative_to_the_config_and_checked(self, tmp_path: Path) -> None:
        """[sync] ca_file names a file next to the config; a missing one names its key."""
        (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
        cfg = tmp_path / "t.toml"
        cfg.write_text('[sync]\nca_file = "ca.pem"\n')
        assert load_config(cfg).sync_ca_file == str(tmp_path / "ca.pem")
        cfg.write_text('[sync]\nca_file = "nope.pem"\n')
        with pytest.raises(ConfigError, match=r"t\.toml:2: key 'sync\.ca_file': no such file"):
            load_config(cfg)


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
def test_enroll_with_config_writes_where_the_daemon_reads(central: Central,
                                                          tmp_path: Path) -> None:
    """`enroll --config` puts the credential into the config's store, not the caller's."""
    data = tmp_path / "state"
    cfg = tmp_path / "terminal.toml"
    cfg.write_text(f'[terminal]\ndata_dir = "{data}"\n')
    _tid, code = central.store.add_terminal("S1")
    result = CliRunner().invoke(main, ["enroll", "--config", str(cfg), central.url, code,
                                       "--no-bootstrap"])
    assert result.exit_code == 0, result.output
    store = LocalStore(load_config(cfg).resolved_db_url)
    try:
        ident = store.sync_identity()
        assert ident.credential and ident.store_id == "S1"
    finally:
        store.close()
    assert (data / "terminal.db").is_file()
