"""The demo issuer key: FOR SIMULATION ONLY.

This private key is published in the source tree, so anyone can mint cards it signs. It exists
so that ``pos-loyalty demo``, ``pos-loyalty sim tag`` and the tests have cards that verify out
of the box, and the daemon trusts it only when it runs with no configuration at all. A real
deployment generates its own key (``pos-loyalty card issue --key FILE``) and configures the
terminal with the matching public key; the demo key must never be trusted in a shop.
"""

from __future__ import annotations

from pos_loyalty.nfc.cardformat import CardTrust, Issuer, UriVerifier
from pos_loyalty.nfc.sun import CounterStore, SunKeyEntry

DEMO_ISSUER_PRIVATE_KEY_HEX = "f90518e1a248b30f0698f100383f5f53eff795691c6fc3e08740de851975575b"

DEMO_ISSUER = Issuer(bytes.fromhex(DEMO_ISSUER_PRIVATE_KEY_HEX))
DEMO_PUBLIC_KEY: bytes = DEMO_ISSUER.public_key
DEMO_PUBLIC_KEY_HEX: str = DEMO_PUBLIC_KEY.hex()

# NTAG 424 DNA SUN keys for emulated tags (also published, also simulation only)
DEMO_SUN_META_KEY = bytes.fromhex("5ACE7E50A11C0DE5DE30000000000001")
DEMO_SUN_FILE_KEY = bytes.fromhex("5ACE7E50A11C0DE5DE30000000000002")
DEMO_SUN_PRODUCT_URL = "https://loyalty.example/sun/p"
DEMO_SUN_MEMBER_URL = "https://loyalty.example/sun/m"
DEMO_SUN_KEYS = (
    SunKeyEntry(DEMO_SUN_PRODUCT_URL, "product", DEMO_SUN_META_KEY, DEMO_SUN_FILE_KEY),
    SunKeyEntry(DEMO_SUN_MEMBER_URL, "member", DEMO_SUN_META_KEY, DEMO_SUN_FILE_KEY),
)


def demo_trust(*, revoked: frozenset[str] = frozenset(), accept_legacy_uid: bool = False,
               sun_counters: CounterStore | None = None) -> CardTrust:
    """A CardTrust that trusts only the demo issuer (simulation and tests).

    With ``sun_counters`` it also verifies demo NTAG 424 DNA SUN tags, recording their
    counters there so a replayed URL is refused.
    """
    verifiers: tuple[UriVerifier, ...] = ()
    if sun_counters is not None:
        from pos_loyalty.nfc.sunuri import sun_uri_verifier

        verifiers = (sun_uri_verifier(DEMO_SUN_KEYS, sun_counters),)
    return CardTrust((DEMO_PUBLIC_KEY,), revoked, accept_legacy_uid, verifiers)
