"""The console's catalog page: store IT uploads a zip, checked like ``admin catalog load``.

A live central (SQLite, then PostgreSQL) with the console and the phone pages; an
administrator signs in over HTTP and posts multipart forms as a browser does.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pos_loyalty.catalog.upload import load_upload
from pos_loyalty.errors import ConfigError
from pos_loyalty.server.console.accounts import ConsoleAccounts
from tests.conftest import REPO
from tests.phone.conftest import PhoneLive, phone_config, start

PASSWORD = "a long enough passphrase"
TOKEN = re.compile(r'action="([^"]+)" method="post" novalidate[^>]*>\s*'
                   r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')
EXAMPLE = REPO / "examples" / "catalog"


@pytest.fixture
def live(central_url: str, tmp_path: Path) -> Iterator[PhoneLive]:
    served = tmp_path / "served"
    shutil.copytree(EXAMPLE, served)
    yield from start(central_url, phone_config(served))


def zipped(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def folder_files(folder: Path, prefix: str) -> dict[str, bytes | str]:
    return {f"{prefix}{p.name}": p.read_bytes() for p in folder.iterdir() if p.is_file()}


@contextmanager
def signed_in(live: PhoneLive, username: str = "it",
              role: str = "admin") -> Iterator[httpx.Client]:
    """A console user of ``role`` signed in over HTTP."""
    ConsoleAccounts(live.store).add_user(username, PASSWORD, role, actor="test",
                                         stores=() if role == "admin" else ("S-1",))
    with httpx.Client(base_url=live.url, timeout=30) as http:
        page = http.get("/console/login")
        token = dict(TOKEN.findall(page.text))["/console/login"]
        http.post("/console/login", data={"csrf_token": token, "username": username,
                                          "password": PASSWORD, "next": "/console/"})
        yield http


def upload(http: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    token = dict(TOKEN.findall(http.get("/console/catalog").text))["/console/catalog"]
    return http.post("/console/catalog", data={"csrf_token": token, **fields},
                     files={"zip": ("catalog.zip", data, "application/zip")})


class TestCatalogUpload:
    def test_one_product_added_then_served(self, live: PhoneLive) -> None:
        """A new product's files (with its code) join the served catalog; its page shows
        it; the example product stays; the nav links the page."""
        kettle = next(p for p in EXAMPLE.iterdir() if p.is_dir())
        files = folder_files(kettle, "")
        files["product.toml"] = 'name = "Mug M1"\nsummary = "Holds tea."\n'
        files = {k: v for k, v in files.items() if not k.endswith(".md")}
        with signed_in(live) as http:
            assert 'href="/console/catalog"' in http.get("/console/").text
            done = upload(http, zipped(files), sku="MUG-1")
            assert done.status_code == 303, done.text
            page = http.get(done.headers["location"]).text
        assert "The catalog was checked and is now served." in page
        assert ">MUG-1</a>" in page and f">{kettle.name}</a>" in page
        shown = httpx.get(live.url + "/p/MUG-1")
        assert "Mug M1" in shown.text

    def test_errors_name_the_file_line_and_key(self, live: PhoneLive) -> None:
        """A bad product.toml inside the zip is named as it is in the zip, with its line
        and key; a path out of the folder and a non-zip are refused; nothing changes."""
        kettle = next(p for p in EXAMPLE.iterdir() if p.is_dir())
        bad = folder_files(kettle, f"catalog/{kettle.name}/")
        bad[f"catalog/{kettle.name}/product.toml"] = 'name = "K"\nwarranty_months = 9999\n'
        with signed_in(live) as http:
            r = upload(http, zipped(bad))
            assert r.status_code == 400
            assert (f"{kettle.name}/product.toml:2: key &#39;warranty_months&#39;: must be "
                    "0..600") in r.text
            r = upload(http, zipped({"../evil/product.toml": "name = 'x'"}), sku="EVIL")
            assert r.status_code == 400 and "a path outside the catalog" in r.text
            r = upload(http, b"not a zip")
            assert r.status_code == 400 and "not a zip file" in r.text
            r = upload(http, zipped({"product.toml": 'name = "x"'}))
            assert r.status_code == 400 and "give its product code" in r.text
        assert "Kettle" in httpx.get(live.url + f"/p/{kettle.name}").text

    def test_replace_whole_catalog_and_admins_only(self, live: PhoneLive) -> None:
        """'Remove them' makes the zip the whole catalog; a store manager cannot upload."""
        kettle = next(p for p in EXAMPLE.iterdir() if p.is_dir())
        only_mug: dict[str, bytes | str] = {"MUG-1/product.toml": 'name = "Mug M1"\n'}
        with signed_in(live) as http:
            assert upload(http, zipped(only_mug), replace="yes").status_code == 303
            listed = http.get("/console/catalog").text
        assert ">MUG-1</a>" in listed and f">{kettle.name}</a>" not in listed
        with signed_in(live, "boss", "manager") as http:
            assert http.get("/console/catalog").status_code == 403


class TestUploadFuzz:
    @given(data=st.binary(max_size=2000))
    @settings(max_examples=200, deadline=None)
    def test_any_bytes_are_a_catalog_or_a_clear_error(self, data: bytes) -> None:
        """Whatever is uploaded, load_upload serves it or raises ConfigError; the served
        folder is untouched by a failure."""
        with tempfile.TemporaryDirectory() as tmp:
            served = Path(tmp) / "served"
            shutil.copytree(EXAMPLE, served)
            before = sorted(p.name for p in served.iterdir())
            with pytest.raises(ConfigError):
                load_upload(data, served, sku="X-1")
            assert sorted(p.name for p in served.iterdir()) == before

    @given(entries=st.lists(st.tuples(
        st.sampled_from(["product.toml", "about.md", "about.he.md", "a.png", "X-1/product.toml",
                         "catalog/X-1/product.toml", "X-1/a.png", "../product.toml", "/abs",
                         "X-1/../../p", "X-1/sub/product.toml", ".hidden"])
        | st.text(st.sampled_from("abAB./_-\\:"), min_size=1, max_size=20),
        st.sampled_from([b'name = "Mug"\n', b'name = 7\n', b"# about\n", b"\xff\xfe"])
        | st.binary(max_size=200)), min_size=1, max_size=6, unique_by=lambda e: e[0]),
        sku=st.sampled_from(["", "X-1"]))
    @example(entries=[("-", b'name = "Mug"\n'), ("-/A", b'name = "Mug"\n')], sku="")
    @example(entries=[("X-1/a", b""), ("X-1", b"")], sku="")
    @example(entries=[("X-1/" + "n" * 300, b"x")], sku="")  # longer than a file name may be
    @settings(max_examples=200, deadline=None)
    def test_any_zip_is_a_catalog_or_a_clear_error(self, entries: list[tuple[str, bytes]],
                                                   sku: str) -> None:
        """Zips of odd names and contents are served or refused with ConfigError, and never
        write outside the staging folder."""
        with tempfile.TemporaryDirectory() as tmp:
            served = Path(tmp) / "sub" / "served"
            shutil.copytree(EXAMPLE, served)
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as z:
                for name, body in entries:
                    z.writestr(name, body)
            with suppress(ConfigError):  # refused, saying why, or served
                load_upload(out.getvalue(), served, sku=sku or None)
            assert {p.name for p in Path(tmp).iterdir()} == {"sub"}
            assert {p.name for p in (Path(tmp) / "sub").iterdir()} == {"served"}
