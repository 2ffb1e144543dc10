"""Plug NTAG 424 DNA SUN checking into :class:`~pos_loyalty.nfc.cardformat.CardTrust`.

:func:`sun_uri_verifier` wraps :func:`pos_loyalty.nfc.sun.accept_sun_uri` as a
``CardTrust.uri_verifiers`` entry, so every reader backend (nfcpy, PC/SC) that classifies
with that trust checks SUN tags the same way: a URL under one of the keys' prefixes becomes a
verified member or product TapEvent, or a refusal (tampered, wrong key, replayed counter, a
UID other than the tag's own or not 7 bytes long); any other URI is left to the other checks.
Only accepted counters are recorded in ``counters``, so the same URL read again is refused
as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from pos_loyalty.config import SunKeys
from pos_loyalty.nfc.cardformat import UriVerifier
from pos_loyalty.nfc.diversify import tag_key
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sun import UID_LEN, CounterStore, SunKeyEntry, accept_sun_uri


def sun_key_entries(keys: SunKeys) -> list[SunKeyEntry]:
    """The verifier's key entries for configured keys: file keys diversified per tag UID."""
    file_key = partial(tag_key, keys.file_master_key, system_id=keys.system_id)
    out = []
    if keys.member_url is not None:
        out.append(SunKeyEntry(keys.member_url, "member", keys.meta_key, file_key))
    if keys.product_url is not None:
        out.append(SunKeyEntry(keys.product_url, "product", keys.meta_key, file_key))
    return out


def sun_uri_verifier(keys: Iterable[SunKeyEntry], counters: CounterStore) -> UriVerifier:
    """A URI verifier for SUN tags with these keys, recording counters in ``counters``."""
    entries = tuple(keys)
    prefixes = tuple(e.url_prefix for e in entries)

    def verify(uid: bytes, tag_type: str, uri: str) -> TapEvent | None:
        if not prefixes or not uri.startswith(prefixes):
            return None  # some other URL: not ours to judge
        uidhex = uid.hex().upper()
        if len(uid) != UID_LEN:
            # a genuine NTAG 424 DNA answers anticollision with the 7-byte UID it mirrors;
            # anything else (a random-ID or emulated tag) cannot prove the URL is its own
            return TapEvent("refused", uidhex, tag_type,
                            reason=f"copied or emulated SUN tag: its UID is {len(uid)} bytes, "
                                   f"an NTAG 424 DNA has {UID_LEN}")
        identity = accept_sun_uri(uri, entries, counters, tag_uid=uid)
        if identity.kind == "refused":
            return TapEvent("refused", uidhex, tag_type, card_id=identity.card_id,
                            reason=identity.reason or "SUN message refused")
        if identity.kind == "member":
            return TapEvent("member", uidhex, tag_type, card_id=identity.card_id, verified=True)
        product = dict(identity.product or {})
        product.update(url=uri, sun_counter=str(identity.counter))
        return TapEvent("product", uidhex, tag_type, product=product, verified=True)

    return verify
