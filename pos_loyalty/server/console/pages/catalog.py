"""The product catalog the phone pages show: what is served, and a zip upload (store IT).

The upload is checked exactly as ``pos-loyalty admin catalog load`` checks a folder
(:mod:`pos_loyalty.catalog.upload`); an error names the file inside the zip, its line and
key, and nothing is served until the whole catalog is valid. Administrators only.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pos_loyalty.catalog.folder import Product, check_catalog
from pos_loyalty.catalog.upload import load_upload
from pos_loyalty.errors import ConfigError
from pos_loyalty.server.console.web import PREFIX, PostedDep, ViewDep, redirect
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
NOTICES = {"loaded": N_("The catalog was checked and is now served.")}


def _served(view: ViewDep) -> tuple[list[Product], str | None]:
    """The products served now, or why they cannot be listed."""
    folder = view.console.settings.phone.catalog_dir
    if folder is None or not folder.exists():
        return [], None
    try:
        return check_catalog(folder), None
    except ConfigError as exc:
        return [], str(exc)


def _page(view: ViewDep, *, errors: FormErrors | None = None, sku: str = "",
          status: int = 200) -> HTMLResponse:
    products, problem = _served(view)
    return view.render("console/catalog.html", {
        "configured": view.console.settings.phone.catalog_dir is not None,
        "products": products, "problem": problem, "errors": errors, "sku": sku,
        "notice": view.notice(NOTICES)}, status=status, nav="catalog")


@router.get("/catalog")
def catalog_page(view: ViewDep) -> HTMLResponse:
    view.need_admin()
    return _page(view)


@router.post("/catalog")
async def upload(view: PostedDep) -> Response:
    """A zip of product folders (or of one product's files, with its code) is checked and
    served; its products replace those of the same code unless the whole is replaced."""
    view.need_admin()
    folder = view.console.settings.phone.catalog_dir
    sku = view.fields.get("sku", 64)
    data = view.fields.files.get("zip")
    errors = FormErrors()
    if folder is None:
        errors.add("zip", view._("No catalog folder is configured ([catalog] dir of the "
                                 "phone configuration)."))
    elif data is None:
        errors.add("zip", view._("Choose a zip file of the catalog or of one product."))
    if errors or folder is None or data is None:
        return _page(view, errors=errors, sku=sku, status=400)
    replace = view.fields.get("replace") == "yes"
    try:
        products = await run_in_threadpool(load_upload, data, folder, sku=sku or None,
                                           replace=replace)
    except ConfigError as exc:
        errors.add("sku" if exc.key == "sku" and exc.path == "product.toml" else "zip",
                   str(exc))
        return _page(view, errors=errors, sku=sku, status=400)
    view.audit("catalog.load", "catalog", after={
        "products": [p.sku for p in products], "replace": replace})
    return redirect(f"{PREFIX}/catalog", "loaded")
