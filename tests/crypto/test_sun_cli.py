"""``pos-loyalty tag verify-sun`` on NXP AN12196's vectors and on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.cli import main

ZERO = "00" * 16
AN1 = ["--picc", "EF963FF7828658A599F3041510671E88", "--cmac", "94EED9EE65337086"]
AN2 = ["--picc", "FD91EC264309878BE6345CBE53BADF40", "--cmac", "ECC1E7F6C6C73BF6",
       "--enc", "CEE9A53E3E463EF1F459635736738962",
       "--mac-input", "CEE9A53E3E463EF1F459635736738962&cmac="]


def run(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["tag", "verify-sun", *args])
    lines = result.output.strip().splitlines()
    return result.exit_code, json.loads(lines[-1]), result.output


class TestVerifySunCommand:
    def test_an12196_page12(self) -> None:
        """The page 12 vector prints its UID and counter 61 as valid JSON and exits 0."""
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, *AN1)
        assert code == 0
        assert out["valid"] is True and out["cmac_valid"] is True
        assert (out["uid"], out["counter"]) == ("04DE5F1EACC040", 61)
        assert "file_data" not in out

    def test_an12196_page18_with_enc(self) -> None:
        """The page 18 vector prints the decrypted file data and exits 0."""
        code, out, text = run("--meta-key", ZERO, "--file-key", ZERO, *AN2)
        assert code == 0
        assert (out["uid"], out["counter"]) == ("04958CAA5C5E80", 8)
        assert out["file_data"] == "78" * 16 and out["file_data_text"] == "x" * 16
        assert "04958CAA5C5E80" in text.splitlines()[0]

    def test_mac_input_omitted_fails_page18(self) -> None:
        """Without --mac-input the page 18 MAC covers nothing and no longer holds: exit 1."""
        args = AN2[:-2]
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, *args)
        assert code == 1
        assert out["valid"] is False and "MAC" in out["reason"]

    def test_tampered_cmac(self) -> None:
        """A tampered CMAC gives valid false with a reason and exit 1."""
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO,
                           "--picc", AN1[1], "--cmac", "94EED9EE65337087")
        assert code == 1
        assert out["valid"] is False and out["uid"] == "04DE5F1EACC040"

    def test_wrong_key(self) -> None:
        """A wrong meta key is refused with exit 1."""
        code, out, _ = run("--meta-key", "11" * 16, "--file-key", ZERO, *AN1)
        assert code == 1 and out["valid"] is False and "meta read key" in out["reason"]

    def test_replayed_counter(self) -> None:
        """--last-counter at the message's counter refuses it as a replay."""
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, *AN1, "--last-counter", "61")
        assert code == 1 and "replayed" in out["reason"]

    def test_bad_hex(self) -> None:
        """Non-hex input prints the invalid JSON naming the option, exit 1."""
        code, out, _ = run("--meta-key", "xyz", "--file-key", ZERO, *AN1)
        assert code == 1
        assert out == {"valid": False, "reason": "--meta-key is not hex: 'xyz'"}

    def test_wrong_length(self) -> None:
        """A short key prints the invalid JSON with the length problem, exit 1."""
        code, out, _ = run("--meta-key", "00" * 15, "--file-key", ZERO, *AN1)
        assert code == 1 and "16 bytes" in out["reason"]

    def test_non_ascii_mac_input(self) -> None:
        """A non-ASCII --mac-input is refused in JSON, not by a traceback."""
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, *AN1, "--mac-input", "é")
        assert code == 1 and "ASCII" in out["reason"]

    @settings(max_examples=60)
    @given(picc=st.text(max_size=40), cmac=st.text(max_size=20),
           enc=st.none() | st.text(max_size=40))
    def test_any_text_gives_json(self, picc: str, cmac: str, enc: str | None) -> None:
        """Whatever text is passed, the last line is JSON with valid false and exit code 1."""
        args = ["--meta-key", ZERO, "--file-key", ZERO, "--picc", picc, "--cmac", cmac]
        if enc is not None:
            args += ["--enc", enc]
        result = CliRunner().invoke(main, ["tag", "verify-sun", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        last = json.loads(result.output.strip().splitlines()[-1])
        assert result.exit_code == 1 and last["valid"] is False and last["reason"]

    def test_as_a_process(self) -> None:
        """Run as ``python -m pos_loyalty`` the command prints the JSON last line and exits 0."""
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
        proc = subprocess.run(
            [sys.executable, "-m", "pos_loyalty", "tag", "verify-sun", "--meta-key", ZERO,
             "--file-key", ZERO, *AN1], capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1])["counter"] == 61

    def test_whole_url(self) -> None:
        """--url takes NXP's page 18 URL as read from the tag and verifies it."""
        url = ("https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40"
               "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, "--url", url)
        assert code == 0 and (out["uid"], out["counter"]) == ("04958CAA5C5E80", 8)

    def test_url_without_sun_parameters(self) -> None:
        """A URL without the SUN parameters prints the invalid JSON with the reason."""
        code, out, _ = run("--meta-key", ZERO, "--file-key", ZERO, "--url", "https://x.example/")
        assert code == 1 and "not a SUN URL" in out["reason"]

    def test_url_and_picc_is_usage_error(self) -> None:
        """--url together with --picc is a usage error (exit 2)."""
        result = CliRunner().invoke(main, ["tag", "verify-sun", "--meta-key", ZERO,
                                           "--file-key", ZERO, "--url", "https://x/?a=1",
                                           "--picc", "00"])
        assert result.exit_code == 2

    def test_missing_picc_is_usage_error(self) -> None:
        """Without --url, leaving out --picc is a usage error (exit 2)."""
        result = CliRunner().invoke(main, ["tag", "verify-sun", "--meta-key", ZERO,
                                           "--file-key", ZERO, "--cmac", AN1[3]])
        assert result.exit_code == 2


class TestSunKey:
    def test_a_tag_with_that_key_verifies(self) -> None:
        """A tag provisioned with the printed key verifies with it, and the terminal's
        config (same master key, default system id) opens it too."""
        from pos_loyalty.nfc import sun

        master, uid = "0F" * 16, "04A0B1C2D3E4F5"
        key = CliRunner().invoke(main, ["tag", "sun-key", "--file-master-key", master,
                                        "--uid", uid]).output.strip()
        msg = sun.generate_sun(bytes(16), bytes.fromhex(key), bytes.fromhex(uid), 9)
        code, out, _ = run("--meta-key", ZERO, "--file-key", key, "--picc", msg.picc.hex(),
                           "--cmac", msg.cmac.hex())
        assert code == 0 and out["uid"] == uid and out["counter"] == 9
        from pos_loyalty.config import SunKeys
        from pos_loyalty.nfc.sunuri import sun_key_entries

        (entry,) = sun_key_entries(SunKeys(bytes(16), bytes.fromhex(master), b"pos-loyalty",
                                           member_url="https://m.example/m"))
        assert entry.file_key_for(bytes.fromhex(uid)).hex().upper() == key

    def test_bad_input_is_a_usage_error(self) -> None:
        """A short key or a UID that is not 7 bytes is a usage error, not a traceback."""
        for args in (["--file-master-key", "00" * 15, "--uid", "04A0B1C2D3E4F5"],
                     ["--file-master-key", ZERO, "--uid", "04A0B1C2"],
                     ["--file-master-key", "zz", "--uid", "04A0B1C2D3E4F5"]):
            result = CliRunner().invoke(main, ["tag", "sun-key", *args])
            assert result.exit_code == 2 and "Traceback" not in result.output
