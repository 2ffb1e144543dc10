"""The catalog folder: one sub-folder per product code with a TOML file, Markdown and images.

::

    catalog/
      SKU-123/
        product.toml     name, summary, reorder_url, warranty_months, image, [[links]], [he]
        about.md         how-to / care / recipes in Markdown (English, the default)
        about.he.md      the same in Hebrew (optional; any language code works)
        front.jpg        images (png, jpg, webp, gif; at most 2 MiB each)

Markdown is rendered without raw HTML (markdown-it-py, CommonMark, ``html`` off), and an image
in it must be one of the folder's own files: the page loads nothing from another site.
:func:`load_product` validates one folder and :func:`check_catalog` a whole tree (errors name
the file, line and key); :func:`install_catalog` replaces the served folder in one rename, and
:class:`Catalog` serves it, re-reading a product only when its folder changed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from pos_loyalty.configfile import TomlDocument
from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import valid_product

PRODUCT_FILE = "product.toml"
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp", ".gif": "image/gif"}
MAX_IMAGE = 2 * 1024 * 1024
MAX_MARKDOWN = 64 * 1024
MAX_LINKS = 20
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LANG_RE = re.compile(r"[a-z]{2,3}")
_KEYS = {"name", "summary", "reorder_url", "warranty_months", "image", "links"}
_TEXT_KEYS = {"name", "summary"}


@dataclass(frozen=True)
class Link:
    """A video, recipe or manual elsewhere (a plain link: the page does not embed it)."""

    title: str
    url: str


@dataclass(frozen=True)
class Product:
    """One product's content, per language (``texts[lang]['name']``, ``html[lang]``)."""

    sku: str
    texts: dict[str, dict[str, str]]
    html: dict[str, str]
    images: dict[str, Path]
    image: str | None = None
    reorder_url: str | None = None
    warranty_months: int = 0
    links: tuple[Link, ...] = ()

    def text(self, lang: str, key: str) -> str:
        """A text in ``lang``, else English, else empty."""
        return self.texts.get(lang, {}).get(key) or self.texts.get("en", {}).get(key, "")

    def body(self, lang: str) -> str:
        """The rendered Markdown in ``lang``, else English, else empty."""
        return self.html.get(lang) or self.html.get("en", "")


def _markdown(source: str, images: dict[str, Path], image_url: str) -> str:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

    def image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = escapeHtml(renderer.renderInlineAsText(token.children or [], options, env))
        if src not in images:  # another site's image, or a missing one: text only
            return alt
        return f'<img src="{image_url}/{src}" alt="{alt}" loading="lazy">'

    md.add_render_rule("image", image)
    return str(md.render(source))


def _https(doc: TomlDocument, key: str, value: str) -> str:
    if not value.startswith("https://") or any(c.isspace() for c in value) or len(value) > 500:
        raise doc.error(key, "must be an https:// link of at most 500 characters")
    return value


def load_product(folder: Path, image_url: str = "") -> Product:
    """Read and validate one product folder; ``image_url`` prefixes its image links."""
    sku = folder.name
    if not valid_product(sku):
        raise ConfigError("folder name is not a product code (1-32 of A-Z a-z 0-9 . - _)",
                          path=str(folder))
    doc = TomlDocument.load(folder / PRODUCT_FILE)
    langs = [k for k in doc.data if _LANG_RE.fullmatch(k) and isinstance(doc.data[k], dict)]
    doc.check_keys("", _KEYS | set(langs))
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if suffix in IMAGE_TYPES:
            if not _NAME_RE.fullmatch(path.name) or not path.is_file():
                raise ConfigError("image names are 1-64 of A-Z a-z 0-9 . - _", path=str(path))
            if path.stat().st_size > MAX_IMAGE:
                raise ConfigError(f"image over {MAX_IMAGE // 1024} KiB", path=str(path))
            images[path.name] = path
    name = doc.get("name", str, "").strip()
    if not name:
        raise doc.error("name", "missing: every product needs a name")
    texts: dict[str, dict[str, str]] = {"en": {"name": name,
                                               "summary": doc.get("summary", str, "").strip()}}
    for lang in langs:
        doc.check_keys(lang, _TEXT_KEYS)
        texts[lang] = {k: doc.get(f"{lang}.{k}", str, "").strip() for k in _TEXT_KEYS}
    image = doc.get("image", str, None)
    if image is not None and image not in images:
        raise doc.error("image", f"no image file {image!r} in the folder")
    reorder = doc.get("reorder_url", str, None)
    months = doc.get("warranty_months", int, 0)
    if not 0 <= months <= 600:
        raise doc.error("warranty_months", "must be 0..600")
    links = []
    raw_links = doc.get("links", list, [])
    if len(raw_links) > MAX_LINKS:
        raise doc.error("links", f"at most {MAX_LINKS} links")
    for item in raw_links:
        if not isinstance(item, dict) or set(item) != {"title", "url"} or not all(
                isinstance(v, str) for v in item.values()):
            raise doc.error("links", "each link is a table with a title and a url")
        links.append(Link(item["title"].strip(), _https(doc, "links", item["url"])))
    html: dict[str, str] = {}
    for md_path in sorted(folder.glob("about*.md")):
        parts = md_path.name.split(".")
        lang = "en" if len(parts) == 2 else parts[1]
        if len(parts) > 3 or not _LANG_RE.fullmatch(lang):
            raise ConfigError("Markdown files are about.md or about.<language>.md",
                              path=str(md_path))
        raw = md_path.read_bytes()
        if len(raw) > MAX_MARKDOWN:
            raise ConfigError(f"over {MAX_MARKDOWN // 1024} KiB", path=str(md_path))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError("not UTF-8 text", path=str(md_path)) from exc
        html[lang] = _markdown(text, images, image_url)
    return Product(sku, texts, html, images, image,
                   _https(doc, "reorder_url", reorder) if reorder is not None else None,
                   months, tuple(links))


def check_catalog(root: Path) -> list[Product]:
    """Every product of a catalog tree, validated; the first error is raised."""
    if not root.is_dir():
        raise ConfigError("not a folder", path=str(root))
    products = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):
            continue
        if not folder.is_dir():
            raise ConfigError("only product folders belong in a catalog", path=str(folder))
        products.append(load_product(folder))
    return products


def install_catalog(source: Path, target: Path) -> list[Product]:
    """Validate ``source`` and make it the served catalog at ``target`` (swapped whole)."""
    products = check_catalog(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".catalog-new-", dir=target.parent))
    fresh = staging / "catalog"
    shutil.copytree(source, fresh, ignore=shutil.ignore_patterns(".*"))
    old = staging / "old"
    if target.exists():
        os.rename(target, old)
    os.rename(fresh, target)
    shutil.rmtree(staging)
    return products


@dataclass
class Catalog:
    """The served catalog folder; a product is re-read when its folder's files change."""

    root: Path | None
    image_base: str = "/p"
    _cache: dict[str, tuple[tuple[int, ...], Product | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _stamp(self, folder: Path) -> tuple[int, ...] | None:
        try:
            st = folder.stat()
            toml = (folder / PRODUCT_FILE).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, toml.st_ino, toml.st_mtime_ns)

    def product(self, sku: str) -> Product | None:
        """The product's content, or None if the catalog has none (or a broken one)."""
        if self.root is None or not valid_product(sku):
            return None
        folder = self.root / sku
        stamp = self._stamp(folder)
        if stamp is None:
            return None
        with self._lock:
            cached = self._cache.get(sku)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            product: Product | None = load_product(folder, f"{self.image_base}/{sku}/img")
        except (ConfigError, OSError):
            product = None  # `admin catalog load` refuses broken folders; a hand edit may not
        with self._lock:
            self._cache[sku] = (stamp, product)
        return product
