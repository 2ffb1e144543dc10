"""Ready-made emulated cards and tags: member cards, product tags, foreign, blank, legacy."""

from __future__ import annotations

import ndef

from pos_loyalty.nfc.cardformat import (
    DEFAULT_PRODUCT_BASE,
    Issuer,
    member_card_ndef,
    product_tag_ndef,
)
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER
from pos_loyalty.nfc.sim.legacy import UidOnlyCard
from pos_loyalty.nfc.sim.ntag import Ntag21x, random_nxp_uid

FOREIGN_URL = "https://www.example.com/some-shop/offer"


def member_card(card_id: str, *, issuer: Issuer = DEMO_ISSUER, model: str = "NTAG213",
                uid: bytes | None = None) -> Ntag21x:
    """An NTAG21x carrying a member card signed by ``issuer`` for its own UID."""
    uid = random_nxp_uid() if uid is None else uid
    return Ntag21x(model, uid=uid, ndef=member_card_ndef(card_id, uid, issuer))


def product_tag(product: str, *, issuer: Issuer = DEMO_ISSUER, model: str = "NTAG215",
                uid: bytes | None = None, base_url: str = DEFAULT_PRODUCT_BASE) -> Ntag21x:
    """An NTAG21x carrying a signed product URI (NTAG215: the URI does not fit an NTAG213)."""
    uid = random_nxp_uid() if uid is None else uid
    return Ntag21x(model, uid=uid, ndef=product_tag_ndef(product, uid, issuer, base_url))


def foreign_tag(*, url: str = FOREIGN_URL, uid: bytes | None = None) -> Ntag21x:
    """An NTAG213 with somebody else's NDEF: a plain web link."""
    msg = b"".join(ndef.message_encoder([ndef.UriRecord(url)]))
    return Ntag21x("NTAG213", uid=uid, ndef=msg)


def blank_tag(*, model: str = "NTAG213", uid: bytes | None = None) -> Ntag21x:
    """A factory-fresh NTAG: NDEF formatted, empty."""
    return Ntag21x(model, uid=uid)


def unformatted_tag(*, model: str = "NTAG213", uid: bytes | None = None) -> Ntag21x:
    """An NTAG without a capability container: no NDEF area at all."""
    return Ntag21x(model, uid=uid, formatted=False)


def copied_card(original: Ntag21x, *, uid: bytes | None = None) -> Ntag21x:
    """A clone attempt: ``original``'s whole user memory on a tag with another UID."""
    clone = Ntag21x(original.model.name, uid=uid)
    clone.load_user_memory(original.memory[16:16 + original.model.user_bytes])
    return clone


def legacy_card(*, uid: bytes | None = None) -> UidOnlyCard:
    """A MIFARE Classic-like UID-only card (SAK 0x08)."""
    return UidOnlyCard(uid)
