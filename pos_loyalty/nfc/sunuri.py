"""Plug NTAG 424 DNA SUN checking into :class:`~pos_loyalty.nfc.cardformat.CardTrust`.

:func:`sun_uri_verifier` wraps :func:`pos_loyalty.nfc.sun.check_sun_uri` as a
``CardTrust.uri_verifiers`` entry: a SUN URL read from a tag becomes a verified member or
product TapEvent, or a refusal (tampered, wrong key, replayed counter, UID not the tag's own);
any other URI is left to the other checks. Only accepted counters are recorded in
``counters`` (after the UID check), so the same URL read again is refused as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable

from pos_loyalty.nfc.cardformat import UriVerifier
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sun import CounterStore, SunKeyEntry, check_sun_uri

_NOT_SUN = "not a SUN URL"


def sun_uri_verifier(keys: Iterable[SunKeyEntry], counters: CounterStore) -> UriVerifier:
    """A URI verifier for SUN tags with these keys, recording counters in ``counters``."""
    entries = tuple(keys)

    def verify(uid: bytes, tag_type: str, uri: str) -> TapEvent | None:
        identity = check_sun_uri(uri, entries, counters)
        uidhex = uid.hex().upper()
        if identity.kind == "refused":
            if identity.code == "malformed" and (identity.reason or "").startswith(_NOT_SUN):
                return None  # some other URL: not ours to judge
            return TapEvent("refused", uidhex, tag_type, card_id=identity.card_id,
                            reason=identity.reason or "SUN message refused")
        if len(uid) == 7 and identity.uid != uidhex:
            # the tag answered anticollision with another UID than the one its SUN message
            # carries: the URL was copied onto this tag (random-ID tags have 4-byte UIDs)
            return TapEvent("refused", uidhex, tag_type,
                            reason="copied tag: its SUN message belongs to another tag")
        if identity.uid is not None and identity.counter is not None:
            counters.record(bytes.fromhex(identity.uid), identity.counter)  # replays refused
        if identity.kind == "member":
            return TapEvent("member", uidhex, tag_type, card_id=identity.card_id, verified=True)
        product = dict(identity.product or {})
        product["sun_counter"] = str(identity.counter)
        return TapEvent("product", uidhex, tag_type, product=product, verified=True)

    return verify
