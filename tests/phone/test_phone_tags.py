"""`tag batch create` and `tag check`: the personalisation file and what a tag URL proves."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import ndef as ndeflib
from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.config import SunKeys
from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import Issuer, product_tag_uri
from pos_loyalty.nfc.producturl import personalisation
from pos_loyalty.nfc.sim.emulator import TagEmulator
from tests.phone.conftest import ISSUER, MASTER, META, SKU, SYSTEM_ID, TAG_BASE, product_tag

KEYS = SunKeys(META, MASTER, SYSTEM_ID, product_url=TAG_BASE)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(
        f'[sun]\nmeta_key = "{META.hex()}"\nfile_master_key = "{MASTER.hex()}"\n'
        f'system_id = "{SYSTEM_ID.decode()}"\nproduct_url = "{TAG_BASE}"\n'
        f'[cards]\nissuer_keys = ["{ISSUER.public_key.hex()}"]\n')
    return path


class TestPersonalisation:
    def test_offsets_are_where_the_tag_mirrors(self) -> None:
        """Filling the row's template at its offsets with what a tag with the row's key
        mirrors gives exactly the NDEF file the emulated NTAG 424 DNA serves."""
        uid = bytes.fromhex("04AABBCCDDEE01")
        row = personalisation(SKU, uid, KEYS)
        octets = b"".join(ndeflib.message_encoder([ndeflib.UriRecord(row["url"])]))
        file_ = bytearray(len(octets).to_bytes(2, "big") + octets)
        msg = sun.generate_sun(META, bytes.fromhex(row["file_read_key"]), uid, 7,
                               file_data=bytes.fromhex(row["file_data"]))
        for offset, value in ((row["picc_data_offset"], msg.picc), (row["enc_offset"], msg.enc),
                              (row["sdm_mac_offset"], msg.cmac)):
            assert value is not None
            text = value.hex().upper().encode()
            file_[int(offset):int(offset) + len(text)] = text
        tag = product_tag(uid, counter=6)
        tag.activated()
        tag.file_read(b"\xe1\x04")
        assert tag.last_url is not None
        expected = b"".join(ndeflib.message_encoder([ndeflib.UriRecord(tag.last_url)]))
        # the emulated tag pads PICC data with random bytes: compare all but the PICC field
        picc = int(row["picc_data_offset"])
        assert file_[:picc] == (len(expected).to_bytes(2, "big") + expected)[:picc]
        assert file_[picc + 32:] == (len(expected).to_bytes(2, "big") + expected)[picc + 32:]
        assert row["sdm_mac_input_offset"] == row["enc_offset"]


class TestBatchCli:
    def test_batch_create_from_uid_list(self, tmp_path: Path) -> None:
        """Rows for the first COUNT UIDs, each with its own key, in a new 0600 file."""
        uids = tmp_path / "uids.txt"
        uids.write_text("04AABBCCDDEE01\n04:AA:BB:CC:DD:EE:02\n\n04AABBCCDDEE03\n")
        out = tmp_path / "tags.csv"
        r = CliRunner().invoke(main, ["tag", "batch", "create", "--sku", SKU, "--count", "2",
                                      "--uids", str(uids), "--config", str(_config(tmp_path)),
                                      "--out", str(out)])
        assert r.exit_code == 0, r.output
        with out.open() as f:
            rows = list(csv.DictReader(f))
        assert [x["uid"] for x in rows] == ["04AABBCCDDEE01", "04AABBCCDDEE02"]
        assert len({x["file_read_key"] for x in rows}) == 2
        assert os.stat(out).st_mode & 0o777 == 0o600
        again = CliRunner().invoke(main, ["tag", "batch", "create", "--sku", SKU, "--count",
                                          "1", "--uids", str(uids), "--config",
                                          str(_config(tmp_path)), "--out", str(out)])
        assert again.exit_code == 2 and "not overwriting" in again.output

    def test_bad_uid_line_is_named(self, tmp_path: Path) -> None:
        uids = tmp_path / "uids.txt"
        uids.write_text("04AABBCCDDEE01\nnope\n")
        r = CliRunner().invoke(main, ["tag", "batch", "create", "--sku", SKU, "--count", "1",
                                      "--uids", str(uids), "--config", str(_config(tmp_path)),
                                      "--out", str(tmp_path / "x.csv")])
        assert r.exit_code == 2 and "uids.txt:2" in r.output
        assert not (tmp_path / "x.csv").exists()


class TestCheckCli:
    def _check(self, *args: str) -> tuple[int, dict[str, object]]:
        r = CliRunner().invoke(main, ["tag", "check", *args])
        return r.exit_code, json.loads(r.output.strip().splitlines()[-1])

    def test_urls(self, tmp_path: Path) -> None:
        """A SUN URL and a signed URL verify with the config's keys; a forged one does not;
        without keys nothing verifies."""
        cfg = str(_config(tmp_path))
        tag = product_tag(bytes.fromhex("04AABBCCDDEE05"))
        tag.activated()
        tag.file_read(b"\xe1\x04")
        assert tag.last_url is not None
        code, out = self._check(tag.last_url, "--config", cfg)
        assert code == 0 and out["kind"] == "ntag424-sun" and out["counter"] == 1
        assert out["uid"] == "04AABBCCDDEE05" and out["product"] == SKU
        signed = product_tag_uri(SKU, bytes.fromhex("04112233445566"), ISSUER,
                                 "https://shop.example")
        assert self._check(signed, "--config", cfg)[1]["kind"] == "ntag21x-signed"
        forged = product_tag_uri(SKU, bytes.fromhex("04112233445566"), Issuer.generate(),
                                 "https://shop.example")
        code, out = self._check(forged, "--config", cfg)
        assert code == 1 and out["verified"] is False
        assert self._check(tag.last_url)[0] == 1  # no keys given: not verified
        assert self._check("https://elsewhere.example/x")[1]["kind"] == "other"

    def test_reader(self, tmp_path: Path) -> None:
        """--reader reads the emulated tag over nfcpy's udp driver and checks its URL and
        that the URL is the tag's own (its UID)."""
        with TagEmulator() as rf:
            rf.present(product_tag(bytes.fromhex("04AABBCCDDEE06")))
            code, out = self._check("--reader", rf.path, "--config", str(_config(tmp_path)),
                                    "--timeout", "5")
            rf.remove()
        assert code == 0 and out["uid"] == "04AABBCCDDEE06" and out["verified"] is True
