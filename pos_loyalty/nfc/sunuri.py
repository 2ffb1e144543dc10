"""Plug NTAG 424 DNA SUN checking into :class:`~pos_loyalty.nfc.cardformat.CardTrust`.

:func:`sun_uri_verifier` wraps :func:`pos_loyalty.nfc.sun.accept_sun_uri` as a
``CardTrust.uri_verifiers`` entry, so every reader backend (nfcpy, PC/SC) that classifies
with that trust checks SUN tags the same way: a URL under one of the keys' prefixes becomes a
verified member or product TapEvent, or a refusal (tampered, wrong key, replayed counter, a
UID other than the tag's own); any other URI is left to the other checks. Only accepted
counters are recorded in ``counters``, so the same URL read again is refused as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable

from pos_loyalty.nfc.cardformat import UriVerifier
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sun import CounterStore, SunKeyEntry, accept_sun_uri


def sun_uri_verifier(keys: Iterable[SunKeyEntry], counters: CounterStore) -> UriVerifier:
    """A URI verifier for SUN tags with these keys, recording counters in ``counters``."""
    entries = tuple(keys)
    prefixes = tuple(e.url_prefix for e in entries)

    def verify(uid: bytes, tag_type: str, uri: str) -> TapEvent | None:
        if not prefixes or not uri.startswith(prefixes):
            return None  # some other URL: not ours to judge
        # a genuine NTAG 424 DNA mirrors its own 7-byte UID; random-ID tags (4 bytes) cannot
        # be compared with their anticollision UID
        tag_uid = uid if len(uid) == 7 else None
        identity = accept_sun_uri(uri, entries, counters, tag_uid=tag_uid)
        uidhex = uid.hex().upper()
        if identity.kind == "refused":
            return TapEvent("refused", uidhex, tag_type, card_id=identity.card_id,
                            reason=identity.reason or "SUN message refused")
        if identity.kind == "member":
            return TapEvent("member", uidhex, tag_type, card_id=identity.card_id, verified=True)
        product = dict(identity.product or {})
        product.update(url=uri, sun_counter=str(identity.counter))
        return TapEvent("product", uidhex, tag_type, product=product, verified=True)

    return verify
