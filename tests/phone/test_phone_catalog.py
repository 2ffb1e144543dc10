"""The catalog folder, the phone pages' config file and `admin catalog load`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pos_loyalty.catalog.folder import Catalog, check_catalog, install_catalog, load_product
from pos_loyalty.errors import ConfigError
from pos_loyalty.server.cli import admin
from pos_loyalty.server.config import load_phone_config
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "catalog"


def _product(tmp_path: Path, toml: str, md: str | None = None, sku: str = "SKU-1") -> Path:
    folder = tmp_path / sku
    folder.mkdir(parents=True)
    (folder / "product.toml").write_text(toml, encoding="utf-8")
    if md is not None:
        (folder / "about.md").write_text(md, encoding="utf-8")
    return folder


class TestFolder:
    def test_example_catalog_loads(self) -> None:
        """The shipped example is valid: names in two languages, Markdown, an image."""
        [kettle] = check_catalog(EXAMPLE)
        assert kettle.sku == "KETTLE-2" and kettle.warranty_months == 24
        assert kettle.text("he", "name").startswith("קומקום")
        assert kettle.text("fr", "name") == "Kettle K2, 1.7 l"  # falls back to English
        assert "<h2>Care</h2>" in kettle.body("en") and "<h2>טיפול</h2>" in kettle.body("he")
        assert kettle.image == "kettle.png" and "kettle.png" in kettle.images

    def test_markdown_has_no_raw_html_and_no_foreign_images(self, tmp_path: Path) -> None:
        """HTML in Markdown is shown as text; an image from another site becomes its alt
        text; the folder's own image is served from central; javascript: links are dropped."""
        folder = _product(tmp_path, 'name = "X"\n',
                          "<script>alert(1)</script>\n\n![spy](https://evil.example/p.png)\n\n"
                          "![own](a.png)\n\n[click](javascript:alert(1))\n")
        shutil.copy(EXAMPLE / "KETTLE-2" / "kettle.png", folder / "a.png")
        html = load_product(folder, "/p/SKU-1/img").body("en")
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "evil.example" not in html and "spy" in html
        assert '<img src="/p/SKU-1/img/a.png" alt="own"' in html
        assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")

    @pytest.mark.parametrize(("toml", "key", "line"), [
        ('name = "X"\nreorder_url = "http://shop.example/x"\n', "reorder_url", 2),
        ('name = "X"\nimage = "none.png"\n', "image", 2),
        ('summary = "no name"\n', "name", None),
        ('name = "X"\nwarranty_months = -1\n', "warranty_months", 2),
        ('name = "X"\ncolour = "red"\n', "colour", 2),
        ('name = "X"\n[he]\nname = "x"\nprice = "1"\n', "he.price", 4),
    ])
    def test_errors_name_file_line_and_key(self, tmp_path: Path, toml: str, key: str,
                                           line: int | None) -> None:
        """A mistake in product.toml is refused with the file, the line and the key."""
        folder = _product(tmp_path, toml)
        with pytest.raises(ConfigError) as err:
            load_product(folder)
        assert err.value.key == key and err.value.line == line
        assert err.value.path == str(folder / "product.toml")

    def test_bad_folder_names_and_files(self, tmp_path: Path) -> None:
        """A folder that is not a product code, or a stray file, is refused by name."""
        _product(tmp_path / "a", 'name = "X"\n', sku="not a sku")
        with pytest.raises(ConfigError, match="not a product code"):
            check_catalog(tmp_path / "a")
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "notes.txt").write_text("x")
        with pytest.raises(ConfigError, match="only product folders"):
            check_catalog(tmp_path / "b")

    def test_install_swaps_and_catalog_rereads(self, tmp_path: Path) -> None:
        """Installing a new catalog replaces the served one; the server sees the change
        without a restart; a broken upload leaves the served catalog as it was."""
        served = tmp_path / "served"
        install_catalog(EXAMPLE, served)
        catalog = Catalog(served)
        first = catalog.product("KETTLE-2")
        assert first is not None and catalog.product("KETTLE-2") is first  # cached
        new = tmp_path / "new"
        shutil.copytree(EXAMPLE, new)
        toml = new / "KETTLE-2" / "product.toml"
        toml.write_text(toml.read_text().replace("Kettle K2", "Kettle K3"))
        install_catalog(new, served)
        again = catalog.product("KETTLE-2")
        assert again is not None and again.text("en", "name").startswith("Kettle K3")
        toml.write_text("name = \n")
        with pytest.raises(ConfigError):
            install_catalog(new, served)
        still = catalog.product("KETTLE-2")
        assert still is not None and still.text("en", "name").startswith("Kettle K3")
        assert catalog.product("NOPE") is None and catalog.product("../etc") is None


class TestConfig:
    def test_phone_config_file(self, tmp_path: Path) -> None:
        """The [sun] section means what it means on a terminal; paths are file-relative."""
        path = tmp_path / "phone.toml"
        path.write_text(
            '[sun]\nmeta_key = "' + "11" * 16 + '"\nfile_master_key = "' + "22" * 16 + '"\n'
            'product_url = "https://shop.example/p/"\n'
            '[cards]\nissuer_keys = ["' + "ab" * 32 + '"]\n'
            '[catalog]\ndir = "catalog"\n[phone]\ncoupon_percent = 15\n')
        config = load_phone_config(path)
        assert config.sun is not None and config.sun.meta_key == bytes([0x11]) * 16
        assert config.sun.system_id == b"pos-loyalty"  # the terminal's default
        assert config.catalog_dir == tmp_path / "catalog" and config.coupon_percent == 15
        assert config.issuer_keys == ("ab" * 32,)

    @pytest.mark.parametrize(("text", "key", "line"), [
        ('[phone]\ncoupon_percent = 150\n', "phone.coupon_percent", 2),
        ('[cards]\nissuer_keys = ["zz"]\n', "cards.issuer_keys", 2),
        ('[sun]\nmeta_key = "' + "11" * 16 + '"\nfile_master_key = "' + "22" * 16 + '"\n'
         'member_url = "https://shop.example/m/"\n', "sun.product_url", None),
        ('[phone]\ncoupons = 1\n', "phone.coupons", 2),
    ])
    def test_config_errors(self, tmp_path: Path, text: str, key: str,
                           line: int | None) -> None:
        path = tmp_path / "phone.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_phone_config(path)
        assert err.value.key == key and err.value.line == line
        assert err.value.path == str(path)


class TestCli:
    def test_catalog_load(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`admin catalog load DIR` installs into the configured folder; a broken folder
        exits 2 with the file and key, and changes nothing."""
        config = tmp_path / "phone.toml"
        config.write_text('[catalog]\ndir = "served"\n')
        monkeypatch.setenv("POS_LOYALTY_PHONE_CONFIG", str(config))
        result = CliRunner().invoke(admin, ["catalog", "load", str(EXAMPLE)])
        assert result.exit_code == 0, result.output
        assert "1 products" in result.output
        assert (tmp_path / "served" / "KETTLE-2" / "product.toml").is_file()
        broken = tmp_path / "broken"
        _product(broken, 'name = "X"\nreorder_url = "ftp://x"\n')
        result = CliRunner().invoke(admin, ["catalog", "load", str(broken)])
        assert result.exit_code == 2
        assert "product.toml:2: key 'reorder_url'" in result.output
        assert (tmp_path / "served" / "KETTLE-2").is_dir()


class TestMemberUrl:
    def test_member_cards_need_their_own_path(self, tmp_path: Path) -> None:
        """A member_url whose path is one of central's pages is refused at start."""
        from dataclasses import replace

        from pos_loyalty.server.app import create_app
        from pos_loyalty.server.config import Settings
        from tests.phone.conftest import phone_config

        config = phone_config(None)
        assert config.sun is not None
        bad = replace(config, sun=replace(config.sun, member_url="https://shop.example/m"))
        url = f"sqlite:///{tmp_path / 'c.db'}"
        with pytest.raises(ConfigError, match=r"sun\.member_url"):
            create_app(Settings(db_url=url, phone=bad))
