"""Terminal configuration: defaults, file values, and errors that name file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_loyalty.config import load_config, with_overrides
from pos_loyalty.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(text, encoding="utf-8")
    return path


class TestDefaults:
    def test_no_file_gives_sqlite_in_data_dir(self, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a file the store is a SQLite file inside the data directory."""
        monkeypatch.setenv("POS_LOYALTY_DATA_DIR", str(tmp_path / "data"))
        config = load_config(None)
        assert config.resolved_db_url == f"sqlite:///{tmp_path / 'data' / 'terminal.db'}"
        assert config.baudrate == 115200

    def test_command_line_wins_over_file(self, tmp_path: Path) -> None:
        """--serial, --reader and --db replace what the file says."""
        path = write(tmp_path, '[serial]\nport = "/dev/ttyUSB0"\n[reader]\npath = "usb"\n')
        config = with_overrides(load_config(path), serial="/dev/pts/9",
                                reader="udp:127.0.0.1:5000", db="sqlite:///x.db")
        assert (config.serial_port, config.reader_path, config.resolved_db_url) == (
            "/dev/pts/9", "udp:127.0.0.1:5000", "sqlite:///x.db")


class TestFileValues:
    def test_values_are_read(self, tmp_path: Path) -> None:
        """Every documented key reaches the config."""
        path = write(tmp_path, """
[terminal]
id = "T-42"
data_dir = "/var/lib/pos-loyalty"
[reader]
path = "tty:USB0:pn532"
debounce_s = 0.5
[serial]
port = "/dev/serial/by-id/usb-FTDI-if00"
baudrate = 9600
[cards]
accept_legacy_uid = true
issuer_keys = ["e5c7ddffd7b721e2ad76b4b44619879cea375aa4067facd944ddcd6a62ec3313"]
[program]
file = "program.toml"
""")
        config = load_config(path)
        assert config.terminal_id == "T-42"
        assert config.reader_path == "tty:USB0:pn532"
        assert config.debounce_s == 0.5
        assert config.baudrate == 9600
        assert config.accept_legacy_uid is True
        assert config.issuer_keys == (
            "e5c7ddffd7b721e2ad76b4b44619879cea375aa4067facd944ddcd6a62ec3313",)
        assert config.program_file == str(tmp_path / "program.toml")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "key", "line"),
        [
            ('[serial]\nport = "/dev/ttyS0"\nbaudrate = "fast"\n', "serial.baudrate", 3),
            ('[serial]\nbaudrate = 12345\n', "serial.baudrate", 2),
            ('\n\n[reader]\ndebounce_s = -1\n', "reader.debounce_s", 4),
            ('[reader]\npaht = "usb"\n', "reader.paht", 2),
            ('[readr]\npath = "usb"\n', "readr", 1),
            ('[cards]\naccept_legacy_uid = "yes"\n', "cards.accept_legacy_uid", 2),
            ('[cards]\nissuer_keys = ["zz"]\n', "cards.issuer_keys", 2),
        ],
    )
    def test_error_names_file_key_and_line(self, tmp_path: Path, text: str, key: str,
                                           line: int) -> None:
        """A wrong value or unknown key is reported with the file, the key and its line."""
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == key
        assert info.value.line == line
        assert str(info.value).startswith(f"{path}:{line}: key '{key}'")

    def test_syntax_error_names_line(self, tmp_path: Path) -> None:
        """Broken TOML is reported with its line number."""
        path = write(tmp_path, '[serial]\nport = "/dev/ttyS0"\nbaudrate = \n')
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.line == 3

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A config path that does not exist is named in the error."""
        with pytest.raises(ConfigError, match="cannot read file"):
            load_config(tmp_path / "nope.toml")
