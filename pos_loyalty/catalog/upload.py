"""A catalog (or one product of it) uploaded as a zip, checked like ``admin catalog load``.

The zip holds either product folders (``KETTLE-2/product.toml`` ...; one wrapping folder such
as ``catalog/`` is allowed) or one product's files at its top (``product.toml``, ``about.md``,
images: then ``sku`` names the product). It is unpacked into a private staging folder with
bounds on entries and sizes (no paths outside it, no links, nothing hidden), merged with the
served catalog (its products replace those of the same code; or, asked for, it replaces the
whole catalog), validated as a whole by
:func:`~pos_loyalty.catalog.folder.check_catalog`, and swapped in by
:func:`~pos_loyalty.catalog.folder.install_catalog`. An error names the file inside the zip,
the line and the key, like the command does for a folder.
"""

from __future__ import annotations

import io
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from pos_loyalty.catalog.folder import PRODUCT_FILE, Product, install_catalog
from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import valid_product

MAX_ENTRIES = 2000
MAX_UNPACKED = 64 * 1024 * 1024  # all files together, as unpacked


def _members(archive: zipfile.ZipFile) -> list[tuple[PurePosixPath, zipfile.ZipInfo]]:
    """The zip's files as safe relative paths (folders and hidden files left out)."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ConfigError(f"more than {MAX_ENTRIES} entries", path="the zip")
    total = 0
    out = []
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or ".." in path.parts or ":" in name:
            raise ConfigError("a path outside the catalog", path=name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ConfigError("links are not allowed in a catalog", path=name)
        if info.is_dir() or not path.parts or \
                any(p.startswith(".") or p == "__MACOSX" for p in path.parts):
            continue
        total += info.file_size
        if total > MAX_UNPACKED:
            raise ConfigError(f"unpacks to more than {MAX_UNPACKED // 2**20} MiB",
                              path="the zip")
        out.append((path, info))
    if not out:
        raise ConfigError("no files in it", path="the zip")
    return out


def _unpack(data: bytes, into: Path, sku: str | None) -> tuple[Path, bool]:
    """Unpack to ``into``; (the catalog root there, whether it is one product only)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ConfigError("not a zip file", path="the upload") from exc
    with archive:
        files = _members(archive)
        # a single wrapping folder (what zipping a folder makes) is taken off
        while len({p.parts[0] for p, _ in files}) == 1 and all(len(p.parts) > 1
                                                                for p, _ in files) \
                and not any(p.parts[1:] == (PRODUCT_FILE,) for p, _ in files):
            files = [(PurePosixPath(*p.parts[1:]), i) for p, i in files]
        single = any(p.parts == (PRODUCT_FILE,) for p, _ in files)
        root = into / "catalog"
        if single:
            if sku is None or not valid_product(sku):
                raise ConfigError("one product's files: give its product code",
                                  path=PRODUCT_FILE, key="sku")
            base = root / sku
        else:
            base = root
        for path, info in files:
            if single and len(path.parts) != 1:
                raise ConfigError("a product's files sit in one folder, without sub-folders",
                                  path=str(path))
            target = base.joinpath(*path.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise IsADirectoryError(str(target))
                with archive.open(info) as src, open(target, "wb") as dst:
                    left = info.file_size
                    while chunk := src.read(min(65536, left + 1)):
                        left -= len(chunk)
                        if left < 0:  # more than the zip said: refuse it
                            raise ConfigError("a file larger than the zip says",
                                              path=str(path))
                        dst.write(chunk)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise ConfigError("a file and a folder of the same name",
                                  path=str(path)) from exc
            except OSError as exc:  # a name too long for the file system, and the like
                raise ConfigError(f"cannot be unpacked: {exc.strerror or exc}",
                                  path=str(path)[:200]) from exc
        root.mkdir(exist_ok=True)
        return root, single


def load_upload(data: bytes, served: Path, *, sku: str | None = None,
                replace: bool = False) -> list[Product]:
    """Check the uploaded zip and serve it. Its products replace those of the same code and
    the others stay, unless ``replace`` (the zip is then the whole catalog; never for one
    product's files, named by ``sku``). Returns the products now served."""
    staging = Path(tempfile.mkdtemp(prefix=".catalog-upload-"))
    try:
        root, single = _unpack(data, staging, sku)
        if (single or not replace) and served.is_dir():
            for folder in served.iterdir():
                if folder.is_dir() and not folder.name.startswith(".") and \
                        not (root / folder.name).exists():
                    shutil.copytree(folder, root / folder.name)
        try:
            return install_catalog(root, served)
        except ConfigError as exc:
            raise _inside(exc, root) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _inside(exc: ConfigError, root: Path) -> ConfigError:
    """The same error naming the file as it is inside the zip, not the staging folder."""
    path = exc.path
    if path is not None and path.startswith(str(root) + "/"):
        path = path[len(str(root)) + 1:]
    message = str(exc)
    prefix = ":".join(str(p) for p in (exc.path, exc.line) if p is not None)
    keypart = f"key '{exc.key}': " if exc.key else ""
    if prefix and message.startswith(f"{prefix}: "):
        message = message[len(prefix) + 2:]
    if keypart and message.startswith(keypart):
        message = message[len(keypart):]
    return ConfigError(message, path=path, key=exc.key, line=exc.line)
